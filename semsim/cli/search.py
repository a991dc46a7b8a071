"""The search command: the nearest texts in an index folder for a query."""

from __future__ import annotations

import argparse
from typing import Any

from semsim.cli.arguments import CliError, add_precision_argument, load_model, positive_int
from semsim.cli.index import column_list, model_that_built
from semsim.cli.output import add_json_flag, emit, format_table
from semsim.cli.pairs import load_reranker


def cmd_search(args: argparse.Namespace) -> int:
    import sys
    import warnings

    from semsim.search import PrecisionMismatchWarning, load_index, search_index

    if not args.query.strip():
        raise CliError("--query must not be empty")
    store = load_index(args.index)
    reranker = load_reranker(args.rerank) if args.rerank else None
    # By default the query is encoded at the precision the index was built with; another is a warning.
    precision = args.precision or (store.encoder or {}).get("precision") or "float32"
    encoder = load_model(args.model or model_that_built(args.index), precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PrecisionMismatchWarning)
        if reranker is None:
            hits = search_index(encoder, store, args.query, k=args.k, dim=args.dim)
            columns = ["rank", "score", "text", *(args.columns or [])]
        else:
            from semsim.rerank import search_and_rerank

            hits, _ = search_and_rerank(encoder, store, reranker, args.query, k=args.k,
                                        candidates=max(args.candidates, args.k))
            columns = ["rank", "rerank_score", "score", "retrieval_rank", "rank_change", "text",
                       *(args.columns or [])]
    for note in dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, PrecisionMismatchWarning)):
        print(f"semsim: warning: {note}", file=sys.stderr)
    unknown = [c for c in args.columns or [] if hits and c not in hits[0]]
    if unknown:
        raise CliError(f"no column {unknown[0]!r} in the index; it has: {', '.join(store.rows().column_names)}")
    result = {"query": args.query, "model": encoder.spec, "index": args.index, "hits": hits}
    if reranker is not None:
        result.update(reranker=reranker.spec, candidates=max(args.candidates, args.k))
    emit(result, args.json, lambda r: format_table(r["hits"], columns))
    return 0


def register(commands: Any, evaluate: Any) -> None:
    p = commands.add_parser("search", help="nearest texts in an index for a query")
    p.add_argument("--index", required=True, help="index folder")
    p.add_argument("--query", required=True, help="the text to search for")
    p.add_argument("-k", type=positive_int, default=10, help="number of results (default: %(default)s)")
    p.add_argument("--model", help="encoder spec (default: the one that built the index; others are refused)")
    p.add_argument("--columns", type=column_list, help="extra columns to show, comma-separated")
    p.add_argument("--dim", type=positive_int, help="the index's dimension, as a check (queries are cut to the "
                                                    "dimension an index built with --dim records; another is refused)")
    add_precision_argument(p, default=None, default_help="the precision the index was built with")
    p.add_argument("--rerank", metavar="DIR", help="re-score the top --candidates with this pair classifier "
                                                   "(a cross-encoder); results show both scores and the rank change")
    p.add_argument("--candidates", type=positive_int, default=100,
                   help="with --rerank: how many index results to re-score (default: %(default)s)")
    add_json_flag(p)
    p.set_defaults(func=cmd_search)
