"""Showing user-derived text safely: escaped for Markdown (st.caption, st.error, labels) and for Plotly."""

from __future__ import annotations

import re
from typing import Any

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: Any) -> str:
    """Text that may come from a user (file names, dataset names, specs, messages quoting them), made inert
    for Streamlit's Markdown: no links, images, emphasis, colour directives or LaTeX."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def plot_text(text: Any) -> str:
    """User text inside a Plotly label or hover: Plotly reads a few HTML tags there, so escape them."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
