"""CLI commands: train pairs, train sentiment, evaluate classify."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from semsim.cli.arguments import CliError, positive_int
from semsim.cli.output import add_json_flag, emit, format_table


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    return number


def _score_range(value: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH such as 0,1 or 0,5; got {value!r}") from None
    if not high > low:
        raise argparse.ArgumentTypeError(f"HIGH must be greater than LOW in {value!r}")
    return low, high


def add_training_arguments(parser: argparse.ArgumentParser, learning_rate: float) -> None:
    parser.add_argument("--out", required=True, help="folder for the tuned model")
    parser.add_argument("--epochs", type=positive_int, default=1)
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--learning-rate", type=_fraction, default=learning_rate)
    parser.add_argument("--warmup-ratio", type=_fraction, default=0.1)
    parser.add_argument("--weight-decay", type=_fraction, default=0.01)
    parser.add_argument("--patience", type=positive_int, default=2, help="early-stopping patience (epochs)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--validation", help="validation CSV (default: split off --validation-fraction)")
    parser.add_argument("--validation-fraction", type=_fraction, default=0.1)
    parser.add_argument("--test", help="test CSV, evaluated for base and tuned in the model card")
    parser.add_argument("--max-steps-per-epoch", type=positive_int, default=None)
    parser.add_argument("--mixed-precision", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run from its checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    add_json_flag(parser)


def _config(args: argparse.Namespace) -> Any:
    from semsim.training import TrainConfig

    return TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                       warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay, patience=args.patience,
                       seed=args.seed, validation_fraction=args.validation_fraction,
                       max_steps_per_epoch=args.max_steps_per_epoch, mixed_precision=args.mixed_precision,
                       merge_alpha=getattr(args, "merge_alpha", 1.0),
                       head_warmup_epochs=getattr(args, "head_warmup_epochs", 0))


def _resolve(path: str | None, bundled_split: str | None = None, name: str | None = None) -> str | None:
    """A CSV path, or a bundled dataset name such as job-title-pairs (with the split implied)."""
    if path is None:
        return None
    from semsim import data

    if path in data.BUNDLED_DATASETS and bundled_split:
        return str(data.bundled_path(path, bundled_split))
    return path


def render_card(card: dict[str, Any]) -> str:
    rows = [{"dataset": r["dataset"], "metric": r["metric"],
             "base": "" if r["base"] is None else f"{r['base']:.4f}", "tuned": f"{r['tuned']:.4f}",
             "delta": "" if r["delta"] is None else f"{r['delta']:+.4f}"} for r in card.get("comparison", [])]
    training = card["training"]
    head = (f"saved {card['name']}: {training['epochs_run']} epoch(s), best epoch {training['best_epoch']}, "
            f"{training['seconds']:.1f}s on {training['device']}"
            + (" (cancelled)" if training.get("cancelled") else ""))
    return head + "\n" + format_table(rows, ["dataset", "metric", "base", "tuned", "delta"])


def cmd_train_pairs(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.training import train_pairs
    from semsim.training.card import comparison_rows

    unscored = args.objective == "mnrl"
    score_range = None if unscored else args.score_range

    def load(path: str) -> Any:
        if unscored:
            return data.load_positive_pairs(path)
        return data.load_pairs(path, score_range=score_range)

    train_path = _resolve(args.data, "train")
    train = load(train_path)
    validation = load(_resolve(args.validation, "validation")) if args.validation else None
    test = load(_resolve(args.test, "test")) if args.test else None
    rehearsal, rehearsal_range, rehearsal_path = None, None, None
    if args.rehearsal_data:
        if unscored:
            raise data.DatasetError(args.rehearsal_data, "rehearsal pairs need scores; mnrl trains on unscored pairs")
        bundled = data.BUNDLED_DATASETS.get(args.rehearsal_data)
        rehearsal_range = args.rehearsal_score_range or (bundled.score_range if bundled else None) or score_range
        rehearsal_path = _resolve(args.rehearsal_data, "train")
        rehearsal = data.load_pairs(rehearsal_path, score_range=rehearsal_range,
                                    columns=bundled.columns if bundled else ("text_a", "text_b", "score"))
    card = train_pairs(args.base, train, args.out, objective=args.objective, validation=validation, test=test,
                       score_range=score_range or (0.0, 1.0), config=_config(args),
                       dataset_name=Path(train_path).name, dataset_sha256=data.content_hash(train_path),
                       rehearsal=rehearsal, rehearsal_range=rehearsal_range,
                       rehearsal_name=Path(rehearsal_path or "-").name,
                       evaluate_sts=not args.no_sts, resume=args.resume, overwrite=args.overwrite,
                       show_progress=sys.stderr.isatty() and not args.json)
    card.setdefault("comparison", comparison_rows(card["metrics"]["base"], card["metrics"]["tuned"]))
    emit(card, args.json, render_card)
    return 0


def cmd_train_sentiment(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.training import train_classifier
    from semsim.training.card import comparison_rows

    train_path = _resolve(args.data, "train")
    train = data.load_labelled(train_path)
    validation = data.load_labelled(_resolve(args.validation, "validation")) if args.validation else None
    test = data.load_labelled(_resolve(args.test, "test")) if args.test else None
    card = train_classifier(args.base, train, args.out, mode=args.mode, validation=validation, test=test,
                            config=_config(args), dataset_name=Path(train_path).name,
                            dataset_sha256=data.content_hash(train_path), resume=args.resume,
                            overwrite=args.overwrite, show_progress=sys.stderr.isatty() and not args.json)
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

    if not Path(args.model).is_dir():
        raise CliError(f"{args.model} is not a folder; give a classifier folder from `semsim train sentiment`")
    path = _resolve(args.data, "test")
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

    p = kinds.add_parser("pairs", help="bi-encoder on text pairs (scored: cosent / angular-mse; unscored: mnrl)")
    p.add_argument("--base", default="minilm", help="base encoder spec (default: %(default)s)")
    p.add_argument("--data", required=True, help="pairs CSV (text_a, text_b[, score]) or job-title-pairs")
    p.add_argument("--objective", choices=["cosent", "angular-mse", "mnrl"], default="cosent")
    p.add_argument("--score-range", type=_score_range, default=(0.0, 1.0), help="LOW,HIGH of the scores")
    p.add_argument("--no-sts", action="store_true", help="skip the STS-B test evaluation in the model card")
    p.add_argument("--rehearsal-data", help="general-domain scored pairs mixed in against forgetting "
                   "(a CSV or a bundled name such as sts-b); never batched with --data")
    p.add_argument("--rehearsal-score-range", type=_score_range, default=None,
                   help="LOW,HIGH of the rehearsal scores (default: the bundled range, else --score-range)")
    p.add_argument("--merge-alpha", type=_fraction, default=1.0,
                   help="keep base + ALPHA * (tuned - base) (WiSE-FT); below 1 forgets less (default: 1)")
    add_training_arguments(p, learning_rate=2e-5)
    p.set_defaults(func=cmd_train_pairs)

    p = kinds.add_parser("sentiment", help="text classifier (frozen encoder or full fine-tuning)")
    p.add_argument("--base", default="minilm", help="base encoder spec (default: %(default)s)")
    p.add_argument("--data", required=True, help="labelled CSV (text, label) or rotten-tomatoes")
    p.add_argument("--mode", choices=["full", "frozen"], default="full")
    p.add_argument("--head-warmup-epochs", type=int, default=0,
                   help="full mode: first fit the head alone on frozen vectors for N epochs (LP-FT)")
    add_training_arguments(p, learning_rate=3e-5)
    p.set_defaults(func=cmd_train_sentiment)

    p = evaluate.add_parser("classify", help="accuracy, precision, recall, F1, ROC AUC, confusion matrix")
    p.add_argument("--model", required=True, help="a classifier folder")
    p.add_argument("--data", required=True, help="labelled CSV (text, label) or rotten-tomatoes (test split)")
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_classify)
