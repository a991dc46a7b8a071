"""Corpora the Index page offers (bundled files, or uploads saved under the workspace) and the Home
page's default index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from index.names import META_FILE
from semsim_app import catalog, index_builds, settings


@dataclass(frozen=True)
class Corpus:
    key: str
    label: str
    path: Path
    column: str
    extra_columns: tuple[str, ...] = ()


def bundled_corpora() -> list[Corpus]:
    from semsim.data import bundled_path

    return [
        Corpus("job-titles", "ONS job titles (bundled, 7.3k)", bundled_path("job-titles"), "title",
               ("unit_group_name", "major_group_name")),
        Corpus("esco-occupations", "ESCO occupations (bundled, 3k)", bundled_path("esco-occupations"),
               "preferred_label", ("isco_group",)),
        Corpus("rotten-tomatoes", "Rotten Tomatoes reviews (bundled test split, 1.3k)",
               bundled_path("rotten-tomatoes", "test"), "text", ("label",)),
    ]


def header(path: Path) -> list[str]:
    return pd.read_csv(path, nrows=0, dtype=str).columns.tolist()


def save_upload(name: str, data: bytes) -> tuple[Path, pd.DataFrame]:
    """Validate an uploaded corpus with semsim's reader and keep a clean UTF-8 comma-separated copy.

    Raises semsim.data.DatasetError (not UTF-8, empty, unparseable ...). The copy is written to a
    temporary name first, so a failure leaves no half-written file.
    """
    import io

    from semsim.data import read_csv

    buffer = io.BytesIO(data)
    buffer.name = name
    frame = read_csv(buffer)
    folder = settings.corpora_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{settings.slug(Path(name).stem)}.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path, frame


def sample_texts(path: Path, column: str, rows: int, seed: int = 0) -> pd.DataFrame:
    """Up to `rows` distinct texts of a corpus CSV, a seeded sample: `text` first, the file's other columns
    kept (for colouring a map). Raises semsim.data.DatasetError."""
    from semsim.data import load_texts, sample_rows

    frame = load_texts(path, column)
    frame = frame[~frame["text"].duplicated()].reset_index(drop=True)
    return sample_rows(frame, rows, seed).reset_index(drop=True)


# -- the Home page's index ----------------------------------------------------------------------
def default_index_dir() -> Path:
    path, _ = settings.default_corpus()
    return settings.indexes_dir() / catalog.index_name(settings.default_model(), path.name)


def default_index_state(start: bool = True) -> tuple[str, index_builds.BuildJob | None]:
    """("ready" | "building" | "failed" | "missing", job) for the default model's default index.

    With start=True a missing index starts building in the background (once per server process).
    """
    folder = default_index_dir()
    if (folder / META_FILE).is_file():
        return "ready", None
    job = index_builds.get(folder)
    if job is not None and job.running:
        return "building", job
    if job is not None and job.error:
        return "failed", job
    if not start:
        return "missing", None
    path, column = settings.default_corpus()
    extras: tuple[str, ...] = ()
    if path.is_file():
        wanted = ("unit_group_name", "major_group_name")
        extras = tuple(c for c in wanted if c in header(path))
    return "building", index_builds.start_build(folder, settings.default_model(), path, column, extras,
                                                overwrite=True)
