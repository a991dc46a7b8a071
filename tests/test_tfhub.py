"""TF Hub SavedModels inside Keras 3: loading, and training that really changes the SavedModel's weights."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from semsim.encoders import EncoderError, load_encoder

TEXTS = ["data scientist", "software engineer", "nurse", "chef"]


def _one_training_step(encoder, learning_rate=0.05):
    """Pull the first two texts together with AdamW: one gradient step through the whole model."""
    optimizer = keras.optimizers.AdamW(learning_rate)
    inputs = encoder.preprocess(TEXTS)
    with tf.GradientTape() as tape:
        vectors = encoder.model(inputs, training=True)
        loss = -tf.reduce_sum(vectors[0] * vectors[1])
    grads = tape.gradient(loss, encoder.model.trainable_weights)
    assert all(g is not None for g in grads), "a trainable SavedModel variable got no gradient"
    optimizer.apply(grads, encoder.model.trainable_weights)
    encoder.reset_compiled()


def test_savedmodel_encoder_embeds_and_normalises(tiny_hub_dir):
    encoder = load_encoder(f"tfhub:{tiny_hub_dir}", cache=False)
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (4, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.layer._accepts_training


def test_training_changes_the_savedmodel_weights(tiny_hub_dir):
    encoder = load_encoder(f"tfhub:{tiny_hub_dir}", cache=False)
    module = encoder.layer.module
    before = {v.name: v.numpy().copy() for v in module.variables}
    similarity_before = float(encoder.similarity(TEXTS[:2])[0, 1])
    _one_training_step(encoder)
    after = {v.name: v.numpy() for v in module.variables}
    # The variables the restored graph reads moved; the frozen one did not.
    assert not np.allclose(before["embeddings/weights:0"], after["embeddings/weights:0"])
    assert not np.allclose(before["dense/kernel:0"], after["dense/kernel:0"])
    np.testing.assert_array_equal(before["frozen/scale:0"], after["frozen/scale:0"])
    similarity_after = float(encoder.similarity(TEXTS[:2])[0, 1])
    assert similarity_after > similarity_before


def _fit_one_batch(model):
    model.compile(optimizer=keras.optimizers.AdamW(0.05), loss="mse")
    model.fit({"text": tf.constant(TEXTS)}, np.ones((len(TEXTS), 8), "float32"), epochs=1,
              verbose=0)


def test_tfsmlayer_cannot_fit_but_our_layer_can(tiny_hub_dir):
    """The trap: TFSMLayer keeps ':0' variable names and model.fit fails; our layer trains in fit."""
    text = keras.Input(shape=(), dtype="string", name="text")
    trap = keras.Model({"text": text}, keras.layers.TFSMLayer(str(tiny_hub_dir), call_endpoint="__call__",
                                                               trainable=True)(text))
    with pytest.raises(ValueError, match="scope name"):
        _fit_one_batch(trap)

    encoder = load_encoder(f"tfhub:{tiny_hub_dir}", cache=False)
    kernel = next(v for v in encoder.layer.module.variables if v.name == "dense/kernel:0")
    before = kernel.numpy().copy()
    _fit_one_batch(encoder.model)
    assert not np.allclose(before, kernel.numpy())


def test_trained_savedmodel_round_trips(tiny_hub_dir, tmp_path):
    encoder = load_encoder(f"tfhub:{tiny_hub_dir}", cache=False)
    _one_training_step(encoder)
    folder = tmp_path / "tuned"
    folder.mkdir()
    encoder.save(folder)
    reloaded = load_encoder(str(folder), cache=False)
    np.testing.assert_allclose(reloaded.encode(TEXTS), encoder.encode(TEXTS), atol=1e-6)


def test_encoder_plus_preprocess_pair(tiny_hub_pair, tmp_path):
    encoder_dir, preprocess_dir = tiny_hub_pair
    encoder = load_encoder(f"tfhub:{encoder_dir}+{preprocess_dir}", cache=False)
    assert encoder.encode(TEXTS).shape == (4, 8)
    _one_training_step(encoder)
    folder = tmp_path / "pair"
    folder.mkdir()
    encoder.save(folder)
    np.testing.assert_allclose(load_encoder(str(folder), cache=False).encode(TEXTS), encoder.encode(TEXTS),
                               atol=1e-6)


def test_folder_without_saved_model_is_refused(tmp_path):
    with pytest.raises(EncoderError, match="not a SavedModel"):
        load_encoder(f"tfhub:{tmp_path}", cache=False)


def test_unreachable_hub_handle_says_network(monkeypatch):
    import tensorflow_hub as hub

    def offline(handle):
        raise OSError("Could not resolve host")

    monkeypatch.setattr(hub, "load", offline)
    with pytest.raises(EncoderError, match="network"):
        load_encoder("tfhub:https://tfhub.dev/google/universal-sentence-encoder/4", cache=False)
