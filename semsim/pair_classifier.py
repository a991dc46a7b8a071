"""Pair classifiers: a cross-encoder (both texts read together, [CLS] a [SEP] b [SEP]) or the bi-encoder baseline (a head on [u, v, |u - v|, u * v]), with a classification or a regression head; one folder, weights only."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semsim._env import preload_backend

preload_backend()  # before Keras is imported, so TensorFlow's C++ start-up logs stay quiet

# ruff: noqa: E402

import keras
from keras import ops

from semsim.encoders import EncoderError, load_encoder, recover_model_folder
from semsim.encoders.base import Encoder, make_inference_fn, pad_to_bucket, validate_texts
from semsim.encoders.config import FORMAT_VERSION, read_config
from semsim.names import CONFIG_FILE
from semsim.training.spec import USE_CROSS_REFUSAL

TASK = "pair-classifier"
CROSS, BI = "cross", "bi"
CLASSIFICATION, REGRESSION = "classification", "regression"
HEAD_WEIGHTS = "pair_head.weights.h5"
DEFAULT_MAX_LENGTH = 128

# Label sets whose order from "unrelated" to "the same" is known: a reranker turns a classifier's
# probabilities into one relevance score with it (see PairClassifier.score_pairs).
KNOWN_ORDERS = (("other-major", "same-major", "same-unit"),
                ("unrelated", "related", "equivalent"),
                ("contradiction", "neutral", "entailment"))


def cross_encoder_refusal(encoder: Encoder) -> str | None:
    """Why `encoder` cannot read a joined pair (None when it can: a keras-hub BERT-family backbone)."""
    from semsim.encoders.bert import BertEncoder

    if isinstance(encoder, BertEncoder):
        return None
    if encoder.source == "use":
        return USE_CROSS_REFUSAL
    return (f"{encoder.spec} cannot be a cross-encoder: a TF Hub SavedModel takes one text per input and "
            f"exposes no pair preprocessing (segment ids, separator) to join two texts with. Use a keras-hub "
            f"backbone (minilm, keras-hub:<preset-or-folder>), or --architecture bi for this model.")


def default_relevance_order(labels: Sequence[str]) -> list[str]:
    """The labels from least to most related: a known label set in its order, else sorted."""
    for order in KNOWN_ORDERS:
        if set(order) == set(labels):
            return list(order)
    return sorted(labels)


# -- pair tokenisation ----------------------------------------------------------------------------
class PairPacker:
    """Pairs tokenised as a BERT-family backbone was pre-trained on them: [CLS] a [SEP] b [SEP], segment
    ids 0 for the first text and its separators, 1 for the second, and past `max_length` the longer text
    truncated first (Hugging Face's "longest_first"; keras-hub's "round_robin" packer trims the same way).

    `tokenizer` is a BertEncoder's HFTokenizer or KerasHubTokenizer; the pair form is their tokenizer's
    own (tokenizer.json's pair template; the keras-hub preprocessor's MultiSegmentPacker), so RoBERTa-
    style models get their own separators."""

    def __init__(self, tokenizer: Any, input_names: Sequence[str], max_length: int):
        from semsim.encoders.bert import HFTokenizer

        self.max_length = int(max_length)
        self.input_names = list(input_names)
        self.pad_id = int(tokenizer.pad_id)
        self.hf = None
        self.preprocessor = None
        if isinstance(tokenizer, HFTokenizer):
            from tokenizers import Tokenizer

            self.hf = Tokenizer.from_file(str(tokenizer.path))
            self.hf.enable_truncation(self.max_length, strategy="longest_first")
            self.hf.no_padding()
        else:
            base = tokenizer.preprocessor
            self.preprocessor = type(base)(tokenizer=base.tokenizer, sequence_length=self.max_length,
                                           truncate="round_robin")

    def tokenize(self, texts_a: list[str], texts_b: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        """(token ids, segment ids) of each pair, unpadded."""
        if self.hf is not None:
            encodings = self.hf.encode_batch(list(zip(texts_a, texts_b, strict=True)))
            return [e.ids for e in encodings], [e.type_ids for e in encodings]
        # x= by name: a bare tuple would be unpacked as (x, y), the second texts taken for labels.
        from semsim.encoders.bert import unpadded

        return unpadded(self.preprocessor(x=(list(texts_a), list(texts_b))))

    def __call__(self, texts_a: list[str], texts_b: list[str]) -> dict[str, np.ndarray]:
        ids, segments = self.tokenize(texts_a, texts_b)
        length = pad_to_bucket(max(len(row) for row in ids), cap=self.max_length)
        arrays = {"token_ids": np.full((len(ids), length), self.pad_id, dtype=np.int32),
                  "padding_mask": np.zeros((len(ids), length), dtype=np.int32),
                  "segment_ids": np.zeros((len(ids), length), dtype=np.int32)}
        for i, (row, seg) in enumerate(zip(ids, segments, strict=True)):
            arrays["token_ids"][i, :len(row)] = row
            arrays["padding_mask"][i, :len(row)] = 1
            arrays["segment_ids"][i, :len(seg)] = seg
        return {name: arrays[name] for name in self.input_names}


# -- Keras parts ------------------------------------------------------------------------------------
class CrossFeatures(keras.Model):
    """A backbone's vector of a joined pair: BERT's pooler output (dense + tanh on [CLS]), as KerasHub's
    BertTextClassifier and Hugging Face's BertForSequenceClassification use, else the [CLS] token."""

    def __init__(self, backbone: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.input_names = list(backbone.input.keys()) if isinstance(backbone.input, dict) else [
            "token_ids", "padding_mask"]
        outputs = backbone.output
        self.use_pooler = isinstance(outputs, dict) and "pooled_output" in outputs
        self.dim = int(backbone.hidden_dim)

    def call(self, inputs, training=False):
        outputs = self.backbone({name: inputs[name] for name in self.input_names}, training=training)
        if self.use_pooler:
            return outputs["pooled_output"]
        sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
        return sequence[:, 0, :]


class CrossHead(keras.Model):
    """A joined pair's vector -> dropout -> dense: a softmax over the labels, or one logit (regression)."""

    def __init__(self, n_outputs: int, dropout: float = 0.1, **kwargs: Any):
        super().__init__(**kwargs)
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.dense = keras.layers.Dense(n_outputs, activation="softmax" if n_outputs > 1 else None,
                                        name="classifier", dtype="float32")

    def call(self, features, training=False):
        return self.dense(self.dropout(features, training=training))


class BiHead(keras.Model):
    """Two sentence vectors -> [u, v, |u - v|, u * v] -> dropout -> dense (Sentence-BERT's classifier).

    Encoder outputs are unit vectors; scaling them by sqrt(dim) first gives features of order one, so
    the dense layer learns at the small learning rates full fine-tuning uses."""

    def __init__(self, n_outputs: int, dim: int, dropout: float = 0.1, **kwargs: Any):
        super().__init__(**kwargs)
        self.scale = math.sqrt(dim)
        self.dropout = keras.layers.Dropout(dropout, name="dropout")
        self.dense = keras.layers.Dense(n_outputs, activation="softmax" if n_outputs > 1 else None,
                                        name="classifier", dtype="float32")

    def call(self, inputs, training=False):
        u = ops.cast(inputs["u"], "float32") * self.scale
        v = ops.cast(inputs["v"], "float32") * self.scale
        features = ops.concatenate([u, v, ops.abs(u - v), u * v], axis=-1)
        return self.dense(self.dropout(features, training=training))


class CrossEncoderNet(keras.Model):
    """Full fine-tuning of a cross-encoder: the joined pair through the backbone, then the head."""

    def __init__(self, features: CrossFeatures, head: CrossHead, **kwargs: Any):
        super().__init__(**kwargs)
        self.features, self.head = features, head

    def call(self, inputs, training=False):
        return self.head(self.features(inputs, training=training), training=training)


class BiEncoderNet(keras.Model):
    """Full fine-tuning of the bi-encoder baseline: one shared encoder embeds both texts."""

    def __init__(self, encoder_model: keras.Model, head: BiHead, **kwargs: Any):
        super().__init__(**kwargs)
        self.encoder_model, self.head = encoder_model, head

    def call(self, inputs, training=False):
        u = self.encoder_model(inputs["a"], training=training)
        v = self.encoder_model(inputs["b"], training=training)
        return self.head({"u": u, "v": v}, training=training)


def _set_pooler_trainable(backbone: Any, trainable: bool) -> None:
    # A sentence encoder keeps BERT's pooler out of training (it pools tokens itself); a cross-encoder
    # classifies from it, so there it trains with the rest.
    for layer in getattr(backbone, "layers", []):
        if layer.name == "pooled_dense":
            layer.trainable = trainable


# -- the pair classifier ------------------------------------------------------------------------------
class PairClassifier:
    """`predict(a, b)` -> labels and probabilities (classification) or scores (regression);
    `score_pairs(a, b)` -> one number per pair, higher = more related (what rerank and `evaluate pairs` use)."""

    def __init__(self, encoder: Encoder, head: Any, *, architecture: str, head_kind: str,
                 labels: Sequence[str] = (), score_range: tuple[float, float] | None = None,
                 relevance_order: Sequence[str] | None = None, mode: str = "full", dropout: float = 0.1,
                 max_length: int = DEFAULT_MAX_LENGTH, spec: str = ""):
        if architecture not in (CROSS, BI):
            raise EncoderError(f"unknown pair-classifier architecture {architecture!r}")
        if head_kind not in (CLASSIFICATION, REGRESSION):
            raise EncoderError(f"unknown pair-classifier head {head_kind!r}")
        self.encoder, self.head = encoder, head
        self.architecture, self.head_kind, self.mode, self.dropout = architecture, head_kind, mode, dropout
        self.labels = list(labels)
        self.score_range = tuple(score_range) if score_range else (0.0, 1.0)
        self.relevance_order = list(relevance_order or default_relevance_order(self.labels))
        if head_kind == CLASSIFICATION and sorted(self.relevance_order) != sorted(self.labels):
            raise EncoderError(f"the relevance order {self.relevance_order} must list each label once: "
                               f"{', '.join(self.labels)}")
        self.max_length = int(max_length)
        self.spec = spec or encoder.spec
        self.name = Path(self.spec).name if self.spec else encoder.name
        self.packer: PairPacker | None = None
        self.features: CrossFeatures | None = None
        if architecture == CROSS:
            refusal = cross_encoder_refusal(encoder)
            if refusal:
                raise EncoderError(refusal)
            self.features = CrossFeatures(encoder.backbone, name="cross_features")
            cap = getattr(encoder.backbone, "max_sequence_length", None) or self.max_length
            self.max_length = min(self.max_length, int(cap))
            self.packer = PairPacker(encoder.tokenizer, self.features.input_names, self.max_length)
            self.net: keras.Model = CrossEncoderNet(self.features, head, name="cross_encoder")
        else:
            self.net = BiEncoderNet(encoder.model, head, name="bi_encoder_pairs")
        self._fns: dict[str, Any] = {}

    @property
    def n_outputs(self) -> int:
        return len(self.labels) if self.head_kind == CLASSIFICATION else 1

    @property
    def feature_dim(self) -> int:
        return self.features.dim if self.features is not None else self.encoder.dim

    @classmethod
    def build(cls, encoder: Encoder, *, architecture: str, head_kind: str, labels: Sequence[str] = (),
              dropout: float = 0.1, **kwargs: Any) -> PairClassifier:
        """A new, untrained head on `encoder` (built, so its weights exist)."""
        n_outputs = len(labels) if head_kind == CLASSIFICATION else 1
        if head_kind == CLASSIFICATION and n_outputs < 2:
            raise EncoderError("a pair classifier needs at least two labels")
        if architecture == CROSS:
            refusal = cross_encoder_refusal(encoder)
            if refusal:
                raise EncoderError(refusal)
            head: Any = CrossHead(n_outputs, dropout, name="cross_head")
        else:
            head = BiHead(n_outputs, encoder.dim, dropout, name="bi_head")
        model = cls(encoder, head, architecture=architecture, head_kind=head_kind, labels=labels,
                    dropout=dropout, **kwargs)
        model.build_head()
        return model

    def build_head(self) -> None:
        dim = self.feature_dim
        if self.architecture == CROSS:
            _set_pooler_trainable(self.encoder.backbone, True)
            self.head(np.zeros((1, dim), dtype="float32"))
        else:
            self.head({"u": np.zeros((1, dim), dtype="float32"), "v": np.zeros((1, dim), dtype="float32")})

    # -- inputs ------------------------------------------------------------------------------------
    def pack(self, texts_a: list[str], texts_b: list[str]) -> dict[str, np.ndarray]:
        """The cross-encoder's input arrays for a batch of pairs."""
        if self.packer is None:
            raise EncoderError("only a cross-encoder reads joined pairs")
        return self.packer(texts_a, texts_b)

    def _run(self, key: str, model: Any, inputs: Any) -> np.ndarray:
        if key not in self._fns:
            if not model.built:  # JAX's stateless call needs the variables to exist: one eager call makes them
                model(inputs, training=False)
            self._fns[key] = make_inference_fn(model)
        return np.asarray(self._fns[key](inputs), dtype=np.float32)

    def cross_features(self, texts_a: list[str], texts_b: list[str], batch_size: int = 64) -> np.ndarray:
        """The backbone's vector of each joined pair (a frozen cross-encoder's head trains on these)."""
        return self._batched(texts_a, texts_b, batch_size, lambda a, b: self._run("features", self.features,
                                                                                 self.pack(a, b)))

    def sentence_pairs(self, texts_a: list[str], texts_b: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """{"u", "v"}: the sentence vectors of both sides (each distinct text embedded once)."""
        unique = list(dict.fromkeys([*texts_a, *texts_b]))
        vectors = dict(zip(unique, self.encoder.encode(unique, batch_size=batch_size), strict=True))
        return {"u": np.stack([vectors[t] for t in texts_a]), "v": np.stack([vectors[t] for t in texts_b])}

    def _batched(self, texts_a: list[str], texts_b: list[str], batch_size: int, run: Any) -> np.ndarray:
        """`run(a, b)` over batches of pairs sorted by length (little padding), in the input order."""
        order = np.argsort([len(a) + len(b) for a, b in zip(texts_a, texts_b, strict=True)], kind="stable")
        parts, rows = [], []
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            parts.append(run([texts_a[i] for i in chunk], [texts_b[i] for i in chunk]))
            rows.append(chunk)
        out = np.zeros((len(order), parts[0].shape[1]), dtype=np.float32)
        out[np.concatenate(rows)] = np.concatenate(parts)
        return out

    def outputs(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The head's raw outputs: (n, n_labels) probabilities, or (n, 1) logits (regression)."""
        texts_a, texts_b = validate_texts(texts_a), validate_texts(texts_b)
        if len(texts_a) != len(texts_b):
            raise ValueError(f"{len(texts_a)} first texts for {len(texts_b)} second texts")
        if not texts_a:
            return np.zeros((0, self.n_outputs), dtype=np.float32)
        if self.architecture == CROSS:
            return self._batched(texts_a, texts_b, batch_size, lambda a, b: self._run("net", self.net,
                                                                                     self.pack(a, b)))
        pairs = self.sentence_pairs(texts_a, texts_b, batch_size)
        return np.concatenate([self._run("head", self.head, {"u": pairs["u"][i:i + 512], "v": pairs["v"][i:i + 512]})
                               for i in range(0, len(texts_a), 512)])

    # -- predictions -------------------------------------------------------------------------------
    def predict_proba(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if self.head_kind != CLASSIFICATION:
            raise EncoderError(f"{self.name} is a regression pair model: it predicts scores, not labels")
        return self.outputs(texts_a, texts_b, batch_size)

    def predict_scores(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Regression: the predicted score of each pair, in the training data's score range."""
        if self.head_kind != REGRESSION:
            raise EncoderError(f"{self.name} is a pair classifier: it predicts labels, not scores")
        logits = self.outputs(texts_a, texts_b, batch_size)[:, 0].astype(np.float64)
        low, high = self.score_range
        return (low + (high - low) / (1.0 + np.exp(-logits))).astype(np.float32)

    def predict(self, texts_a: Sequence[str], texts_b: Sequence[str],
                batch_size: int = 64) -> tuple[list[str], np.ndarray]:
        """Classification: (labels, probabilities). Regression: (scores as text, scores)."""
        if self.head_kind == REGRESSION:
            scores = self.predict_scores(texts_a, texts_b, batch_size)
            return [f"{s:.3f}" for s in scores], scores
        probabilities = self.predict_proba(texts_a, texts_b, batch_size)
        return [self.labels[i] for i in probabilities.argmax(axis=1)], probabilities

    def relevance_weights(self) -> np.ndarray:
        """Per label (in self.labels order), its place in the relevance order scaled to 0..1."""
        position = {label: i for i, label in enumerate(self.relevance_order)}
        last = max(len(self.relevance_order) - 1, 1)
        return np.array([position[label] / last for label in self.labels], dtype=np.float64)

    def score_pairs(self, texts_a: Sequence[str], texts_b: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """One number per pair, higher = more related: the predicted score (regression), or the expected
        place of the label in the relevance order, 0 (least related) to 1 (classification)."""
        if self.head_kind == REGRESSION:
            return self.predict_scores(texts_a, texts_b, batch_size)
        return (self.predict_proba(texts_a, texts_b, batch_size) @ self.relevance_weights()).astype(np.float32)

    @property
    def scored_by(self) -> str:
        return ("the regression head's score" if self.head_kind == REGRESSION
                else "the expected label position (" + " < ".join(self.relevance_order) + ")")

    # -- folders -----------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "task": TASK, "architecture": self.architecture,
                "head": self.head_kind, "labels": self.labels, "score_range": list(self.score_range),
                "relevance_order": self.relevance_order, "mode": self.mode, "dropout": self.dropout,
                "max_length": self.max_length, "dim": self.feature_dim, "base_spec": self.encoder.base_spec
                or self.encoder.spec, "fingerprint": self.encoder.fingerprint}

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        (folder / "encoder").mkdir(parents=True, exist_ok=True)
        self.encoder.save(folder / "encoder")
        self.head.save_weights(str(folder / HEAD_WEIGHTS))
        (folder / CONFIG_FILE).write_text(json.dumps(self.config(), indent=2))


def is_pair_classifier(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds a pair classifier (reads its semsim.json only)."""
    path = Path(folder, CONFIG_FILE)
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("task") == TASK
    except (OSError, ValueError, AttributeError):
        return False


def load_pair_classifier(folder: str | os.PathLike) -> PairClassifier:
    """Load a pair-classifier folder: the encoder's weights, the head's weights (h5), JSON configs;
    nothing executable is deserialised."""
    recover_model_folder(str(folder))
    folder = Path(folder)
    if not folder.is_dir():
        raise EncoderError(f"{folder} is not a folder; give a pair classifier from `semsim train pair-classifier`")
    config = read_config(folder)
    if config.get("task") != TASK:
        raise EncoderError(f"{folder} is not a pair classifier (train one with `semsim train pair-classifier`)")
    head_kind, architecture = config.get("head"), config.get("architecture")
    labels = config.get("labels") or []
    if head_kind == CLASSIFICATION and (not isinstance(labels, list) or len(labels) < 2):
        raise EncoderError(f"{folder / CONFIG_FILE} has no usable label list")
    encoder = load_encoder(str(folder / "encoder"), cache=False)
    dropout = float(config.get("dropout", 0.1))
    n_outputs = len(labels) if head_kind == CLASSIFICATION else 1
    head: Any = (CrossHead(n_outputs, dropout, name="cross_head") if architecture == CROSS
                 else BiHead(n_outputs, encoder.dim, dropout, name="bi_head"))
    score_range = config.get("score_range") or (0.0, 1.0)
    model = PairClassifier(encoder, head, architecture=str(architecture), head_kind=str(head_kind),
                           labels=[str(x) for x in labels], score_range=(float(score_range[0]), float(score_range[1])),
                           relevance_order=config.get("relevance_order"), mode=str(config.get("mode", "full")),
                           dropout=dropout, max_length=int(config.get("max_length", DEFAULT_MAX_LENGTH)),
                           spec=str(folder))
    model.build_head()
    try:
        head.load_weights(str(folder / HEAD_WEIGHTS))
    except (ValueError, OSError) as exc:
        raise EncoderError(f"{folder}: {HEAD_WEIGHTS} does not fit the head: {exc}") from exc
    return model


def load_pair_scorer(spec: str) -> Any:
    """A pair classifier folder, or else an encoder (scored by cosine): what `evaluate pairs` takes."""
    path = Path(spec).expanduser()
    if path.is_dir() and is_pair_classifier(path):
        return load_pair_classifier(path)
    return load_encoder(spec)
