"""Streamlit behaviours that hurt a Keras app, switched off.

After every script run — and a live panel (st.fragment(run_every=...)) reruns every couple of seconds —
Streamlit calls `keras.backend.clear_session()` (streamlit.runtime.scriptrunner.script_runner.
_clean_problem_modules). That resets Keras' global state, empties TensorFlow's kernel cache and forces a
full garbage collection of a process holding TensorFlow, models and indexes. Measured here: a background
index build of 1,500 titles cost ~70 CPU-seconds instead of ~11, and the server's script threads stayed
busy while a progress bar was on screen. The app's models are built once and cached on purpose
(st.cache_resource), so there is no Keras session to clear between runs; matplotlib is still closed.
`runner.postScriptGC = false` in .streamlit/config.toml removes the other forced collection.
"""

from __future__ import annotations

import sys
from typing import Any

_installed = False


def _clean_problem_modules_without_keras() -> None:
    if "matplotlib.pyplot" in sys.modules:
        try:
            pyplot: Any = sys.modules["matplotlib.pyplot"]
            pyplot.close("all")
        except Exception:  # as Streamlit does: never fail a script run over matplotlib
            pass


def keep_keras_session() -> None:
    """Stop Streamlit from clearing the Keras session after each run (idempotent)."""
    global _installed
    if _installed:
        return
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:  # a Streamlit without this module: nothing to switch off
        _installed = True
        return
    if hasattr(script_runner, "_clean_problem_modules"):
        script_runner._clean_problem_modules = _clean_problem_modules_without_keras
    _installed = True
