"""A BERT-family sentence encoder (keras-hub BertBackbone + pooling + L2) written as an ONNX Runtime graph."""

# Why write the graph from the weights instead of converting the traced TensorFlow function with tf2onnx:
# measured on minilm, tf2onnx took 107 s per conversion, needed an extra dependency, and produced a graph of
# 550 nodes (layer norms as GlobalAveragePool chains, 61 Casts) that ONNX Runtime's fusions do not match.
# This graph uses ONNX's own LayerNormalization, the textbook attention pattern and ONNX Runtime's FastGelu,
# builds in well under a second, and is checked against the Keras model's own vectors (tests/test_precision.py).

from __future__ import annotations

import math
from typing import Any

import numpy as np

OPSET = 17  # LayerNormalization became a standard op in opset 17
# ONNX Runtime's own fused operators (FastGelu): the graph is only ever run by it. Its fused Attention was
# tried too and kept out: no faster at int8, 7% slower at float32 (minilm, job titles, 1 thread).
CONTRIB = "com.microsoft"
INPUTS = ("token_ids", "segment_ids", "padding_mask")


class UnsupportedForOnnx(ValueError):
    """The encoder is not a keras-hub BERT backbone with mean or [CLS] pooling."""


def _weights(layer: Any) -> dict[str, np.ndarray]:
    """A layer's variables by their last path component (kernel, bias, gamma, beta, embeddings)."""
    return {v.path.rsplit("/", 1)[-1]: np.asarray(v.numpy(), dtype=np.float32) for v in layer.weights}


def _check(backbone: Any, pooling: str) -> None:
    from keras_hub.models import BertBackbone

    if type(backbone) is not BertBackbone:
        raise UnsupportedForOnnx(f"int8 is built for BERT-family (keras-hub BertBackbone) encoders; this one "
                                 f"is {type(backbone).__name__}")
    if pooling not in ("mean", "cls"):
        raise UnsupportedForOnnx(f"unknown pooling {pooling!r}")
    for layer in backbone.transformer_layers:
        config = layer.get_config()
        activation = str(config.get("activation"))
        if config.get("normalize_first") or "gelu_approximate" not in activation:
            raise UnsupportedForOnnx(f"transformer layer {layer.name} is not a post-norm BERT layer with "
                                     f"approximate GELU ({config.get('activation')})")


