"""CLI commands: train pairs, train sentiment, evaluate classify."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from semsim.cli.arguments import CliError
from semsim.cli.output import add_json_flag, emit, format_table
from semsim.cli.request_options import add_request_options, request_from_args
from semsim.training.spec import ClassifierTrainingRequest, PairTrainingRequest


def render_card(card: dict[str, Any]) -> str:
    rows = [{"dataset": r["dataset"], "metric": r["metric"],
             "base": "" if r["base"] is None else f"{r['base']:.4f}", "tuned": f"{r['tuned']:.4f}",
             "delta": "" if r["delta"] is None else f"{r['delta']:+.4f}"} for r in card.get("comparison", [])]
    training = card["training"]
    head = (f"saved {card['name']}: {training['epochs_run']} epoch(s), best epoch {training['best_epoch']}, "
            f"{training['seconds']:.1f}s on {training['device']}"
            + (" (cancelled)" if training.get("cancelled") else ""))
    return head + "\n" + format_table(rows, ["dataset", "metric", "base", "tuned", "delta"])


def _train(request_class: type, args: argparse.Namespace) -> int:
    """Run one training request (from options or --request FILE) and print its model card."""
    from semsim.training import train_classifier, train_pairs
    from semsim.training.card import comparison_rows

    request = request_from_args(request_class, args)
    train = train_pairs if request_class is PairTrainingRequest else train_classifier
    card = train(request, show_progress=sys.stderr.isatty() and not args.json)
    card.setdefault("comparison", comparison_rows(card["metrics"]["base"], card["metrics"]["tuned"]))
    emit(card, args.json, render_card)
    return 0


def render_classification(result: dict[str, Any]) -> str:
    lines = [f"{result['dataset']}: {result['n']} texts, model {result['model']}",
             f"  accuracy {result['accuracy']:.4f}  precision {result['precision_macro']:.4f}  "
             f"recall {result['recall_macro']:.4f}  F1 {result['f1_macro']:.4f}"
             + (f"  ROC AUC {result['roc_auc']:.4f}" if "roc_auc" in result else ""),
             "  confusion matrix (rows: true, columns: predicted):"]
    labels = result["labels"]
    width = max(len(label) for label in labels)
    lines.append("    " + " " * width + "  " + "  ".join(label.rjust(8) for label in labels))
    for label, row in zip(labels, result["confusion_matrix"], strict=True):
        lines.append("    " + label.ljust(width) + "  " + "  ".join(str(v).rjust(8) for v in row))
    return "\n".join(lines)


def cmd_evaluate_classify(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.classifier import load_classifier
    from semsim.evaluation import ClassificationEvaluator
    from semsim.training.inputs import resolve

    if not Path(args.model).is_dir():
        raise CliError(f"{args.model} is not a folder; give a classifier folder from `semsim train sentiment`")
    path = resolve(args.data, "test")
    frame = data.load_labelled(path)
    classifier = load_classifier(args.model)
    unknown = sorted(set(frame["label"].astype(str)) - set(classifier.labels))
    if unknown:
        raise CliError(f"{path} has labels {unknown} the classifier does not know ({classifier.labels})")
    result = {"model": args.model, **ClassificationEvaluator.from_frame(frame, Path(path).name)(classifier)}
    emit(result, args.json, render_classification)
    return 0


def register(commands: Any, evaluate: Any) -> None:
    train = commands.add_parser("train", help="fine-tune an encoder")
    kinds = train.add_subparsers(dest="kind", required=True, parser_class=type(train))

    for request_class, help_text in ((PairTrainingRequest, "bi-encoder on text pairs (scored: cosent / "
                                      "angular-mse; unscored: mnrl)"),
                                     (ClassifierTrainingRequest, "text classifier (frozen encoder or full "
                                      "fine-tuning)")):
        p = kinds.add_parser(request_class.TASK, help=help_text, description=request_class.__doc__)
        add_request_options(p, request_class)
        add_json_flag(p)
        p.set_defaults(func=functools.partial(_train, request_class))

    p = evaluate.add_parser("classify", help="accuracy, precision, recall, F1, ROC AUC, confusion matrix")
    p.add_argument("--model", required=True, help="a classifier folder")
    p.add_argument("--data", required=True, help="labelled CSV (text, label) or rotten-tomatoes (test split)")
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_classify)
