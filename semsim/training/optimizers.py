"""Optimisation: AdamW with fused TensorFlow updates (keras AdamW's maths in fewer passes) and its schedule."""

from __future__ import annotations

from typing import Any

import keras

from semsim.training.spec import TrainingArguments


@keras.saving.register_keras_serializable(package="semsim")
class FusedAdamW(keras.optimizers.AdamW):
    """keras AdamW whose per-tensor Adam step runs as TensorFlow's fused ResourceApplyAdam kernel.

    Why: Keras writes the step as about ten element-wise ops, each a full pass over the weights with a
    temporary. For MiniLM (22.5M weights) on CPU that was a third of a training step. The fused kernel
    reads and writes each tensor once. The update is the one Keras computes:
    m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2); w -= lr_t * m / (sqrt(v) + epsilon),
    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t). Decoupled weight decay (w -= lr * wd * w) and
    per-tensor clipping (g *= clipnorm / max(|g|, clipnorm)) are Keras' too, each in fewer passes.
    On JAX the whole train step is compiled with XLA, which fuses the update anyway, so other backends
    (and AMSGrad, and a tf.distribute strategy) take the parent's path.
    """

    def _fused(self) -> bool:
        if keras.backend.backend() != "tensorflow" or self.amsgrad:
            return False
        import tensorflow as tf

        return not tf.distribute.has_strategy()

    def apply(self, grads: Any, trainable_variables: Any = None) -> Any:
        if keras.backend.backend() == "tensorflow":
            # An embedding's gradient arrives as IndexedSlices, one row per token occurrence. Summing
            # repeated tokens first gives the dense gradient PyTorch's AdamW sees, for the clipping norm
            # and the second moment alike; Keras' own step would square each occurrence
            # (g1^2 + g2^2, not (g1 + g2)^2). Every row then moves, as in dense Adam.
            grads = [self._merge_repeated_rows(g) for g in grads]
        return super().apply(grads, trainable_variables)

    def _merge_repeated_rows(self, gradient: Any) -> Any:
        """IndexedSlices with one row per distinct index (the dense gradient's non-zero rows); dense
        outside the fused path. Kept sparse, the rows are clipped before the one dense copy is made in
        update_step: for a 30k-token vocabulary that is a few hundred rows instead of 11.7M numbers."""
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            return gradient
        if not self._fused():
            return tf.convert_to_tensor(gradient)
        rows, position = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, position, tf.size(rows))
        return tf.IndexedSlices(values, rows, gradient.dense_shape)

    def _clip_by_norm(self, values: Any, axes: Any = None) -> Any:
        if not self._fused() or axes is not None:  # checks the backend before TensorFlow is imported
            return super()._clip_by_norm(values, axes)
        import tensorflow as tf

        if isinstance(values, tf.IndexedSlices):
            # apply() merged repeated rows, so the norm of these rows is the dense gradient's norm.
            return tf.IndexedSlices(self._clip_by_norm(values.values), values.indices, values.dense_shape)
        # tf.clip_by_norm makes four passes (square, sum, multiply, divide). L2Loss (sum of squares / 2)
        # reads the tensor once, several times faster on CPU than a dot product of the flattened tensor
        # with itself. A tensor under the limit has a scale of exactly 1, so its multiply (a pass that
        # writes a copy) is skipped. (In a MiniLM CoSENT step about 1 tensor in 8 is under the limit.)
        norm = tf.sqrt(2.0 * tf.nn.l2_loss(values))
        clipnorm = tf.cast(self.clipnorm, values.dtype)
        return tf.cond(norm > clipnorm, lambda: values * (clipnorm / norm), lambda: values)

    def _apply_weight_decay(self, variables: Any) -> None:
        if self.weight_decay is None or not self._fused():
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        # w *= 1 - lr * wd, as PyTorch's AdamW writes it: one multiply and one write per tensor, faster
        # here than Keras' w - w * wd * lr (two temporaries). The schedule is evaluated once per step,
        # not once per variable.
        keep = 1.0 - tf.cast(self.learning_rate, "float32") * tf.cast(self.weight_decay, "float32")
        for variable in variables:
            if self._use_weight_decay(variable):
                variable.assign(variable * tf.cast(keep, variable.dtype))
        return None

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> Any:
        if not self._fused():
            return super().update_step(gradient, variable, learning_rate)
        import tensorflow as tf

        dtype = variable.dtype
        gradient = tf.cast(tf.convert_to_tensor(gradient), dtype)  # merged IndexedSlices become dense here
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype), beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype), epsilon=tf.cast(self.epsilon, dtype), grad=gradient,
            use_locking=False)


@keras.saving.register_keras_serializable(package="semsim")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay to 0 at `total_steps`."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int):
        self.peak, self.warmup_steps, self.total_steps = float(peak), int(warmup_steps), int(total_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * step / max(self.warmup_steps, 1)
        decay = self.peak * keras.ops.maximum(0.0, (self.total_steps - step)
                                              / max(self.total_steps - self.warmup_steps, 1))
        return keras.ops.where(step < self.warmup_steps, warm, decay)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}


def make_optimizer(config: TrainingArguments, total_steps: int, learning_rate: float | None = None) -> Any:
    """FusedAdamW on a warm-up + linear decay schedule, from a request's hyperparameters."""
    schedule = WarmupLinearDecay(learning_rate or config.learning_rate,
                                 int(total_steps * config.warmup_ratio), total_steps)
    return FusedAdamW(learning_rate=schedule, weight_decay=config.weight_decay, clipnorm=config.clipnorm)
