"""What a tuned model's card says it forgot (STS-B test, ESCO retrieval), read from model_card.json only."""

from __future__ import annotations

import json
from pathlib import Path

from semsim.names import MODEL_CARD_JSON
from semsim.training.card import forgetting_warnings


def forgotten(spec: str | None) -> list[str]:
    """The guard's warnings for a model folder (empty for bundled specs, cards without a guard, or none)."""
    if not spec:
        return []
    path = Path(spec).expanduser() / MODEL_CARD_JSON
    try:
        card = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    return forgetting_warnings(card)
