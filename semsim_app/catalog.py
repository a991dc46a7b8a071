"""What exists on disk: bundled and tuned models, classifiers, indexes. Reads JSON files only (fast)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.names import META_FILE
from semsim.names import CONFIG_FILE, MODEL_CARD_JSON
from semsim_app import settings


@dataclass(frozen=True)
class ModelEntry:
    """One model the pages can offer: a bundled spec, or a folder under the models directory."""

    spec: str
    label: str
    kind: str  # "bundled", "tuned", "classifier", "pair-classifier" or "custom"
    base: str | None = None
    mode: str | None = None  # classifiers: "frozen" or "full"
    fingerprint: str | None = None
    labels: tuple[str, ...] = ()
    created: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


# -- models -------------------------------------------------------------------------------------
def bundled_models() -> list[ModelEntry]:
    from semsim.encoders import BUNDLED_MODELS  # spec -> (module, loader, description); no TensorFlow import

    return [ModelEntry(spec, f"{spec} (bundled)", "bundled", extra={"description": desc})
            for spec, (_, _, desc) in BUNDLED_MODELS.items()]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def model_entry(folder: Path) -> ModelEntry | None:
    """A tuned encoder or classifier folder -> its entry (None if it is not a semsim model folder)."""
    config = _read_json(folder / CONFIG_FILE)
    if config is None:
        return None
    created = (folder / CONFIG_FILE).stat().st_mtime
    card = _read_json(folder / MODEL_CARD_JSON) or {}
    base = card.get("base_model") or config.get("base_spec")
    if config.get("task") == "pair-classifier":  # not an encoder: never offered where one is expected
        mode = str(config.get("mode", "full"))
        architecture = str(config.get("architecture", "cross"))
        labels = tuple(str(x) for x in config.get("labels") or ())
        kind = "cross-encoder" if architecture == "cross" else "bi-encoder + head"
        head = str(config.get("head", "classification"))
        return ModelEntry(str(folder), f"{folder.name} ({kind}, {head}, {mode})", "pair-classifier", base=base,
                          mode=mode, fingerprint=config.get("fingerprint"), labels=labels, created=created,
                          extra={"architecture": architecture, "head": head})
    if config.get("task") == "classifier":
        mode = str(config.get("mode", "full"))
        labels = tuple(str(x) for x in config.get("labels") or ())
        return ModelEntry(str(folder), f"{folder.name} (classifier, {mode})", "classifier", base=base, mode=mode,
                          fingerprint=config.get("fingerprint"), labels=labels, created=created)
    return ModelEntry(str(folder), f"{folder.name} (tuned from {base or '?'})", "tuned", base=base,
                      fingerprint=config.get("fingerprint"), created=created)


def model_folders() -> list[Path]:
    root = settings.models_dir()
    if not root.is_dir():
        return []
    from semsim.encoders import is_listed_model_folder  # light: semsim.encoders imports no Keras

    return sorted((p for p in root.iterdir() if p.is_dir() and is_listed_model_folder(p)),
                  key=lambda p: p.name.lower())


def tuned_models() -> list[ModelEntry]:
    """Tuned encoders, newest first."""
    entries = [e for e in map(model_entry, model_folders()) if e is not None and e.kind == "tuned"]
    return sorted(entries, key=lambda e: -(e.created or 0))


def classifiers(mode: str | None = None) -> list[ModelEntry]:
    """Classifier folders (optionally only one mode), newest first."""
    entries = [e for e in map(model_entry, model_folders()) if e is not None and e.kind == "classifier"
               and (mode is None or e.mode == mode)]
    return sorted(entries, key=lambda e: -(e.created or 0))


def pair_models(head: str | None = None) -> list[ModelEntry]:
    """Pair-classifier folders (cross-encoders and bi-encoder + head; optionally of one head kind), newest first."""
    entries = [e for e in map(model_entry, model_folders()) if e is not None and e.kind == "pair-classifier"
               and (head is None or e.extra.get("head") == head)]
    return sorted(entries, key=lambda e: -(e.created or 0))


def encoder_choices(extra: list[str] | None = None) -> list[ModelEntry]:
    """Every encoder a page can offer: bundled, tuned, then specs chosen elsewhere in this session."""
    entries = bundled_models() + tuned_models()
    known = {e.spec for e in entries}
    for spec in [settings.default_model(), *(extra or [])]:
        if spec and spec not in known:
            entries.append(ModelEntry(spec, spec, "custom"))
            known.add(spec)
    return entries


def describe_spec(spec: str) -> str:
    """A short label for a model spec: a folder's name rather than its whole path."""
    path = Path(spec)
    if path.is_absolute():
        return path.name
    prefix, sep, rest = spec.partition(":")
    if sep and "/" in rest and "://" not in spec:  # keras-hub:/path/to/preset@cls, tfhub:/path/to/savedmodel
        folder, at, pooling = rest.partition("@")
        return f"{prefix}:{Path(folder).name}{at}{pooling}"
    return spec


