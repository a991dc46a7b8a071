"""Encoder contract on tiny random-weight models: shapes, normalisation, batching, pooling, round-trips."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from semsim.encoders import EncoderError, available_models, load_encoder
from semsim.encoders.base import pad_to_bucket

TEXTS = ["data scientist", "software engineer", "nurse", "the film was very good and not boring at all",
         "chef", "sales manager", ""]


@pytest.fixture(scope="module")
def tiny_bert(tiny_bert_dir):
    return load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False)


def test_encode_shape_dtype_and_unit_norm(tiny_bert):
    vectors = tiny_bert.encode(TEXTS, batch_size=3)
    assert vectors.shape == (len(TEXTS), tiny_bert.dim) == (len(TEXTS), 16)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:-1], axis=1), 1.0, atol=1e-5)


def test_vectors_do_not_depend_on_batch_or_padding(tiny_bert):
    alone = np.stack([tiny_bert.encode([t])[0] for t in TEXTS])
    together = tiny_bert.encode(TEXTS, batch_size=len(TEXTS))
    np.testing.assert_allclose(alone, together, atol=1e-5)


def test_batches_are_padded_to_longest_text_not_a_fixed_length(tiny_bert):
    short = tiny_bert.preprocess(["nurse", "chef"])
    assert short["token_ids"].shape[1] == pad_to_bucket(3)  # [CLS] word [SEP]: 3 on TF, 8 on JAX
    long = tiny_bert.preprocess(["the film was very good " * 4])
    assert long["token_ids"].shape[1] == pad_to_bucket(2 + 20)


def test_padding_is_exact_on_tensorflow_and_bucketed_on_jax(monkeypatch):
    import keras

    from semsim.encoders import base

    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    assert pad_to_bucket(5) == 5
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(base, "_JAX_ON_GPU", False)
    assert pad_to_bucket(5) == 8 and pad_to_bucket(9) == 16 and pad_to_bucket(300, cap=256) == 256
    monkeypatch.setattr(base, "_JAX_ON_GPU", True)  # fewer, longer buckets: a compile costs more there
    assert [pad_to_bucket(n) for n in (1, 32, 33, 64, 65, 200)] == [32, 32, 64, 64, 128, 256]
    assert pad_to_bucket(300, cap=256) == 256


def test_order_is_restored_after_length_sorting(tiny_bert):
    vectors = tiny_bert.encode(TEXTS, batch_size=2)
    reversed_vectors = tiny_bert.encode(TEXTS[::-1], batch_size=2)
    np.testing.assert_allclose(vectors, reversed_vectors[::-1], atol=1e-5)


def test_cls_and_mean_pooling_differ(tiny_bert_dir):
    mean = load_encoder(f"keras-hub:{tiny_bert_dir}@mean", cache=False).encode(TEXTS[:3])
    cls = load_encoder(f"keras-hub:{tiny_bert_dir}@cls", cache=False).encode(TEXTS[:3])
    assert not np.allclose(mean, cls, atol=1e-3)


def test_save_load_round_trip_gives_identical_vectors(tiny_bert, tmp_path):
    folder = tmp_path / "tuned"
    folder.mkdir()
    tiny_bert.save(folder)
    reloaded = load_encoder(str(folder), cache=False)
    assert reloaded.fingerprint == tiny_bert.fingerprint
    np.testing.assert_allclose(reloaded.encode(TEXTS), tiny_bert.encode(TEXTS), atol=1e-6)


def test_load_is_cached_per_process(tiny_bert_dir):
    first = load_encoder(f"keras-hub:{tiny_bert_dir}")
    assert load_encoder(f"keras-hub:{tiny_bert_dir}") is first
    assert load_encoder(f"keras-hub:{tiny_bert_dir}", cache=False) is not first


@pytest.mark.parametrize("spec, message", [
    ("no-such-model", "unknown model"),
    ("keras-hub:./does/not/exist", "does not exist"),
    ("tfhub:", "needs a handle"),
])
def test_bad_specs_give_clear_errors(spec, message):
    with pytest.raises(EncoderError, match=message):
        load_encoder(spec, cache=False)


def test_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(EncoderError, match="not a model folder"):
        load_encoder(str(tmp_path), cache=False)


def test_newer_format_version_is_refused(tmp_path):
    (tmp_path / "semsim.json").write_text('{"format_version": 99, "source": "bert"}')
    with pytest.raises(EncoderError, match="Upgrade semsim"):
        load_encoder(str(tmp_path), cache=False)


def test_available_models_lists_bundled_and_tuned(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_MODELS_DIR", str(tmp_path))
    (tmp_path / "mine").mkdir()
    tiny_bert.save(tmp_path / "mine")
    specs = {info.spec: info.kind for info in available_models()}
    assert specs["minilm"] == "bundled" and specs["use-multilingual"] == "bundled"
    assert specs[str(tmp_path / "mine")] == "tuned"


def test_listing_models_does_not_start_tensorflow(tiny_bert, tmp_path):
    """`semsim models` and the app's model list read folders and names only; the backend loads with a model."""
    tiny_bert.save(tmp_path / "mine")
    code = ("import json, sys\nfrom semsim.encoders import available_models\n"
            "specs = [m.spec for m in available_models()]\n"
            "print(json.dumps([specs, sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules)]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                            env={**os.environ, "SEMSIM_MODELS_DIR": str(tmp_path)})
    specs, backends = json.loads(result.stdout.strip().splitlines()[-1])
    assert "minilm" in specs and str(tmp_path / "mine") in specs
    assert backends == []


def test_non_string_text_is_refused(tiny_bert):
    with pytest.raises(TypeError, match="text 1 is int"):
        tiny_bert.encode(["ok", 3])
