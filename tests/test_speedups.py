"""Attention projections as 2-D matmuls: same outputs and gradients as Keras' einsum, every layer covered."""

from __future__ import annotations

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")
tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from semsim.encoders.speedups import flatten_attention_projections  # noqa: E402


def tiny_backbone(seed: int = 3):
    keras.utils.set_random_seed(seed)
    return keras_hub.models.BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16,
                                         intermediate_dim=32, max_sequence_length=16, dropout=0.0)


def batch(seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(3, 7)).astype("int32")
    mask = np.ones_like(ids)
    mask[0, 5:] = 0
    return {"token_ids": ids, "padding_mask": mask, "segment_ids": np.zeros_like(ids)}


def outputs_and_gradients(backbone, inputs):
    with tf.GradientTape() as tape:
        sequence = backbone(inputs, training=False)["sequence_output"]
        loss = tf.reduce_sum(sequence * tf.range(1.0, 17.0))  # weights every unit differently
    gradients = tape.gradient(loss, backbone.trainable_variables)
    # the pooler's dense gets no gradient from the sequence output: None on both sides
    return sequence.numpy(), [None if g is None else tf.convert_to_tensor(g).numpy() for g in gradients]


def test_every_attention_projection_is_flattened():
    backbone = tiny_backbone()
    # query, key, value and output projection in each of the two layers; the feed-forward is untouched
    assert flatten_attention_projections(backbone) == 8


def test_flattened_projections_give_the_same_outputs_and_gradients():
    reference, flattened = tiny_backbone(), tiny_backbone()
    flattened.set_weights(reference.get_weights())
    inputs = batch()
    assert flatten_attention_projections(flattened) > 0
    want_out, want_grads = outputs_and_gradients(reference, inputs)
    got_out, got_grads = outputs_and_gradients(flattened, inputs)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-5, atol=1e-6)
    assert len(got_grads) == len(want_grads)
    for got, want in zip(got_grads, want_grads, strict=True):
        if want is None:
            assert got is None
            continue
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_lora_kernel_is_used_after_flattening():
    """The override reads the layer's kernel property, so a LoRA update still changes the output."""
    layer = keras.layers.EinsumDense("abc,cde->abde", output_shape=(None, 2, 4), bias_axes="de")
    x = np.random.default_rng(1).normal(size=(2, 3, 8)).astype("float32")
    layer(x)
    layer.bias.assign(np.full(layer.bias.shape, 0.5, "float32"))
    layer.enable_lora(2)
    layer.lora_kernel_b.assign(np.ones(layer.lora_kernel_b.shape, "float32"))
    want = keras.ops.convert_to_numpy(layer(x))
    assert flatten_attention_projections(layer) == 1
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), want, rtol=1e-5, atol=1e-6)
