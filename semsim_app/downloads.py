"""Files users take away: a model folder as a zip (built only when the button is clicked)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path


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
