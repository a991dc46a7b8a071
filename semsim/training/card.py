"""Model cards: model_card.json (machine) and model_card.md (people) with base-vs-tuned metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Metrics shown in the comparison table, per evaluation kind, in this order.
SHOWN = ("spearman", "pearson", "accuracy", "f1_macro", "roc_auc", "recall@1", "mrr@10", "ndcg@10")

# The forgetting guard of pair cards: what general similarity (STS-B test) and out-of-source job-title
# retrieval (ESCO) did, base vs tuned, and the limits past which the app warns about a tuned model.
GUARD_SIMILARITY = "sts-b test"
GUARD_RETRIEVAL = "esco retrieval"
STS_DROP_LIMIT_X100 = 1.0  # more than one point of STS-B test Spearman x100 lost
RETRIEVAL_LOSS_LIMIT = 0.0  # any nDCG@10 lost on ESCO retrieval


def guard_summary(card: dict[str, Any]) -> dict[str, Any]:
    """STS-B test Spearman x100 and ESCO nDCG@10 / recall@1, base and tuned, and what was forgotten."""
    metrics = card.get("metrics") or {}
    base, tuned = metrics.get("base") or {}, metrics.get("tuned") or {}
    summary: dict[str, Any] = {}
    for dataset, metric, factor in ((GUARD_SIMILARITY, "spearman", 100.0), (GUARD_RETRIEVAL, "ndcg@10", 1.0),
                                    (GUARD_RETRIEVAL, "recall@1", 1.0)):
        before, after = (base.get(dataset) or {}).get(metric), (tuned.get(dataset) or {}).get(metric)
        if isinstance(before, int | float) and isinstance(after, int | float):
            summary[f"{dataset} {metric}"] = {"base": before * factor, "tuned": after * factor,
                                              "delta": (after - before) * factor,
                                              "n": (tuned.get(dataset) or {}).get("n_pairs")
                                              or (tuned.get(dataset) or {}).get("n_queries")}
    summary["forgotten"] = forgotten(summary)
    return summary


def forgotten(summary: dict[str, Any]) -> list[str]:
    """Sentences for what a tuned model lost past the guard's limits (empty: nothing)."""
    lost = []
    sts = summary.get(f"{GUARD_SIMILARITY} spearman")
    if sts and -sts["delta"] > STS_DROP_LIMIT_X100:
        lost.append(f"STS-B test Spearman fell {-sts['delta']:.2f} points ({sts['base']:.2f} -> "
                    f"{sts['tuned']:.2f}): general similarity was forgotten")
    esco = summary.get(f"{GUARD_RETRIEVAL} ndcg@10")
    if esco and -esco["delta"] > RETRIEVAL_LOSS_LIMIT:
        lost.append(f"ESCO retrieval nDCG@10 fell {esco['base']:.3f} -> {esco['tuned']:.3f}: job titles from "
                    f"another source are retrieved worse than by the base model")
    return lost


def forgetting_warnings(card: dict[str, Any] | None) -> list[str]:
    """What a model card records as forgotten (a card without a guard records nothing)."""
    if not isinstance(card, dict) or card.get("task") != "pairs":
        return []
    guard = card.get("guard")
    if not isinstance(guard, dict):
        guard = guard_summary(card)
    return forgotten(guard)


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
    parts = card.get("parts") or []
    how = (f"the **{card['objective']['objective']}** objective" if len(parts) < 2 else
           f"{len(parts)} parts, " + ", ".join(f"**{p.get('objective')}** on {p.get('dataset')}" for p in parts))
    lines = [f"# {card.get('name', 'semsim model')}", "",
             f"Fine-tuned from **{card['base_model']}** with {how} ({card['task']}).", "", "## Data", "",
             "| role | dataset | rows | sha256 |", "|---|---|---|---|"]
    for role, info in card.get("datasets", {}).items():
        lines.append(f"| {role} | {info.get('name', '')} | {info.get('rows', '')} | `{info.get('sha256', '')}` |")
    if parts:
        lines += ["", "## Parts", "", "Each part trains in batches of its own with its own objective.", "",
                  "| part | dataset | objective | weight | rows | steps | hard negatives |",
                  "|---|---|---|---|---|---|---|"]
        for part in parts:
            lines.append(f"| {part.get('role', '')} | {part.get('dataset', '')} | {part.get('objective', '')} | "
                         f"{part.get('weight', '')} | {part.get('rows', '')} | {part.get('steps', '')} | "
                         f"{'yes' if part.get('hard_negatives') else 'no'} |")
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
    lost = (card.get("guard") or {}).get("forgotten")
    if lost:
        lines += ["", "## Forgetting guard: warning", "", *[f"- {text}." for text in lost]]
    notes = card.get("notes")
    if notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in notes]]
    return "\n".join(lines) + "\n"
