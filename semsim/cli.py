"""`python -m semsim`: models, embed, similarity, evaluate, train, index and search commands."""

from __future__ import annotations

import argparse
import importlib
import sys

from semsim import _env  # noqa: F401
from semsim.cli_util import CliError

# Each module exposes register(commands, evaluate) adding its sub-commands; `evaluate` is the
# sub-parser group under `semsim evaluate`. Every handler is set with parser.set_defaults(func=...).
COMMAND_MODULES = ["semsim.cli_core", "semsim.cli_index", "semsim.cli_train"]


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


def main(argv: list[str] | None = None) -> int:
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


if __name__ == "__main__":
    raise SystemExit(main())
