"""Checks on where a command will write, made before any work: no parent that is a file, a writable folder."""

from __future__ import annotations

import os
from pathlib import Path


class OutputPathError(ValueError):
    """A place a command was told to write to cannot hold what it would write."""


def check_destination(path: str | os.PathLike, what: str) -> Path:
    """`path` (a file or folder to create or replace) could be written: its nearest existing ancestor is
    a folder this process may write into. Nothing is created. Why before any work: `embed` used to find
    out only after embedding every row that `--out notes.txt/vectors.npy` cannot exist."""
    path = Path(path)
    ancestor = path.absolute().parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(f"cannot write {what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write {what} {path}: no permission to write in {ancestor}")
    if path.is_symlink() and not path.exists():
        raise OutputPathError(f"cannot write {what} {path}: it is a link to {os.readlink(path)}, which does "
                              f"not exist")
    return path
