"""A training run's progress log (train_log.jsonl, one JSON event a line) read into numbers and series."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd


def read_events(path: Path | None) -> list[dict[str, Any]]:
    """Progress events so far (a half-written last line is skipped until it is complete)."""
    if path is None:
        return []
    events = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def summary(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers and series for the live panel."""
    start = next((e for e in reversed(events) if e.get("event") == "start"), {})
    steps = [e for e in events if e.get("event") == "step"]
    epochs = [e for e in events if e.get("event") == "epoch"]
    baseline = next((e for e in events if e.get("event") == "baseline"), None)
    end = next((e for e in events if e.get("event") == "end"), None)
    last = steps[-1] if steps else {}
    total = int(start.get("total_steps") or 0)
    step = int((epochs[-1]["step"] if epochs and epochs[-1].get("step", 0) > last.get("step", 0)
                else last.get("step", 0)) or 0)
    metric = baseline.get("metric") if baseline else None
    loss = pd.DataFrame([{"step": e["step"], "loss": e["loss"]} for e in steps
                         if isinstance(e.get("loss"), int | float)])
    val_rows = []
    if baseline and metric:
        val_rows.append({"epoch": 0, "value": baseline.get("value")})
    for e in epochs:
        if metric and isinstance(e.get(metric), int | float):
            val_rows.append({"epoch": e["epoch"], "value": e[metric]})
    return {"total_steps": total, "step": step, "fraction": min(1.0, step / total) if total else 0.0,
            "eta_s": last.get("eta_s"), "examples_per_s": last.get("examples_per_s"),
            "epoch": last.get("epoch") or (epochs[-1]["epoch"] if epochs else None),
            "loss": last.get("loss"), "metric": metric, "loss_series": loss,
            "validation_series": pd.DataFrame(val_rows), "ended": end}