def model_fingerprint(spec: str) -> str | None:
    """The fingerprint a saved folder declares (None for bundled specs: known only once loaded)."""
    config = _read_json(Path(spec) / CONFIG_FILE) if spec else None
    return config.get("fingerprint") if config else None


def model_stamp(spec: str) -> float | None:
    """Changes when a model folder is rewritten (retrained in place); None for non-folder specs."""
    path = Path(spec).expanduser()
    config = path / CONFIG_FILE
    if config.is_file():
        return config.stat().st_mtime
    return path.stat().st_mtime if path.is_dir() else None


# -- indexes ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexEntry:
    name: str
    path: str
    count: int
    dim: int
    kind: str
    spec: str | None
    fingerprint: str | None
    source: str | None
    column: str | None
    extra_columns: tuple[str, ...]
    created: str | None
    error: str | None = None
    truncated_from: int | None = None  # built with --dim: the model's first `dim` of these dimensions

    @property
    def corpus(self) -> str:
        """A readable name of what was indexed."""
        return Path(self.source).name if self.source else "?"

    def built_with(self, spec: str, fingerprint: str | None = None) -> bool:
        """True if this index was built by the model `spec` (by fingerprint when both are known)."""
        if fingerprint and self.fingerprint:
            return fingerprint == self.fingerprint
        return bool(self.spec) and self.spec == spec


def index_entry(folder: Path) -> IndexEntry:
    meta = _read_json(folder / META_FILE)
    if meta is None:
        return IndexEntry(folder.name, str(folder), 0, 0, "?", None, None, None, None, (), None,
                          error=f"{META_FILE} is missing or unreadable; rebuild or delete this index")
    encoder = meta.get("encoder") or {}
    extra = meta.get("extra") or {}
    info = meta.get("index") or {}
    return IndexEntry(folder.name, str(folder), int(meta.get("count", 0)), int(meta.get("dim", 0)),
                      str(info.get("chosen") or info.get("kind") or "?"), encoder.get("spec"),
                      encoder.get("fingerprint"), extra.get("source"), extra.get("column"),
                      tuple(extra.get("extra_columns") or ()), meta.get("created"),
                      truncated_from=encoder.get("truncated_from"))


def indexes() -> list[IndexEntry]:
    root = settings.indexes_dir()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return [index_entry(p) for p in sorted(folders, key=lambda p: p.name.lower())]


def indexes_for(spec: str) -> list[IndexEntry]:
    fingerprint = model_fingerprint(spec)
    return [e for e in indexes() if e.error is None and e.built_with(spec, fingerprint)]


def index_name(spec: str, corpus: str, dim: int | None = None) -> str:
    """The default folder name of an index: <model>--<corpus>, plus --d<dim> for vectors cut to `dim`."""
    model = describe_spec(spec).split(":")[-1]
    return f"{settings.slug(model)[:40]}--{settings.slug(Path(corpus).stem)[:40]}" + (f"--d{dim}" if dim else "")


def delete_index(name: str) -> None:
    """Remove an index folder under the indexes directory (and nothing else)."""
    root = settings.indexes_dir().resolve()
    folder = (root / settings.check_name(name, "index name")).resolve()
    if folder.parent != root or not folder.is_dir():
        raise ValueError(f"no index called {name!r}")
    if not (folder / META_FILE).is_file() and any(folder.iterdir()):
        raise ValueError(f"{folder} does not look like an index folder; not deleting it")
    shutil.rmtree(folder)

