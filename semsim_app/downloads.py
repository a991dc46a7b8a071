"""Files users take away: tables as spreadsheet-safe CSV, a model folder as a zip (built when clicked)."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

# A spreadsheet runs a cell that starts with one of these as a formula (`=HYPERLINK(...)`, `@SUM(...)`,
# `+cmd|...`); OWASP's advice for CSV injection is to prefix such cells with a single quote.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet would read as a formula, prefixed with ' (shown as text); others unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV for a spreadsheet: every text cell and column name made safe (safe_cell)
    and quoted; numbers stay numbers (a negative score is not text and is written as is)."""
    safe = frame.copy()
    safe.columns = [safe_cell(str(c)) for c in frame.columns]
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            safe.isetitem(position, column.map(safe_cell))
    return safe.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC).encode("utf-8")


def zip_folder(folder: str | Path) -> io.BytesIO:
    """The folder's files in a zip, paths relative to the folder's parent (so it unzips into one folder)."""
    folder = Path(folder)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder.parent).as_posix())
    buffer.seek(0)
    return buffer


def lazy_zip(folder: str | Path) -> Callable[[], io.BytesIO]:
    """For st.download_button(data=...): zips when clicked, not on every rerun."""
    return lambda: zip_folder(folder)
