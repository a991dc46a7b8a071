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


def add_precision_argument(parser: argparse.ArgumentParser, default: str | None = "float32",
                           default_help: str | None = None) -> None:
    """--precision for every command that encodes (one definition, so embed, index build, search,
    evaluate and compare offer the same choices and help)."""
    from semsim.encoders.precision import PRECISION_CHOICES

    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=default,
                        help="what the encoder computes in: float32; bfloat16 (fast only on CPUs with "
                             "AVX512-BF16 or AMX); int8 (ONNX Runtime, BERT-family models; made once per "
                             "model, then cached); auto: bfloat16 where the CPU has it and a quick STS-B "
                             f"check passes, else float32 (default: {default_help or default})")


def load_model(spec: str, precision: str = "float32") -> Any:
    """Load an encoder (imported lazily: `semsim --help` must not start TensorFlow) at `precision`;
    for `auto`, say on stderr what was picked and why."""
    import sys

    from semsim.encoders.serving import load_for_inference

    # Every command that calls this only runs the forward pass: ONNX Runtime serves it where it covers the
    # model (SEMSIM_RUNTIME=keras: Keras always).
    encoder = load_for_inference(spec, precision)
    if precision == "auto":
        print(f"semsim: precision {encoder.precision_reason}", file=sys.stderr)
    return encoder
