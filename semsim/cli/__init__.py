"""`python -m semsim`: models, embed, similarity, evaluate, train, index, search and compare commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from semsim import _env  # noqa: F401
from semsim.cli.arguments import CliError

# Each module exposes register(commands, evaluate) adding its sub-commands; `evaluate` is the
# sub-parser group under `semsim evaluate`. Every handler is set with parser.set_defaults(func=...).
# Modules import their heavy dependencies inside the handlers: `semsim --help` must not start TensorFlow.
COMMAND_MODULES = ["semsim.cli.encoders", "semsim.cli.evaluate", "semsim.cli.index", "semsim.cli.search",
                   "semsim.cli.train", "semsim.cli.compare"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit code 2, as for every user error
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="semsim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    evaluate = commands.add_parser("evaluate", help="metrics for a model on a dataset")
    evaluate_commands = evaluate.add_subparsers(dest="evaluation", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(commands, evaluate_commands)
    return parser


class _Notice(logging.Handler):
    """Warnings of the index package (a writer waiting for another one) as `semsim: ...` lines on
    stderr; looked up at each message, so it follows a redirected sys.stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"semsim: {record.getMessage()}", file=sys.stderr)


def _show_notices() -> None:
    logger = logging.getLogger("index")
    if not any(isinstance(h, _Notice) for h in logger.handlers):
        logger.addHandler(_Notice(logging.WARNING))
        logger.propagate = False


def _run(argv: list[str] | None) -> int:
    _show_notices()
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except CliError as exc:
        print(f"semsim: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        # Library errors (EncoderError, DatasetError, IndexError...) carry user-facing messages.
        print(f"semsim: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semsim: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            return _run(argv)
        finally:
            # Piped output is buffered: flushing here makes a closed pipe show up inside this try,
            # not as "Exception ignored" at interpreter exit.
            sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`semsim models | head -1`): what it read is all it wanted, so this
        # is no error. stdout now points at /dev/null, so the interpreter's own final flush stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
