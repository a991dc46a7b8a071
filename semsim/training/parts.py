"""A pair-training run as a list of parts (dataset, objective, weight): parsed, and resolved from a request.

sentence-transformers trains on several datasets at once with a loss per dataset, each dataset in
batches of its own; a part is one such dataset. The run's parts are, in order: --data with --objective
(the first part, validated on), the parts a bundled --data recommends (its recipe, unless --no-recipe),
every --part, and STS-B train rehearsal for English base encoders (unless --no-rehearsal or already a
part). No Keras here: the page and `semsim --help` read it."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from semsim.training.spec import OBJECTIVE_HELP, PairTrainingRequest, TrainingError

PART_SYNTAX = "DATASET:OBJECTIVE[:WEIGHT]"


@dataclasses.dataclass(frozen=True)
class Part:
    """One dataset of a run. `weight`: how many of its rows an epoch draws, as a multiple of its size
    (1: each row once; 0.5: a seeded half; 2: each row twice), so it also sets the part's share of steps."""

    dataset: str  # a CSV path or a bundled name
    objective: str
    weight: float = 1.0
    role: str = "part"  # "train" (the first: --data), "recipe", "part" (--part) or "rehearsal"

    @property
    def spec(self) -> str:
        return f"{self.dataset}:{self.objective}:{self.weight:g}"

    @property
    def unscored(self) -> bool:
        return self.objective == "mnrl"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a bundled dataset trains best with, chosen on validation data (README, Fine-tuning quality):
    the weight of the dataset itself and the parts added to it."""

    weight: float
    parts: tuple[str, ...]
    why: str


# The default recipe of `train pairs --data job-title-pairs` and of the Train page's "ONS job-title pairs".
RECIPES: dict[str, Recipe] = {
    "job-title-pairs": Recipe(
        weight=0.3, parts=("job-title-groups:mnrl:0.5",),
        why="graded pairs (CoSENT) for the similarity scale, with positive pairs and hierarchy-aware hard "
            "negatives (in-batch negatives) for retrieval; chosen on validation splits"),
}

# Markers of encoders that are not English-only: STS-B (English) rehearsal is not added to them by default.
MULTILINGUAL_MARKERS = ("multilingual", "labse", "xlm", "mbert", "m-bert", "distiluse", "bge-m3", "mt5",
                        "mdeberta", "e5-multi")


def parse_part(text: str, role: str = "part") -> Part:
    """DATASET:OBJECTIVE[:WEIGHT] -> Part; the dataset may itself hold colons (a Windows path)."""
    pieces = [piece.strip() for piece in str(text).strip().split(":")]
    weight = 1.0
    if len(pieces) >= 3 and pieces[-1] not in OBJECTIVE_HELP:
        try:
            weight = float(pieces.pop())
        except ValueError:
            weight = math.nan
    if len(pieces) < 2 or not pieces[-1] or not ":".join(pieces[:-1]).strip():
        raise TrainingError(f"--part {text!r}: expected {PART_SYNTAX}, such as job-title-groups:mnrl or "
                            f"sts-b:cosent:0.5")
    objective, dataset = pieces[-1], ":".join(pieces[:-1])
    if objective not in OBJECTIVE_HELP:
        raise TrainingError(f"--part {text!r}: the objective must be one of {', '.join(OBJECTIVE_HELP)}, "
                            f"not {objective!r}")
    if not (math.isfinite(weight) and 0 < weight <= 100):
        raise TrainingError(f"--part {text!r}: the weight must be a number in (0, 100]")
    return Part(dataset, objective, weight, role)


def _spec_text(spec: str) -> str:
    """The spec, and for a model folder the specs it was tuned from (semsim.json), lower-cased."""
    texts = [spec]
    config = Path(spec).expanduser() / "semsim.json"
    try:
        values = json.loads(config.read_text(encoding="utf-8")) if config.is_file() else {}
    except (OSError, ValueError):
        values = {}
    if isinstance(values, dict):
        texts += [str(values.get(key) or "") for key in ("base_spec", "spec", "name")]
    return " ".join(texts).lower()


def english_base(spec: str) -> bool:
    """Whether a base encoder is taken to be English-only (STS-B rehearsal guards it by default).

    Only what the spec says can be known without loading it: names of multilingual models are recognised,
    anything else counts as English, like minilm."""
    text = _spec_text(spec)
    return not any(marker in text for marker in MULTILINGUAL_MARKERS)


def request_parts(request: PairTrainingRequest) -> tuple[list[Part], list[str]]:
    """The parts a request trains on, first part first, and notes saying what was added and why."""
    notes: list[str] = []
    parts: list[Part] = []
    recipe = RECIPES.get(request.data) if request.data and request.recipe else None
    if request.data:
        parts.append(Part(request.data, request.objective, recipe.weight if recipe else 1.0, "train"))
    if recipe is not None:
        parts += [parse_part(text, "recipe") for text in recipe.parts]
        notes.append(f"{request.data} recipe (--no-recipe leaves it out): "
                     f"{', '.join(p.spec for p in parts)}; {recipe.why}.")
    for i, text in enumerate(request.parts):
        part = parse_part(text, "part")
        parts.append(dataclasses.replace(part, role="train") if not parts and i == 0 else part)
    if not parts:
        raise TrainingError("nothing to train on: give --data, or one --part or more")
    if request.rehearsal:
        if any(p.dataset == request.rehearsal_data for p in parts):
            pass  # rehearsal data already trains as a part of its own
        elif not english_base(request.base):
            notes.append(f"No STS-B rehearsal: {request.base} is not an English-only encoder (add "
                         f"--part {request.rehearsal_data}:cosent to rehearse anyway).")
        else:
            parts.append(Part(request.rehearsal_data, "cosent", request.rehearsal_weight, "rehearsal"))
    return parts, notes


def describe(parts: list[Part]) -> list[dict[str, Any]]:
    return [{"dataset": p.dataset, "objective": p.objective, "weight": p.weight, "role": p.role} for p in parts]
