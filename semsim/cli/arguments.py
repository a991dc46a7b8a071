"""What the commands share about their arguments: the user-error exception, argument types, --model."""

from __future__ import annotations

import argparse
from typing import Any

from semsim.names import DEFAULT_MODEL


class CliError(Exception):
    """A user mistake (bad argument, bad file): printed as one line, exit code 2."""


def positive_int(value: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def add_model_argument(parser: argparse.ArgumentParser, default: str | None = DEFAULT_MODEL) -> None:
    parser.add_argument("--model", default=default,
                        help="minilm, use-multilingual, tfhub:<handle>, keras-hub:<preset-or-folder>, "
                             "or a model folder (default: %(default)s)")


def load_model(spec: str) -> Any:
    """Load an encoder (imported lazily: `semsim --help` must not start TensorFlow)."""
    from semsim.encoders import load_encoder

    return load_encoder(spec)
