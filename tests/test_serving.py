"""ONNX Runtime serving (semsim.encoders.serving): the same vectors as Keras, no TensorFlow in the serving
process, the graph made once and again when the model's files change, and Keras wherever it is not covered."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from semsim.encoders import EncoderError, load_encoder, serving

REPO = Path(__file__).resolve().parent.parent
TEXTS = ["data scientist", "nurse", "Ingénieur logiciel", "a very good film, not boring at all", "数据",
         "sales analyst and manager of the sales team", " ".join(["software engineer"] * 80)]


@pytest.fixture(scope="module")
def hf_bert(tmp_path_factory) -> Path:
    from tests.tiny_models import make_hf_bert_folder

    return make_hf_bert_folder(tmp_path_factory.mktemp("hf_bert"))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    serving._failed.clear()
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def tuned_folder(hf_bert, tmp_path_factory) -> Path:
    """One of our own model folders (semsim.json, tokenizer "hf"), as a tuned minilm is."""
    folder = tmp_path_factory.mktemp("models") / "tiny-tuned"
    folder.mkdir()
    load_encoder(f"keras-hub:{hf_bert}", cache=False).save(folder)
    return folder


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)


def test_served_vectors_match_the_keras_model(hf_bert, cache):
    spec = f"keras-hub:{hf_bert}"
    served = serving.load_serving_encoder(spec)
    keras_model = load_encoder(spec, cache=False)
    assert isinstance(served, serving.ServingEncoder)
    assert (served.spec, served.fingerprint, served.dim, served.precision) == (
        keras_model.spec, keras_model.fingerprint, keras_model.dim, "float32")
    cos = _cosines(served.encode(TEXTS), keras_model.encode(TEXTS))
    assert cos.min() >= serving.PARITY_MIN_COSINE
    norms = np.linalg.norm(served.encode(TEXTS), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    assert served.meta["parity"]["min_cosine"] >= serving.PARITY_MIN_COSINE
    # Order kept whatever the batch size, and similarity is the cosine matrix.
    np.testing.assert_allclose(served.encode(TEXTS, batch_size=2), served.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(np.diag(served.similarity(TEXTS[:3])), 1.0, atol=1e-5)
    with pytest.raises(TypeError, match="text 1 is int"):
        served.encode(["a", 3])


def test_a_process_serving_a_model_never_imports_tensorflow_or_keras(tuned_folder, cache):
    assert serving.load_serving_encoder(str(tuned_folder)) is not None  # made here, where Keras is loaded
    assert (tuned_folder / serving.SERVING_DIR / "float32" / serving.META_FILE).is_file()  # beside the model
    script = ("import json, sys\nfrom semsim.encoders.serving import load_serving_encoder\n"
              "e = load_serving_encoder(sys.argv[1], export=False)\n"
              "v = e.encode(json.loads(sys.argv[2]))\n"
              "print(json.dumps({'vectors': v.tolist(), 'tf': 'tensorflow' in sys.modules, 'keras': 'keras' in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", script, str(tuned_folder), json.dumps(TEXTS)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["tf"] and not result["keras"]
    reference = load_encoder(str(tuned_folder), cache=False).encode(TEXTS)
    assert _cosines(np.asarray(result["vectors"], dtype=np.float32), reference).min() >= serving.PARITY_MIN_COSINE


def test_the_graph_is_made_once_and_again_when_the_model_files_change(hf_bert, tmp_path, cache):
    import shutil

    folder = Path(shutil.copytree(hf_bert, tmp_path / "model"))
    spec = f"keras-hub:{folder}"
    first = serving.load_serving_encoder(spec)
    meta_file = first.folder / serving.META_FILE
    made = meta_file.stat().st_mtime_ns
    again = serving.load_serving_encoder(spec)
    assert again.folder == first.folder and meta_file.stat().st_mtime_ns == made
    # New weights (another seed) in the same folder: the old graph is stale and is made again.
    from tests.tiny_models import make_hf_bert_folder

    time.sleep(0.01)
    make_hf_bert_folder(folder, seed=5)
    stale_digest = first.meta["source_digest"]
    assert serving.read_meta(first.folder, serving.source_digest(folder)) is None
    remade = serving.load_serving_encoder(spec)
    assert remade.meta["source_digest"] != stale_digest
    cos = _cosines(remade.encode(TEXTS), load_encoder(spec, cache=False).encode(TEXTS))
    assert cos.min() >= serving.PARITY_MIN_COSINE


def test_models_serving_does_not_cover_stay_with_keras(tiny_bert_dir, tiny_hub_dir, tmp_path, cache):
    # A KerasHub tokenizer (not a Hugging Face tokenizer.json), TF Hub, USE, presets by name, bfloat16.
    for spec in (f"keras-hub:{tiny_bert_dir}", f"tfhub:{tiny_hub_dir}", "use-multilingual", "keras-hub:bert_tiny_en_uncased",
                 str(tmp_path / "missing")):
        assert serving.model_source(spec) is None, spec
        assert serving.load_serving_encoder(spec) is None, spec
    assert serving.load_serving_encoder("minilm", precision="bfloat16") is None
    assert serving.serving_precision("auto") in ("float32", None)
    with pytest.raises(EncoderError, match="served by Keras"):
        serving.export_serving(f"keras-hub:{tiny_bert_dir}")


def test_an_export_whose_vectors_differ_is_refused_and_keras_serves(hf_bert, cache, monkeypatch):
    monkeypatch.setattr(serving, "PARITY_MIN_COSINE", 1.5)  # no graph can pass: the check must refuse it
    spec = f"keras-hub:{hf_bert}"
    with pytest.raises(EncoderError, match="unlike the Keras model"):
        serving.export_serving(spec)
    assert serving.load_serving_encoder(spec) is None
    assert "unlike the Keras model" in serving.export_failure(spec)
    folder = serving.serving_folder(spec, serving.model_source(spec), "float32")
    assert not folder.exists() and not [p for p in folder.parent.iterdir() if p.name.startswith(".float32.tmp")]


def test_int8_serving_runs_the_int8_graph_of_the_keras_side(tuned_folder, tmp_path, cache):
    served = serving.load_serving_encoder(str(tuned_folder), precision="int8")
    keras_int8 = load_encoder(str(tuned_folder), cache=False, precision="int8")
    assert served.precision == "int8"
    np.testing.assert_allclose(served.encode(TEXTS), keras_int8.encode(TEXTS), atol=1e-5)


def test_export_onnx_in_a_child_process_and_its_cli_messages(hf_bert, tiny_bert_dir, cache):
    """What the app does when it has not loaded Keras: `semsim export-onnx` in a child process."""
    spec = f"keras-hub:{hf_bert}"
    assert serving._export_in_child(spec, "float32", cache, timeout=300) is None
    meta = serving.read_meta(serving.serving_folder(spec, hf_bert, "float32", cache))
    assert meta is not None and meta["parity"]["min_cosine"] >= serving.PARITY_MIN_COSINE
    # Not covered: one line, exit 2, no traceback.
    done = subprocess.run([sys.executable, "-m", "semsim", "export-onnx", "--model", f"keras-hub:{tiny_bert_dir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "served by Keras" in done.stderr.strip().splitlines()[-1]
    reason = serving._export_in_child(f"keras-hub:{tiny_bert_dir}", "float32", cache, timeout=300)
    assert reason is not None and "served by Keras" in reason


def test_forward_passes_are_served_by_onnx_where_covered_unless_told_keras(tuned_folder, cache, monkeypatch):
    from semsim.encoders.base import Encoder

    monkeypatch.setenv("SEMSIM_RUNTIME", "auto")
    assert isinstance(serving.load_for_inference(str(tuned_folder)), serving.ServingEncoder)
    assert isinstance(serving.load_for_inference(str(tuned_folder), "bfloat16"), Encoder)  # not covered: Keras
    monkeypatch.setenv("SEMSIM_RUNTIME", "keras")
    assert isinstance(serving.load_for_inference(str(tuned_folder)), Encoder)


def test_an_index_built_by_the_app_with_onnx_is_searched_by_keras(tuned_folder, tmp_path, cache, monkeypatch):
    import pandas as pd

    from semsim.search import load_index, search_index
    from semsim_app import index_builds

    monkeypatch.setenv("SEMSIM_RUNTIME", "auto")
    corpus = tmp_path / "titles.csv"
    titles = ["data scientist", "data analyst", "staff nurse", "midwife", "bus driver", "software engineer"]
    pd.DataFrame({"title": titles}).to_csv(corpus, index=False)
    out = tmp_path / "idx"
    index_builds.start_build(out, str(tuned_folder), corpus, "title")
    job = index_builds.wait(out)
    assert job.phase == "saved", job.error
    keras_model = load_encoder(str(tuned_folder), cache=False)
    hits = search_index(keras_model, load_index(str(out), expected_encoder=keras_model), titles, k=1)
    assert [h[0]["text"] for h in hits] == titles  # each title finds itself: the vectors agree
    assert min(h[0]["score"] for h in hits) >= 0.9999


def test_the_device_is_described_in_a_child_process_when_keras_is_not_loaded(monkeypatch):
    from semsim import device

    monkeypatch.delitem(sys.modules, "keras")
    described = device.describe_device_apart()
    assert described["backend"] in ("tensorflow", "jax") and isinstance(described["gpu"], bool)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert device.describe_device_apart()["device"] == "cpu"  # a failed child reads as a CPU


def test_cli_commands_that_only_embed_run_without_tensorflow(tuned_folder, tmp_path, cache):
    """`semsim embed` (and search, index build, evaluate, compare: the same loader) in a fresh process:
    served by ONNX Runtime once the graph exists, TensorFlow never imported, the Keras model's vectors."""
    import pandas as pd

    assert serving.load_serving_encoder(str(tuned_folder)) is not None
    corpus = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(corpus, index=False)
    out = tmp_path / "vectors.npy"
    script = ("import sys\nfrom semsim.cli import main\ncode = main(sys.argv[1:])\n"
              "print('tensorflow' in sys.modules, 'keras' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", script, "embed", "--model", str(tuned_folder), "--input", str(corpus),
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False False 0", done.stderr
    reference = load_encoder(str(tuned_folder), cache=False).encode(TEXTS)
    assert _cosines(np.load(out), reference).min() >= serving.PARITY_MIN_COSINE


def test_pair_training_makes_the_serving_graphs_of_the_tuned_model_and_its_base(hf_bert, tmp_path, cache,
                                                                                 monkeypatch, capsys):
    """The trainer has Keras loaded: it makes both graphs itself, so the app's first search or index build
    with either model needs no export (no child process, no TensorFlow start)."""
    from semsim.cli import main
    from tests.test_training import make_pairs

    pairs = tmp_path / "pairs.csv"
    make_pairs(32).to_csv(pairs, index=False)
    base, out = f"keras-hub:{hf_bert}", tmp_path / "tuned"
    code = main(["train", "pairs", "--base", base, "--data", str(pairs), "--epochs", "1", "--batch-size", "16",
                 "--no-sts", "--no-rehearsal", "--no-recipe", "--out", str(out), "--json"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    made = json.loads(printed.out)["serving"]
    assert [row["model"] for row in made] == [base, str(out)] and all("folder" in row for row in made)

    def no_export(*args, **kwargs):
        raise AssertionError("the graph should have been made by the training run")

    monkeypatch.setattr(serving, "export_serving", no_export)
    monkeypatch.setattr(serving, "_export_in_child", no_export)
    for spec in (base, str(out)):
        assert isinstance(serving.load_serving_encoder(spec), serving.ServingEncoder)
    assert serving.prepare_serving([base, str(out)]) == []  # made already: nothing to do
    # Best effort: a failing export is reported, never raised; Keras-only runs and uncovered models are skipped.
    monkeypatch.setattr(serving, "read_meta", lambda *a, **k: None)
    assert [row["model"] for row in serving.prepare_serving([base])] == [base]
    assert "error" in serving.prepare_serving([base])[0]
    monkeypatch.setenv("SEMSIM_RUNTIME", "keras")
    assert serving.prepare_serving([base]) == []
