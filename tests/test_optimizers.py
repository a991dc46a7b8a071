"""FusedAdamW takes the same steps as keras AdamW on dense gradients (with decay, clipping, a schedule)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from semsim.training.optimizers import FusedAdamW, WarmupLinearDecay  # noqa: E402


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(7)
    ids = keras.Input(shape=(4,), dtype="int32")
    x = keras.layers.Embedding(20, 6)(ids)  # its gradient comes as IndexedSlices
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(ids, keras.layers.Dense(3)(x))


def train(optimizer: keras.optimizers.Optimizer, steps: int = 5, dense: bool = False) -> list[np.ndarray]:
    model = tiny_model()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        ids = rng.integers(0, 10, size=(8, 4)).astype("int32")  # rows 10-19 get no gradient at all
        target = rng.normal(size=(8, 3)).astype("float32")
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(ids) - target))
        gradients = tape.gradient(loss, model.trainable_variables)
        if dense:
            gradients = [tf.convert_to_tensor(g) for g in gradients]
        optimizer.apply(gradients, model.trainable_variables)
    return model.get_weights()


@pytest.mark.parametrize("clipnorm", [None, 0.05])
def test_fused_adamw_matches_keras_adamw(clipnorm):
    def settings():
        return {"learning_rate": WarmupLinearDecay(1e-2, 2, 5), "weight_decay": 0.1, "clipnorm": clipnorm}

    start = tiny_model().get_weights()
    # The oracle gets the embedding's gradient densified: Keras' own step squares IndexedSlices values
    # per occurrence, so a token seen twice in a batch gets g1^2 + g2^2 instead of (g1 + g2)^2.
    want = train(keras.optimizers.AdamW(**settings()), dense=True)
    got = train(FusedAdamW(**settings()))
    for before, w, g in zip(start, want, got, strict=True):
        assert not np.allclose(w, before)  # the comparison means something only if training moved them
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_embedding_gradients_take_the_dense_adam_step():
    """Repeated tokens: the fused step on IndexedSlices equals the step on the summed, dense gradient."""
    def settings():
        return {"learning_rate": 1e-2, "weight_decay": 0.0}

    sparse, dense = train(FusedAdamW(**settings())), train(FusedAdamW(**settings()), dense=True)
    for s, d in zip(sparse, dense, strict=True):
        np.testing.assert_allclose(s, d, rtol=1e-6, atol=1e-8)


def test_fused_adamw_round_trips_its_config():
    optimizer = FusedAdamW(learning_rate=1e-3, weight_decay=0.02)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, FusedAdamW)
    assert restored.weight_decay == pytest.approx(0.02)


def test_mixed_bfloat16_step_updates_float32_weights():
    """The mixed-precision policy a GPU run uses: bf16 gradients meet float32 weights in the fused step."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny_model()
        start = model.get_weights()
        optimizer = FusedAdamW(learning_rate=1e-2, weight_decay=0.1, clipnorm=0.05)
        ids = np.random.default_rng(0).integers(0, 10, size=(8, 4)).astype("int32")
        with tf.GradientTape() as tape:
            output = model(ids)
            loss = tf.reduce_mean(tf.square(tf.cast(output, "float32")))
        assert output.dtype == tf.bfloat16
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
        for before, after, variable in zip(start, model.get_weights(), model.trainable_variables, strict=True):
            assert variable.dtype == "float32"
            assert not np.allclose(before, after)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_clipping_scales_only_tensors_over_the_limit():
    """Per-tensor clipping, eagerly and in a graph: a norm of 5 becomes 1, a norm of 0.5 is left as is."""
    optimizer = FusedAdamW(learning_rate=1e-3, clipnorm=1.0)
    small, large = tf.constant([[0.3], [0.4]]), tf.constant([[3.0], [4.0]])
    for clip in (optimizer._clip_by_norm, tf.function(optimizer._clip_by_norm)):
        np.testing.assert_allclose(clip(small), [[0.3], [0.4]], rtol=1e-6)
        np.testing.assert_allclose(clip(large), [[0.6], [0.8]], rtol=1e-6)
