"""Streamlit behaviours that hurt a Keras app, switched off.

After every script run — and a live panel (st.fragment(run_every=...)) reruns every couple of seconds —
Streamlit calls `keras.backend.clear_session()` (streamlit.runtime.scriptrunner.script_runner.
_clean_problem_modules). That resets Keras' global state, empties TensorFlow's kernel cache and forces a
full garbage collection of a process holding TensorFlow, models and indexes. Measured here: a background
index build of 1,500 titles cost ~70 CPU-seconds instead of ~11, and the server's script threads stayed
busy while a progress bar was on screen. The app's models are built once and cached on purpose
(st.cache_resource), so there is no Keras session to clear between runs; matplotlib is still closed.
`runner.postScriptGC = false` in .streamlit/config.toml removes the other forced collection.

Memory: glibc's malloc keeps what a run freed (an evaluation's batches, an upload's parse) inside its
heaps, and gives each new thread an arena of its own (Streamlit starts a thread per script run), so the
server's RSS only ever grew. After a run the freed pages are handed back (malloc_trim) and the number of
arenas is capped; SEMSIM_MALLOC_TUNING=0 turns both off (bench/memory.py measures the difference).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
from typing import Any

_installed = False
M_ARENA_MAX = -8  # mallopt() parameter number, from glibc's malloc.h
ARENAS = 2
TRIM_EVERY_S = 2.0  # a live panel reruns every couple of seconds; one trim per interval is enough
_libc: Any = None
_last_trim = 0.0
_trim_lock = threading.Lock()


def _glibc() -> Any:
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim  # noqa: B018 - not glibc (musl, macOS): no tuning
        except (OSError, AttributeError):
            _libc = False
    return _libc


def _tuning() -> bool:
    return os.environ.get("SEMSIM_MALLOC_TUNING", "1") != "0" and bool(_glibc())


def release_freed_memory() -> None:
    """Give the pages malloc holds free back to the system, at most once every TRIM_EVERY_S seconds."""
    global _last_trim
    if not _tuning():
        return
    with _trim_lock:
        now = time.monotonic()
        if now - _last_trim < TRIM_EVERY_S:
            return
        _last_trim = now
    _glibc().malloc_trim(0)


def _clean_problem_modules_without_keras() -> None:
    if "matplotlib.pyplot" in sys.modules:
        try:
            pyplot: Any = sys.modules["matplotlib.pyplot"]
            pyplot.close("all")
        except Exception:  # as Streamlit does: never fail a script run over matplotlib
            pass
    release_freed_memory()


def keep_keras_session() -> None:
    """Stop Streamlit from clearing the Keras session after each run (idempotent)."""
    global _installed
    if _installed:
        return
    if _tuning():  # before TensorFlow starts its thread pools, so that they share the capped arenas
        _glibc().mallopt(M_ARENA_MAX, ARENAS)
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # a Streamlit without this module: nothing to switch off
        _installed = True
        return
    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = _clean_problem_modules_without_keras
    _installed = True
