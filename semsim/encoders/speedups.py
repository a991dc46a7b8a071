"""Speed-ups applied to loaded Keras encoders that change neither their maths nor their saved format."""

from __future__ import annotations

import types
from typing import Any

from semsim._env import preload_backend

preload_backend()  # before Keras is imported, so TensorFlow's C++ start-up logs stay quiet

# ruff: noqa: E402

import keras
from keras import ops

# The two projection shapes of keras MultiHeadAttention: hidden -> (heads, head_dim) for query, key and
# value, and (heads, head_dim) -> hidden for the output.
SPLIT_HEADS = "abc,cde->abde"
MERGE_HEADS = "abcd,cde->abe"


def _flat_projection_call(self: keras.layers.EinsumDense, inputs: Any, training: Any = None) -> Any:
    """EinsumDense.call as one 2-D matmul: (batch * tokens, in) @ (in, out), then back to its shape."""
    kernel = self.kernel  # the property, so a LoRA-enabled kernel is included
    kernel_shape = tuple(kernel.shape)
    leading = ops.shape(inputs)[:2]
    if self.equation == SPLIT_HEADS:
        rows = ops.reshape(inputs, (-1, kernel_shape[0]))
        out = ops.matmul(rows, ops.reshape(kernel, (kernel_shape[0], kernel_shape[1] * kernel_shape[2])))
        out = ops.reshape(out, (*leading, kernel_shape[1], kernel_shape[2]))
    else:
        rows = ops.reshape(inputs, (-1, kernel_shape[0] * kernel_shape[1]))
        out = ops.matmul(rows, ops.reshape(kernel, (kernel_shape[0] * kernel_shape[1], kernel_shape[2])))
        out = ops.reshape(out, (*leading, kernel_shape[2]))
    if self.bias is not None:
        out = ops.add(out, self.bias)
    if self.activation is not None:
        out = self.activation(out)
    return out


def flatten_attention_projections(model: Any) -> int:
    """Run every attention projection of `model` as a 2-D matmul; returns how many layers changed.

    Why: on TensorFlow, Keras turns these einsums into a (batch, tokens, in) @ (in, out) matmul that
    broadcasts the kernel over the batch, so the kernel's gradient is computed once per example as a
    (batch, in, out) tensor and then summed. In a MiniLM training step on CPU that made the backward pass
    three times slower than PyTorch's. One 2-D matmul gives the same numbers with a single (in, out)
    gradient. Quantized layers keep their own call path, so they are left alone.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if (isinstance(layer, keras.layers.EinsumDense) and layer.equation in (SPLIT_HEADS, MERGE_HEADS)
                and layer.quantization_mode is None):
            layer.call = types.MethodType(_flat_projection_call, layer)
            changed += 1
    return changed
