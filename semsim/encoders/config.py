"""A saved model folder's semsim.json (format version, read and checked) and EncoderError, without Keras."""

# Apart from base.py, which loads the Keras backend, so that listing models (which reads these files)
# does not start TensorFlow.

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from semsim.names import CONFIG_FILE

FORMAT_VERSION = 1  # of CONFIG_FILE, written into every saved model folder; the loader dispatches on it


class EncoderError(ValueError):
    """A model spec or model folder that cannot be loaded, with a message meant for the user."""


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """Read and check a saved model folder's semsim.json."""
    path = Path(folder, CONFIG_FILE)
    if not path.is_file():
        raise EncoderError(f"{folder} is not a semsim model folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EncoderError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise EncoderError(f"{path} is not a JSON object; the folder is damaged: save or train the model again")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise EncoderError(f"{path} has format_version {version!r}; this semsim reads up to "
                           f"{FORMAT_VERSION}. Upgrade semsim to load it.")
    if "source" in config:  # a saved encoder (a classifier's semsim.json points to one in encoder/)
        fingerprint = config.get("fingerprint")
        if not isinstance(fingerprint, str) or not fingerprint:
            raise EncoderError(f"{path} has no fingerprint (indexes are checked against it, so an encoder "
                               f"without one cannot be used); the folder is damaged: save or train the model again")
        for key in ("dim", "max_length"):
            value = config.get(key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise EncoderError(f"{path}: {key} is {value!r}, not a whole number >= 1; the folder is damaged")
    return config
