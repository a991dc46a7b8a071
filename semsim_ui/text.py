"""Showing user-derived text safely: escaped for Markdown (st.caption, st.error, labels) and for Plotly."""

from __future__ import annotations

import re
from typing import Any

from semsim import figures

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def md_escape(text: Any) -> str:
    """Text that may come from a user (file names, dataset names, specs, messages quoting them), made inert
    for Streamlit's Markdown: no links, images, emphasis, colour directives or LaTeX."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


# User text inside a Plotly label or hover (Plotly reads a few HTML tags there): one definition, shared with
# the figures the library draws for the HTML report.
plot_text = figures.plot_text
