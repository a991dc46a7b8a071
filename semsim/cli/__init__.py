"""`python -m semsim`: models, embed, similarity, evaluate, train, index, search and compare commands."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from semsim import _env  # noqa: F401
from semsim.cli.arguments import CliError
from semsim.cli.output import terminal_safe

# Each module exposes register(commands, evaluate) adding its sub-commands; `evaluate` is the
# sub-parser group under `semsim evaluate`. Every handler is set with parser.set_defaults(func=...).
# Modules import their heavy dependencies inside the handlers: `semsim --help` must not start TensorFlow.
COMMAND_MODULES = ["semsim.cli.encoders", "semsim.cli.evaluate", "semsim.cli.index", "semsim.cli.search",
                   "semsim.cli.train", "semsim.cli.compare", "semsim.cli.pairs", "semsim.cli.mine"]


def _error_line(message: object) -> str:
    """An error as one line a terminal shows as text (user text in it may hold escapes or newlines)."""
    return " ".join(terminal_safe(str(message)).split("\n")).strip()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line and exit code 2, as for every user error
        self.exit(2, f"{self.prog}: error: {_error_line(message)}\n")


def _check_utf8(argv: list[str]) -> None:
    """Refuse an argument that is not UTF-8 (Python keeps its bytes as lone surrogates, which every
    tokenizer, file name and print later fails on) with one line naming it."""
    for position, value in enumerate(argv):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
            option = argv[position - 1] if position and argv[position - 1].startswith("-") else None
            which = f"the value of {option}" if option else f"argument {position + 1}"
            raise CliError(f"{which} is not valid UTF-8 ({ascii(raw)[1:]}); pass text and paths as UTF-8") from None


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
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _check_utf8(argv)
    except CliError as exc:
        print(f"semsim: error: {_error_line(exc)}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        # Library warnings (Keras' two-line UserWarnings while a model loads) are held back: a failed
        # command prints its one error line only, a command that worked prints each as one line after.
        with warnings.catch_warnings(record=True) as caught:
            result = args.func(args)
        for warning in {str(w.message): w for w in caught}.values():
            print(f"semsim: warning: {_error_line(warning.message)}", file=sys.stderr)
    except CliError as exc:
        print(f"semsim: error: {_error_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise  # the reader stopped early: main() ends quietly
    except (ValueError, OSError) as exc:
        # Library errors (EncoderError, DatasetError, IndexError...) carry user-facing messages; OSError
        # (a full disk, a file another program removed) says what failed on which path.
        print(f"semsim: error: {_error_line(exc)}", file=sys.stderr)
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
