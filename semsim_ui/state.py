"""Choices that carry across pages (base model, tuned model, classifiers, indexes) in st.session_state.

Widget state is dropped when a page that does not draw the widget runs, so each choice lives under its
own key here and each page's widget is initialised from it (and writes it back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

BASE_MODEL = "semsim.base_model"
TUNED_MODEL = "semsim.tuned_model"
FROZEN_CLASSIFIER = "semsim.classifier.frozen"
TUNED_CLASSIFIER = "semsim.classifier.full"
BASE_INDEX = "semsim.index.base"
TUNED_INDEX = "semsim.index.tuned"
CUSTOM_SPECS = "semsim.custom_specs"  # model specs typed or loaded in this session
WATCHED_RUN = "semsim.run"  # the training run the Train page follows


def get(key: str, default: Any = None) -> Any:
    return st.session_state.get(key, default)


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def remember_spec(spec: str) -> None:
    specs = list(get(CUSTOM_SPECS, []))
    if spec not in specs:
        specs.append(spec)
        put(CUSTOM_SPECS, specs)


def choose(label: str, options: Sequence[Any], state_key: str, *, default: Any = None,
           format_func: Callable[[Any], str] = str, help: str | None = None, container: Any = None,
           widget_key: str | None = None) -> Any:
    """A selectbox whose choice is shared by every page through `state_key`."""
    options = list(options)
    if not options:
        return None
    widget_key = widget_key or f"widget.{state_key}"
    current = st.session_state.get(state_key)
    if st.session_state.get(widget_key) not in options:
        if current in options:
            st.session_state[widget_key] = current
        else:
            st.session_state[widget_key] = default if default in options else options[0]
    value = (container or st).selectbox(label, options, key=widget_key, format_func=format_func, help=help)
    st.session_state[state_key] = value
    return value
