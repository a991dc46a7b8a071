"""Where the app keeps things, and the environment variables that override it.

Every value is read when asked for (not at import), so tests and `streamlit run` sessions can set
environment variables before a page runs:

- SEMSIM_WORKSPACE       workspace root (default: <repo>/workspace): models/, indexes/, runs/, corpora/
- SEMSIM_MODELS_DIR      tuned models (default: <workspace>/models); the library and training runs read it too
- SEMSIM_DEFAULT_MODEL   the Home page's model (default: minilm)
- SEMSIM_DEFAULT_CORPUS  the Home page's corpus CSV (default: data/job_titles.csv)
- SEMSIM_DEFAULT_COLUMN  its text column (default: title)
- SEMSIM_MAX_UPLOAD_MB   largest upload accepted (default: 50, as in .streamlit/config.toml)
- SEMSIM_PRECISION       the sidebar's starting inference precision: float32, bfloat16, int8 or auto (default:
                         float32; see semsim.encoders.precision)
- SEMSIM_RUNTIME         what runs a model's forward pass in the server: auto (ONNX Runtime for the models it
                         covers, without loading TensorFlow; Keras for the rest) or keras (default: auto;
                         see semsim.encoders.serving)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from semsim.names import DEFAULT_MODEL

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MAX_UPLOAD_MB = 50
# Rows the pages embed on the spot (sentiment predictions, uploaded evaluation files).
MAX_INTERACTIVE_ROWS = 5_000
# Texts on the similarity page (an n x n heatmap stops being readable well before this).
MAX_SIMILARITY_TEXTS = 40
# Texts of a reference corpus whose random pairs set each model's scale in the relative view.
REFERENCE_TEXTS = 500
# How often live panels (training progress, index builds) re-read their state, in seconds.
POLL_SECONDS = 1.5

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


def workspace() -> Path:
    return Path(os.environ.get("SEMSIM_WORKSPACE") or REPO_ROOT / "workspace").expanduser().resolve()


def models_dir() -> Path:
    override = os.environ.get("SEMSIM_MODELS_DIR")
    return Path(override).expanduser().resolve() if override else workspace() / "models"


def indexes_dir() -> Path:
    return workspace() / "indexes"


def runs_dir() -> Path:
    return workspace() / "runs"


def corpora_dir() -> Path:
    """Uploaded corpora are kept here, so an index built from one can be rebuilt later."""
    return workspace() / "corpora"


def default_model() -> str:
    return (os.environ.get("SEMSIM_DEFAULT_MODEL") or DEFAULT_MODEL).strip()


def default_corpus() -> tuple[Path, str]:
    """(CSV path, text column) of the Home page's try-it search."""
    from semsim.data import bundled_path

    path = os.environ.get("SEMSIM_DEFAULT_CORPUS")
    column = os.environ.get("SEMSIM_DEFAULT_COLUMN") or "title"
    return (Path(path).expanduser().resolve() if path else bundled_path("job-titles")), column


def default_precision() -> str:
    """The inference precision the sidebar starts at (SEMSIM_PRECISION; an unknown value means float32)."""
    from semsim.encoders.precision import DEFAULT_PRECISION, PRECISION_CHOICES

    value = (os.environ.get("SEMSIM_PRECISION") or DEFAULT_PRECISION).strip()
    return value if value in PRECISION_CHOICES else DEFAULT_PRECISION


def max_upload_bytes() -> int:
    try:
        megabytes = float(os.environ.get("SEMSIM_MAX_UPLOAD_MB", DEFAULT_MAX_UPLOAD_MB))
    except ValueError:
        megabytes = DEFAULT_MAX_UPLOAD_MB
    return int(megabytes * 1024 * 1024)


def apply_environment() -> None:
    """Make the library (and training processes, which inherit the environment) use our models folder."""
    os.environ["SEMSIM_MODELS_DIR"] = str(models_dir())


def check_name(name: str, what: str = "name") -> str:
    """A folder name typed by a user: letters, digits, dot, dash, underscore; raises ValueError."""
    name = (name or "").strip()
    if not _NAME.match(name) or name in (".", ".."):
        raise ValueError(f"{what} {name!r} is not usable: use letters, digits, '.', '-' or '_' "
                         f"(up to 80 characters, starting with a letter or digit)")
    return name


def slug(text: str) -> str:
    """A folder-safe version of any label (model spec, file name)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip()).strip("-.")
    return (cleaned or "x")[:60]
