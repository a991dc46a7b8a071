"""How commands print: --json or text, fixed-width tables, progress bars on stderr."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
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
        return _to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinity are not JSON; a result that says why sits beside them
    return value


# Characters a terminal acts on instead of showing (C0/C1 controls: ESC sequences retitle the window or
# clear the screen; bidirectional overrides reorder what is shown), escaped in human output. JSON
# output escapes the C0 ones itself; text a program reads is left as it is.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """`text` with every control character except newline written as an escape (ESC -> \\x1b)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def emit(result: Any, as_json: bool, render: Callable[[Any], str] | None = None) -> None:
    """Print a result as JSON (machine) or as text from `render` (human, control characters escaped)."""
    if as_json or render is None:
        # allow_nan=False: whatever _to_jsonable missed fails here rather than printing invalid JSON.
        print(json.dumps(_to_jsonable(result), indent=2, ensure_ascii=False, allow_nan=False))
    else:
        print(terminal_safe(render(result)))


def progress_bar(desc: str, enabled: bool = True) -> Callable[[int, int], None] | None:
    """A `progress(done, total)` callback drawing a tqdm bar on stderr (None when disabled)."""
    if not enabled or not sys.stderr.isatty() and not _force_progress():
        return None
    from tqdm import tqdm

    state: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=terminal_safe(desc), unit="text", file=sys.stderr,
                                      leave=False)
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
