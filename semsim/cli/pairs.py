"""The pair-classifier command: evaluate pair-classify (accuracy, macro-F1, per-class precision/recall, confusion matrix)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from semsim.cli.arguments import CliError, positive_int
from semsim.cli.output import add_json_flag, emit


def render_pair_classification(result: dict[str, Any]) -> str:
    labels = result["labels"]
    width = max(8, *(len(label) for label in labels))
    lines = [f"{result['dataset']}: {result['n']} pairs, model {result['model']} ({result['architecture']}-encoder)",
             f"  accuracy {result['accuracy']:.4f}  macro-F1 {result['f1_macro']:.4f}  "
             f"macro precision {result['precision_macro']:.4f}  macro recall {result['recall_macro']:.4f}",
             "  " + "class".ljust(width) + "  precision     recall         F1    support"]
    for label in labels:
        row = result["per_class"][label]
        lines.append("  " + label.ljust(width) + f"  {row['precision']:9.4f}  {row['recall']:9.4f}  "
                     f"{row['f1']:9.4f}  {row['support']:9d}")
    if result.get("dropped_no_gold"):
        lines.append(f"  ({result['dropped_no_gold']} pairs with gold_label '-' dropped)")
    lines.append("  confusion matrix (rows: true, columns: predicted):")
    lines.append("    " + " " * width + "  " + "  ".join(label.rjust(width) for label in labels))
    for label, row in zip(labels, result["confusion_matrix"], strict=True):
        lines.append("    " + label.ljust(width) + "  " + "  ".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def load_reranker(folder: str) -> Any:
    """The pair-classifier folder of a --rerank option, checked before anything is embedded."""
    from semsim.pair_classifier import is_pair_classifier, load_pair_classifier

    if not Path(folder).is_dir() or not is_pair_classifier(folder):
        raise CliError(f"--rerank needs a pair-classifier folder (from `semsim train pair-classifier`); "
                       f"{folder} is not one")
    return load_pair_classifier(folder)


def cmd_evaluate_pair_classify(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.training.inputs import bundled_split, resolve

    if not Path(args.model).is_dir():
        raise CliError(f"{args.model} is not a folder; give a pair classifier from `semsim train pair-classifier`")
    bundled = data.BUNDLED_DATASETS.get(args.data)
    if bundled is not None:
        if bundled.kind != "labelled-pairs":
            raise CliError(f"{args.data} holds scored pairs, not labels; evaluate a regression head with "
                           f"`semsim evaluate pairs`, or choose a labelled dataset such as job-title-relations")
        frame, name = data.load_bundled(args.data, bundled_split(args.data, "test")), f"{args.data} test"
    else:
        frame, name = data.load_labelled_pairs(resolve(args.data, "test")), Path(args.data).name
    from semsim.evaluation.pair_classification import PairClassificationEvaluator
    from semsim.pair_classifier import CLASSIFICATION, load_pair_classifier

    model = load_pair_classifier(args.model)
    if model.head_kind != CLASSIFICATION:
        raise CliError(f"{args.model} is a regression pair model; evaluate it with `semsim evaluate pairs`")
    unknown = sorted(set(frame["label"].astype(str)) - set(model.labels))
    if unknown:
        raise CliError(f"{name} has labels {unknown} the pair classifier does not know ({', '.join(model.labels)})")
    result = {"model": args.model, "architecture": model.architecture,
              "dropped_no_gold": int(frame.attrs.get("dropped_no_gold", 0)),
              **PairClassificationEvaluator.from_frame(frame, name, batch_size=args.batch_size)(model)}
    emit(result, args.json, render_pair_classification)
    return 0


def register(commands: Any, evaluate: Any) -> None:
    p = evaluate.add_parser("pair-classify", help="accuracy, macro-F1, per-class precision/recall and the "
                                                  "confusion matrix of a pair classifier")
    p.add_argument("--model", required=True, help="a pair-classifier folder (semsim train pair-classifier)")
    p.add_argument("--data", required=True, help="labelled pairs: CSV (text_a, text_b, label), SNLI/MultiNLI "
                                                 ".jsonl, or a bundled name (its test split)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_pair_classify)
