"""Model cards: model_card.json (machine) and model_card.md (people) with base-vs-tuned metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Metrics shown in the comparison table, per evaluation kind, in this order.
SHOWN = ("spearman", "pearson", "accuracy", "f1_macro", "roc_auc", "recall@1", "mrr@10", "ndcg@10")


def _format(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def comparison_rows(base: dict[str, dict[str, Any]], tuned: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (dataset, metric) present in both, with the delta tuned - base."""
    rows = []
    for dataset, tuned_metrics in tuned.items():
        base_metrics = base.get(dataset, {})
        for metric in SHOWN:
            if isinstance(tuned_metrics.get(metric), float):
                base_value = base_metrics.get(metric)
                rows.append({"dataset": dataset, "metric": metric,
                             "base": base_value if isinstance(base_value, float) else None,
                             "tuned": tuned_metrics[metric],
                             "delta": (tuned_metrics[metric] - base_value)
                             if isinstance(base_value, float) else None})
    return rows


def write_model_card(folder: Path, card: dict[str, Any]) -> None:
    card = {**card, "comparison": comparison_rows(card.get("metrics", {}).get("base", {}),
                                                  card.get("metrics", {}).get("tuned", {}))}
    (folder / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
    (folder / "model_card.md").write_text(render_markdown(card))


def render_markdown(card: dict[str, Any]) -> str:
    lines = [f"# {card.get('name', 'semsim model')}", "",
             f"Fine-tuned from **{card['base_model']}** with the **{card['objective']['objective']}** "
             f"objective ({card['task']}).", "", "## Data", "",
             "| role | dataset | rows | sha256 |", "|---|---|---|---|"]
    for role, info in card.get("datasets", {}).items():
        lines.append(f"| {role} | {info.get('name', '')} | {info.get('rows', '')} | `{info.get('sha256', '')}` |")
    lines += ["", "## Training", "", "| setting | value |", "|---|---|"]
    for key, value in card.get("hyperparameters", {}).items():
        lines.append(f"| {key} | {value} |")
    training = card.get("training", {})
    for key in ("epochs_run", "best_epoch", "stopped_early", "steps", "seconds", "device", "backend",
                "keras_version", "cancelled"):
        if key in training:
            lines.append(f"| {key} | {training[key]} |")
    lines += ["", "## Base vs tuned", "", "| dataset | metric | base | tuned | delta |", "|---|---|---|---|---|"]
    for row in card.get("comparison", []):
        delta = "" if row["delta"] is None else f"{row['delta']:+.4f}"
        base = "" if row["base"] is None else _format(row["base"])
        lines.append(f"| {row['dataset']} | {row['metric']} | {base} | {_format(row['tuned'])} | {delta} |")
    notes = card.get("notes")
    if notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"
