"""The forgetting warning every page that uses a tuned model shows, from the model's card."""

from __future__ import annotations

from typing import Any

import streamlit as st

from semsim_app import catalog, guard
from semsim_ui.text import md_escape


def forgetting_warning(spec: str | None, container: Any = None) -> bool:
    """Warn when the tuned model's card records more than 1 point of STS-B test lost or any ESCO retrieval
    loss against its base; returns whether it warned."""
    lost = guard.forgotten(spec)
    if not lost:
        return False
    (container or st).warning(
        f"**{md_escape(catalog.describe_spec(spec))} forgot some of what its base knew** (its model card): "
        + "; ".join(md_escape(text) for text in lost)
        + ". Retrain with STS-B rehearsal (on by default) or a smaller learning rate, or keep the base model "
          "for general text.", icon=":material/warning:")
    return True
