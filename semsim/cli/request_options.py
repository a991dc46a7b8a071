"""CLI options made from a training request dataclass (semsim.training.spec), and the request made back.

Each option's flag, type, choices, default and help come from the request's fields, so the CLI and the
Train page's form cannot drift apart; the request's own `check` is the only validation."""

from __future__ import annotations

import argparse
from typing import Any

from semsim.training.spec import FieldSpec, TrainingArguments, TrainingError, fields


def _number(kind: type) -> Any:
    def parse(value: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {value!r}") from None
    parse.__name__ = kind.__name__
    return parse


def score_range(value: str) -> tuple[float, float]:
    """argparse type: LOW,HIGH."""
    try:
        low, high = (float(x) for x in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH such as 0,1 or 0,5; got {value!r}") from None
    if not high > low:
        raise argparse.ArgumentTypeError(f"HIGH must be greater than LOW in {value!r}")
    return low, high


def _help(spec: FieldSpec) -> str:
    text = spec.help
    if spec.kind is not bool and spec.default is not None and not spec.required and not spec.repeat:
        shown = ",".join(f"{v:g}" for v in spec.default) if spec.kind is tuple else spec.default
        text += f" (default: {shown})"
    if spec.limits_text():
        text += f"; range {spec.limits_text()}"
    if spec.kind is bool and spec.default is True:
        text += " (on unless this flag is given)"
    return text.replace("%", "%%")


def add_request_options(parser: argparse.ArgumentParser, request: type[TrainingArguments]) -> None:
    """One option per field of `request`, plus --request FILE (a JSON request, as the app writes)."""
    order = ("model", "data", "run", "hyperparameters")  # --help lists what to train on before how
    for spec in sorted(fields(request), key=lambda s: order.index(s.group) if s.group in order else len(order)):
        options: dict[str, Any] = {"dest": spec.name, "help": _help(spec), "default": argparse.SUPPRESS}
        if spec.kind is bool:
            options["action"] = "store_false" if spec.default is True else "store_true"
        elif spec.repeat:  # a tuple of strings, one per use of the flag (--part A --part B)
            options.update(action="append", type=str, metavar=spec.name.rstrip("s").upper())
        else:
            options["type"] = score_range if spec.kind is tuple else _number(spec.kind) if spec.kind in (
                int, float) else str
            if spec.choices:
                options["choices"] = spec.choices
            if spec.required:
                options["help"] += " (required)"
        parser.add_argument(spec.flag, **options)
    parser.add_argument("--request", metavar="FILE", help="read the whole request from a JSON file "
                        "(as the app writes it); other options are then not allowed")


def request_from_args(request: type[TrainingArguments], args: argparse.Namespace) -> TrainingArguments:
    """The request the options describe (checked by the request itself; TrainingError when wrong)."""
    given = {spec.name: tuple(getattr(args, spec.name)) if spec.repeat else getattr(args, spec.name)
             for spec in fields(request) if hasattr(args, spec.name)}
    if getattr(args, "request", None):
        if given:
            flags = ", ".join(spec.flag for spec in fields(request) if spec.name in given)
            raise TrainingError(f"--request takes the whole request from its file; drop {flags}")
        return request.read_json(args.request)
    missing = [spec.flag for spec in fields(request) if spec.required and spec.name not in given]
    if missing:
        raise TrainingError(f"the following arguments are required: {', '.join(missing)}")
    return request(**given)