def build_bert_graph(backbone: Any, pooling: str = "mean") -> Any:
    """The onnx.ModelProto of backbone -> masked mean (or [CLS]) pooling -> L2 normalisation.

    Inputs are int32 (batch, tokens) arrays named as the Keras model's; the output `embedding` is float32
    (batch, hidden). Dropout is left out (inference only). Same maths as keras-hub's layers: post-norm
    blocks, LayerNorm epsilon from each layer, tanh-approximate GELU, queries scaled by 1/sqrt(head_dim)
    before the dot product, masked keys at -1e9 before the softmax.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _check(backbone, pooling)
    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(kind: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        counter[0] += 1
        out = f"{kind.lower()}_{counter[0]}"
        nodes.append(helper.make_node(kind, inputs, [out], name=out, domain=domain, **attrs))
        return out

    hidden = int(backbone.hidden_dim)
    heads = int(backbone.num_heads)
    head_dim = hidden // heads
    emb_ln = backbone.get_layer("embeddings_layer_norm")

    # Embeddings: token + position (the first `tokens` rows) + segment, then layer norm.
    token_table = const("token_embedding", _weights(backbone.get_layer("token_embedding"))["embeddings"])
    position_table = const("position_embedding", _weights(backbone.get_layer("position_embedding"))["embeddings"])
    segment_table = const("segment_embedding", _weights(backbone.get_layer("segment_embedding"))["embeddings"])
    zero = const("zero", np.array([0], np.int64))
    one = const("one", np.array([1], np.int64))
    tokens = op("Slice", [op("Shape", ["token_ids"]), one, const("two", np.array([2], np.int64))])
    positions = op("Slice", [position_table, zero, tokens, zero])  # (tokens, hidden)
    x = op("Add", [op("Add", [op("Gather", [token_table, "token_ids"]), positions]),
                   op("Gather", [segment_table, "segment_ids"])])
    w = _weights(emb_ln)
    x = op("LayerNormalization", [x, const("emb_ln_g", w["gamma"]), const("emb_ln_b", w["beta"])],
           axis=-1, epsilon=float(emb_ln.epsilon))

    # (batch, 1, 1, tokens) additive mask: 0 where a key is a real token, -1e9 at padding.
    mask_f = op("Cast", ["padding_mask"], to=TensorProto.FLOAT)
    key_mask = op("Unsqueeze", [mask_f, const("axes_1_2", np.array([1, 2], np.int64))])
    bias = op("Mul", [op("Sub", [const("f_one", np.array(1.0, np.float32)), key_mask]),
                      const("neg_large", np.array(-1e9, np.float32))])
    split_shape = const("split_shape", np.array([0, 0, heads, head_dim], np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, hidden], np.int64))
    scale = const("q_scale", np.array(1.0 / math.sqrt(head_dim), np.float32))

    def dense(name: str, inp: str, kernel: np.ndarray, bias_: np.ndarray) -> str:
        # The weight MatMuls are the ones quantized to int8: each has a constant (in, out) right side.
        return op("Add", [op("MatMul", [inp, const(f"{name}_w", kernel)]), const(f"{name}_b", bias_)])

    for i, layer in enumerate(backbone.transformer_layers):
        attn = layer._self_attention_layer
        q_w, k_w, v_w = (_weights(d) for d in (attn._query_dense, attn._key_dense, attn._value_dense))
        o_w = _weights(attn._output_dense)
        flat = lambda a: a["kernel"].reshape(hidden, hidden)  # noqa: E731  (in, heads, head_dim)
        q = op("Reshape", [dense(f"l{i}_q", x, flat(q_w), q_w["bias"].reshape(-1)), split_shape])
        k = op("Reshape", [dense(f"l{i}_k", x, flat(k_w), k_w["bias"].reshape(-1)), split_shape])
        v = op("Reshape", [dense(f"l{i}_v", x, flat(v_w), v_w["bias"].reshape(-1)), split_shape])
        q = op("Mul", [op("Transpose", [q], perm=[0, 2, 1, 3]), scale])
        scores = op("Add", [op("MatMul", [q, op("Transpose", [k], perm=[0, 2, 3, 1])]), bias])
        probs = op("Softmax", [scores], axis=-1)
        context = op("Transpose", [op("MatMul", [probs, op("Transpose", [v], perm=[0, 2, 1, 3])])],
                     perm=[0, 2, 1, 3])
        context = op("Reshape", [context, merge_shape])
        attended = dense(f"l{i}_o", context, o_w["kernel"].reshape(hidden, hidden), o_w["bias"])
        ln = layer._self_attention_layer_norm
        w = _weights(ln)
        x = op("LayerNormalization", [op("Add", [x, attended]), const(f"l{i}_ln1_g", w["gamma"]),
                                      const(f"l{i}_ln1_b", w["beta"])], axis=-1, epsilon=float(ln.epsilon))
        w1, w2 = _weights(layer._feedforward_intermediate_dense), _weights(layer._feedforward_output_dense)
        # GELU, tanh form (keras_hub's gelu_approximate), as ONNX Runtime's FastGelu with the ff1 bias folded
        # in: one pass over the (batch, tokens, 4 * hidden) activations instead of the eight of the textbook
        # chain, which took a fifth of the int8 encoder's time on job titles.
        h = op("FastGelu", [op("MatMul", [x, const(f"l{i}_ff1_w", w1["kernel"])]), const(f"l{i}_ff1_b", w1["bias"])],
               domain=CONTRIB)
        ff = dense(f"l{i}_ff2", h, w2["kernel"], w2["bias"])
        ln = layer._feedforward_layer_norm
        w = _weights(ln)
        x = op("LayerNormalization", [op("Add", [x, ff]), const(f"l{i}_ln2_g", w["gamma"]),
                                      const(f"l{i}_ln2_b", w["beta"])], axis=-1, epsilon=float(ln.epsilon))

    if pooling == "cls":
        pooled = op("Squeeze", [op("Slice", [x, zero, one, one]), one])
    else:  # masked mean, the count clamped at 1e-9 as MaskedPooling does
        mask3 = op("Unsqueeze", [mask_f, const("axis_2", np.array([2], np.int64))])
        total = op("ReduceSum", [op("Mul", [x, mask3]), one], keepdims=0)
        count = op("Max", [op("ReduceSum", [mask3, one], keepdims=0), const("eps_count", np.array(1e-9, np.float32))])
        pooled = op("Div", [total, count])
    sq = op("ReduceSum", [op("Mul", [pooled, pooled]), const("axis_last", np.array([-1], np.int64))], keepdims=1)
    inv = op("Reciprocal", [op("Sqrt", [op("Max", [sq, const("eps_norm", np.array(1e-24, np.float32))])])])
    nodes.append(helper.make_node("Mul", [pooled, inv], ["embedding"], name="l2_normalize"))

    graph = helper.make_graph(
        nodes, "semsim_sentence_encoder",
        [helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "tokens"]) for name in INPUTS],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(CONTRIB, 1)],
                              producer_name="semsim")
    model.ir_version = 8  # what ONNX Runtime 1.31 reads for opset 17 without complaint
    onnx.checker.check_model(model)
    return model


def weight_matmuls(model: Any) -> list[str]:
    """Names of the MatMul nodes whose right side is a weight (the ones int8 quantizes)."""
    weights = {init.name for init in model.graph.initializer}
    return [node.name for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights]
