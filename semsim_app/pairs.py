"""The Pairs page's logic without Streamlit: typed or uploaded pairs, each pair model's predictions as table columns, metrics on labels."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

SEPARATOR = "|"
EXAMPLES = """data scientist | machine learning engineer
staff nurse | midwife
bus driver | data analyst
primary school teacher | secondary school teacher
sous chef | kitchen porter"""


def parse_typed_pairs(text: str, limit: int) -> tuple[list[tuple[str, str]], list[int]]:
    """One pair a line, `text a | text b` (split at the first |): (pairs without repeats, at most `limit`,
    line numbers that are not a pair)."""
    pairs: list[tuple[str, str]] = []
    bad: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        a, sep, b = line.partition(SEPARATOR)
        if not sep or not a.strip() or not b.strip():
            bad.append(number)
            continue
        pairs.append((a.strip(), b.strip()))
    return list(dict.fromkeys(pairs))[:limit], bad


def read_pair_upload(name: str, raw: bytes) -> pd.DataFrame:
    """An uploaded pairs file -> `text_a, text_b` plus `label` when it has labels (CSV `label` or
    SNLI's `gold_label`, or an SNLI/MultiNLI .jsonl). Raises semsim.data.DatasetError."""
    from semsim import data

    def buffer() -> io.BytesIO:
        handle = io.BytesIO(raw)
        handle.name = name
        return handle

    if data.is_jsonl(name):
        return data.load_labelled_pairs(buffer())
    columns = set(data.read_csv(buffer()).columns)
    if columns & {"label", "gold_label"}:
        return data.load_labelled_pairs(buffer())
    return data.load_positive_pairs(buffer())[["text_a", "text_b"]]


def side_names(labels: Sequence[str]) -> list[str]:
    """Column prefixes for the models shown side by side: their names, made distinct."""
    names: list[str] = []
    for label in labels:
        name, n = label, 2
        while name in names:
            name, n = f"{label} ({n})", n + 1
        names.append(name)
    return names


def prediction_columns(name: str, labels: Sequence[str], predicted: Sequence[str], values: np.ndarray,
                       regression: bool) -> dict[str, Any]:
    """One model's columns: its label and probability (and one column per class), or its score."""
    if regression:
        return {f"{name}: score": np.asarray(values, dtype=float)}
    values = np.asarray(values, dtype=float)
    columns: dict[str, Any] = {f"{name}: label": list(predicted), f"{name}: probability": values.max(axis=1)}
    for i, label in enumerate(labels):
        columns[f"{name}: p({label})"] = values[:, i]
    return columns


def predictions_table(texts_a: Sequence[str], texts_b: Sequence[str], true_labels: Sequence[str] | None,
                      sides: Sequence[tuple[str, Sequence[str], Sequence[str], np.ndarray, bool]]) -> pd.DataFrame:
    """texts, the true label when known, then each side's columns; `agree` when two classifiers share labels."""
    table = pd.DataFrame({"text a": list(texts_a), "text b": list(texts_b)})
    if true_labels is not None:
        table["true label"] = list(true_labels)
    for name, labels, predicted, values, regression in sides:
        for column, value in prediction_columns(name, labels, predicted, values, regression).items():
            table[column] = value
    classifiers = [s for s in sides if not s[4]]
    if len(classifiers) == 2 and list(classifiers[0][1]) == list(classifiers[1][1]):
        table["agree"] = table[f"{classifiers[0][0]}: label"] == table[f"{classifiers[1][0]}: label"]
    return table


METRICS = ("accuracy", "f1_macro", "precision_macro", "recall_macro")


def metrics_frame(scores: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per metric, one column per model; `delta` (second minus first) when there are two."""
    names = list(scores)
    rows = []
    for metric in METRICS:
        row: dict[str, Any] = {"metric": metric}
        for name in names:
            row[name] = scores[name].get(metric)
        if len(names) == 2:
            row["delta"] = scores[names[1]][metric] - scores[names[0]][metric]
        rows.append(row)
    return pd.DataFrame(rows)


def per_class_frame(scores: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Precision and recall of each class, per model."""
    rows = []
    for name, result in scores.items():
        for label, values in result["per_class"].items():
            rows.append({"model": name, "class": label, "precision": values["precision"],
                         "recall": values["recall"], "f1": values["f1"], "support": values["support"]})
    return pd.DataFrame(rows)
