"""The train commands: train pairs (bi-encoder), sentiment (classifier) and pair-classifier (cross-encoder), options from the requests."""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Any

from semsim.cli.output import add_json_flag, emit, format_table
from semsim.cli.request_options import add_request_options, request_from_args
from semsim.training.spec import ClassifierTrainingRequest, PairClassifierTrainingRequest, PairTrainingRequest


def render_card(card: dict[str, Any]) -> str:
    rows = [{"dataset": r["dataset"], "metric": r["metric"],
             "base": "" if r["base"] is None else f"{r['base']:.4f}", "tuned": f"{r['tuned']:.4f}",
             "delta": "" if r["delta"] is None else f"{r['delta']:+.4f}"} for r in card.get("comparison", [])]
    training = card["training"]
    head = (f"saved {card['name']}: {training['epochs_run']} epoch(s), best epoch {training['best_epoch']}, "
            f"{training['seconds']:.1f}s on {training['device']}"
            + (" (cancelled)" if training.get("cancelled") else ""))
    parts = card.get("parts") or []
    if len(parts) > 1:  # a multi-task run: what each part was and how many steps it got
        head += "\nparts: " + "; ".join(f"{p['dataset']} ({p['objective']}, weight {p['weight']:g}, {p['rows']:,} rows, "
                                       f"{p['steps']} steps)" for p in parts)
    lost = (card.get("guard") or {}).get("forgotten") or []
    warning = "".join(f"\nwarning: {text}" for text in lost)
    return head + "\n" + format_table(rows, ["dataset", "metric", "base", "tuned", "delta"]) + warning


def _train(request_class: type, args: argparse.Namespace) -> int:
    """Run one training request (from options or --request FILE) and print its model card."""
    from semsim.training import train_classifier, train_pair_classifier, train_pairs
    from semsim.training.card import comparison_rows

    request = request_from_args(request_class, args)
    train = {PairTrainingRequest: train_pairs, ClassifierTrainingRequest: train_classifier,
             PairClassifierTrainingRequest: train_pair_classifier}[request_class]
    card = train(request, show_progress=sys.stderr.isatty() and not args.json)
    card.setdefault("comparison", comparison_rows(card["metrics"]["base"], card["metrics"]["tuned"]))
    if request_class is PairTrainingRequest:  # the bi-encoder and its base will be searched and compared next
        from semsim.encoders.serving import prepare_serving

        card["serving"] = prepare_serving([request.base, str(request.out)])
    emit(card, args.json, render_card)
    return 0


def register(commands: Any, evaluate: Any) -> None:
    train = commands.add_parser("train", help="fine-tune an encoder")
    kinds = train.add_subparsers(dest="kind", required=True, parser_class=type(train))

    for request_class, help_text in ((PairTrainingRequest, "bi-encoder on text pairs (scored: cosent / "
                                      "angular-mse; unscored: mnrl)"),
                                     (ClassifierTrainingRequest, "text classifier (frozen encoder or full "
                                      "fine-tuning)"),
                                     (PairClassifierTrainingRequest, "pair classifier: a cross-encoder (or the "
                                      "bi-encoder baseline) with a classification or regression head")):
        p = kinds.add_parser(request_class.TASK, help=help_text, description=request_class.__doc__)
        add_request_options(p, request_class)
        add_json_flag(p)
        p.set_defaults(func=functools.partial(_train, request_class))
