"""Inference precision (#17): bfloat16 and int8 encoders near float32, the int8 graph made once and reloaded
identically, `auto` on a CPU without native bfloat16, bfloat16 training on CPU, precision in the index."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

from semsim.encoders import load_encoder
from semsim.encoders import precision as precision_mod
from semsim.encoders.precision import PrecisionChoice, choose_precision, convert, cpu_flags, native_bfloat16

TEXTS = ["data scientist", "nurse", "a very good film, not boring at all", "software engineer manager",
         "the chef was not good", "teacher", "sales analyst and manager of the sales team"]
# Stated bounds on the tiny random model (measured: bfloat16 >= 0.99998, int8 >= 0.99999 there); minilm's
# own bounds are in the integration test at the end.
BF16_MIN_COSINE = 0.999
INT8_MIN_COSINE = 0.99


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    return load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("int8-cache")


@pytest.fixture(scope="module")
def tiny_int8(tiny, int8_cache):
    return convert(tiny, "int8", cache_dir=int8_cache)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


# -- choosing ------------------------------------------------------------------------------------
def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert {"avx2", "avx512_bf16"} <= cpu_flags(info)
    assert native_bfloat16(cpu_flags(info)) and not native_bfloat16({"avx2", "avx512f", "avx512_vnni"})
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_auto_falls_back_to_float32_on_a_cpu_without_native_bfloat16(tiny):
    choice = choose_precision("auto", flags={"avx2", "fma", "avx512f"}, check=lambda: pytest.fail("no check"))
    assert choice.precision == "float32" and "no AVX512-BF16 or AMX" in choice.reason
    # The same through at_precision: the float32 encoder itself comes back, and says why.
    chosen = precision_mod.at_precision(tiny, "auto", flags={"avx2"})
    assert chosen is tiny and chosen.precision == "float32" and "auto -> float32" in chosen.precision_reason


def test_auto_picks_bfloat16_only_when_the_quick_check_passes():
    native = {"avx512_bf16"}
    assert choose_precision("auto", flags=native, check=lambda: (True, "ok")).precision == "bfloat16"
    failed = choose_precision("auto", flags=native, check=lambda: (False, "Spearman 82.0 -> 80.1"))
    assert failed == PrecisionChoice("float32", "auto", "bfloat16 failed the quick STS-B check (Spearman 82.0 -> 80.1)")
    assert choose_precision("int8").precision == "int8"
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("float16")


def test_auto_on_a_native_cpu_runs_the_quick_sts_check(tiny, monkeypatch):
    monkeypatch.setattr(precision_mod, "QUICK_CHECK_PAIRS", 20)  # the check itself, on fewer pairs
    passed, detail = precision_mod.quick_sts_check(tiny, tiny)  # a model against itself always passes
    assert passed and detail.startswith("20 STS-B dev pairs")
    chosen = precision_mod.at_precision(tiny, "auto", flags={"avx512_bf16"})
    # A random tiny model's 20-pair Spearman is noisy, so either verdict can come; auto must follow it.
    assert "quick STS-B check" in chosen.precision_reason
    assert (chosen.precision == "bfloat16") == ("check passed" in chosen.precision_reason)


# -- bfloat16 ------------------------------------------------------------------------------------
def test_bfloat16_encoder_gives_float32_unit_vectors_near_float32(tiny):
    reference = tiny.encode(TEXTS)
    bf16 = convert(tiny, "bfloat16")
    vectors = bf16.encode(TEXTS)
    assert bf16.precision == "bfloat16" and vectors.dtype == np.float32
    assert bf16.spec == tiny.spec and bf16.fingerprint == tiny.fingerprint  # the same vector space
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert _cosines(vectors, reference).min() >= BF16_MIN_COSINE
    assert not np.array_equal(vectors, reference)  # it really computed in bfloat16
    assert {layer.dtype_policy.name for layer in tiny.model._flatten_layers()} == {"float32"}  # original untouched


# -- int8 ----------------------------------------------------------------------------------------
def test_float32_onnx_graph_matches_the_keras_model(tiny, tmp_path):
    import onnx

    from semsim.encoders.int8 import make_session
    from semsim.encoders.onnx_graph import build_bert_graph

    path = tmp_path / "float32.onnx"
    onnx.save(build_bert_graph(tiny.backbone, tiny.pooling), str(path))
    session = make_session(path)
    for batch in (TEXTS, TEXTS[:1]):
        inputs = tiny.preprocess(batch)
        np.testing.assert_allclose(session.run(["embedding"], inputs)[0], tiny.encode(batch), atol=2e-5)


def test_int8_encoder_is_near_float32_and_records_its_calibration(tiny, tiny_int8):
    vectors = tiny_int8.encode(TEXTS)
    assert tiny_int8.precision == "int8" and vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), tiny.dim)
    assert _cosines(vectors, tiny.encode(TEXTS)).min() >= INT8_MIN_COSINE
    assert not np.array_equal(vectors, tiny.encode(TEXTS))
    calibration = tiny_int8.meta["calibration"]
    assert calibration["quantized_matmuls"] > 0 and calibration["calibration_texts"] > 100
    assert calibration["mean_cosine"] >= calibration["target_mean_cosine"]
    # Calibrated on bundled job titles and STS-B *train*: no test data.
    assert tiny_int8.meta["weights_digest"] and tiny_int8.fingerprint == tiny.fingerprint


def test_saved_int8_model_is_made_once_and_loads_back_identically(tiny, tiny_int8, int8_cache, monkeypatch):
    from semsim.encoders import int8

    model_file = tiny_int8.folder / int8.MODEL_FILE
    stamp = model_file.stat().st_mtime_ns
    monkeypatch.setattr(int8, "build_int8", lambda *a, **k: pytest.fail("rebuilt an int8 model that was on disk"))
    again = convert(tiny, "int8", cache_dir=int8_cache)
    assert again.folder == tiny_int8.folder and model_file.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(again.encode(TEXTS), tiny_int8.encode(TEXTS))
    # No publish temporaries are left beside it.
    assert not [p for p in tiny_int8.folder.parent.iterdir() if p.name.startswith(".")
                and not p.name.endswith(".lock")]


def test_int8_model_is_rebuilt_when_the_weights_change(tiny_bert_dir, tmp_path, monkeypatch):
    from semsim.encoders import int8

    encoder = load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)
    monkeypatch.setattr(int8, "CALIBRATION_TEXTS", 8)  # quicker: this test is about the digest
    first = convert(encoder, "int8", cache_dir=tmp_path)
    weights = encoder.model.get_weights()
    encoder.model.set_weights([w * 1.01 for w in weights])
    second = convert(encoder, "int8", cache_dir=tmp_path)
    assert second.folder == first.folder and second.meta["weights_digest"] != first.meta["weights_digest"]
    assert _cosines(second.encode(TEXTS), encoder.encode(TEXTS)).min() >= INT8_MIN_COSINE


def test_int8_and_bfloat16_refuse_encoders_they_cannot_convert():
    from tests.fake_encoders import BagOfWordsEncoder

    with pytest.raises(ValueError, match="BERT-family"):
        convert(BagOfWordsEncoder(), "int8")
    with pytest.raises(ValueError, match="BERT-family"):
        convert(BagOfWordsEncoder(), "bfloat16")


# -- training ------------------------------------------------------------------------------------
def test_auto_mixed_precision_trains_in_bfloat16_on_a_cpu_with_native_bfloat16(tiny, tmp_path, monkeypatch):
    """`auto` turns mixed precision on where the (simulated) CPU has AVX512-BF16 and off where it has not;
    then one bfloat16 CPU training step of the trainer's parts (PairHead, CoSENT, FusedAdamW) moves the
    float32 master weights. (A whole `--mixed-precision on` run is tests/test_training.py's.)"""
    import keras
    import tensorflow as tf

    from semsim.training.heads import PairHead
    from semsim.training.loop import configure_runtime
    from semsim.training.objectives import CoSENTObjective
    from semsim.training.optimizers import FusedAdamW
    from semsim.training.spec import PairTrainingRequest

    request = PairTrainingRequest(base="x", data="x", out=str(tmp_path / "x"), mixed_precision="auto")
    try:
        monkeypatch.setattr(precision_mod, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": frozenset({"avx2"}))
        assert configure_runtime(request)["mixed_precision"] is False
        monkeypatch.setattr(precision_mod, "cpu_flags", lambda cpuinfo="/proc/cpuinfo": frozenset({"avx512_bf16"}))
        assert configure_runtime(request)["mixed_precision"] is True
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")

    encoder = convert(tiny, "bfloat16")
    head = PairHead(encoder.model)
    before = [w.copy() for w in encoder.model.get_weights()]
    a, b = encoder.preprocess(TEXTS[:4]), encoder.preprocess(TEXTS[3:7])
    scores = tf.constant([4.0, 1.0, 3.0, 0.5])
    optimizer = FusedAdamW(learning_rate=1e-2)
    with tf.GradientTape() as tape:
        loss = CoSENTObjective().loss(scores, head({"a": a, "b": b}, training=True))
    variables = encoder.model.trainable_variables
    optimizer.apply(tape.gradient(loss, variables), variables)
    assert np.isfinite(float(loss))
    assert all(v.dtype == "float32" for v in variables)  # master weights stay float32
    moved = [not np.allclose(x, y) for x, y in zip(before, encoder.model.get_weights(), strict=True)]
    assert sum(moved) > len(moved) // 2


# -- the index -----------------------------------------------------------------------------------
def test_index_records_precision_and_a_mismatch_warns_but_searches(tmp_path):
    from semsim.corpus_index import build_index, index_info
    from semsim.search import PrecisionMismatchWarning, load_index, precision_note, search_index
    from tests.fake_encoders import BagOfWordsEncoder

    corpus = tmp_path / "corpus.csv"
    corpus.write_text("text\n" + "\n".join(f'"{t}"' for t in TEXTS) + "\n")
    built_with = BagOfWordsEncoder()
    built_with.fingerprint, built_with.precision = "bow-1", "int8"
    build_index(built_with, corpus, column="text", out_dir=tmp_path / "idx")
    assert index_info(tmp_path / "idx")["encoder"]["precision"] == "int8"

    store = load_index(tmp_path / "idx")
    same = BagOfWordsEncoder()
    same.fingerprint, same.precision = "bow-1", "int8"
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionMismatchWarning)
        assert search_index(same, store, "nurse", k=1)[0]["text"] == "nurse"
    other = BagOfWordsEncoder()
    other.fingerprint = "bow-1"  # float32 (no precision attribute: the default)
    with pytest.warns(PrecisionMismatchWarning, match="built at int8 precision and the query is encoded at "
                                                      "float32: the vectors are comparable"):
        hits = search_index(other, store, "nurse", k=1)
    assert hits[0]["text"] == "nurse"  # a warning, not a refusal
    assert "--precision int8" in precision_note(store, other)


def test_cli_search_uses_the_index_precision_and_warns_on_another(tiny_bert_dir, tiny_int8, int8_cache, tmp_path,
                                                                  monkeypatch, capsys):
    from semsim.cli import main

    monkeypatch.setattr("semsim.encoders.int8.cache_root", lambda: int8_cache)
    corpus = tmp_path / "corpus.csv"
    corpus.write_text("text\n" + "\n".join(f'"{t}"' for t in TEXTS) + "\n")
    spec = f"keras-hub:{tiny_bert_dir}"
    assert main(["index", "build", "--model", spec, "--corpus", str(corpus), "--out", str(tmp_path / "idx"),
                 "--precision", "int8", "--json"]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "idx"), "--model", spec, "--query", "nurse", "-k", "1"]) == 0
    assert "warning" not in capsys.readouterr().err  # the index's own precision by default
    assert main(["search", "--index", str(tmp_path / "idx"), "--model", spec, "--query", "nurse", "-k", "1",
                 "--precision", "float32"]) == 0
    captured = capsys.readouterr()
    assert "semsim: warning: the index was built at int8 precision" in captured.err and "nurse" in captured.out


# -- minilm --------------------------------------------------------------------------------------
@pytest.mark.integration
def test_minilm_bfloat16_and_int8_stay_near_float32_on_sts_b_sentences():
    """The bounds the README's quality table rests on, on 200 fixed STS-B test sentences."""
    from semsim import data

    frame = data.load_sts("test").head(100)
    sentences = list(dict.fromkeys([*frame["text_a"], *frame["text_b"]]))
    reference = load_encoder("minilm").encode(sentences)
    started = time.perf_counter()
    int8 = load_encoder("minilm", precision="int8")
    cos8 = _cosines(int8.encode(sentences), reference)
    cos16 = _cosines(load_encoder("minilm", precision="bfloat16").encode(sentences), reference)
    assert cos16.min() >= 0.999 and cos16.mean() >= 0.9999
    assert cos8.min() >= 0.97 and cos8.mean() >= 0.99, (cos8.min(), cos8.mean(), time.perf_counter() - started)
    assert os.path.isfile(int8.folder / "model.onnx")
