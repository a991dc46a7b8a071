"""How commands print: --json or text, fixed-width tables, progress bars on stderr."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def emit(result: Any, as_json: bool, render: Callable[[Any], str] | None = None) -> None:
    """Print a result as JSON (machine) or as text from `render` (human)."""
    if as_json or render is None:
        print(json.dumps(_to_jsonable(result), indent=2, ensure_ascii=False))
    else:
        print(render(result))


def progress_bar(desc: str, enabled: bool = True) -> Callable[[int, int], None] | None:
    """A `progress(done, total)` callback drawing a tqdm bar on stderr (None when disabled)."""
    if not enabled or not sys.stderr.isatty() and not _force_progress():
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit="text", file=sys.stderr, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _force_progress() -> bool:
    return os.environ.get("SEMSIM_PROGRESS") == "1"


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None, floats: str = "{:.4f}") -> str:
    """A plain fixed-width text table."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    cells = [[floats.format(r.get(c)) if isinstance(r.get(c), float) else str(r.get(c, ""))
              for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])
