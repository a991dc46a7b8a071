"""The evaluate commands: sts, pairs and retrieval for encoders, classify for classifiers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from semsim.cli.arguments import (
    CliError,
    add_model_argument,
    add_precision_argument,
    load_model,
    positive_int,
)
from semsim.cli.output import add_json_flag, emit, progress_bar
from semsim.cli.pairs import load_reranker


# -- evaluate sts / pairs -----------------------------------------------------------------------
def _render_correlation(result: dict[str, Any]) -> str:
    text = (f"{result['dataset']}: {result['n_pairs']} pairs, model {result['model']}\n"
            f"  Pearson  x100: {result['pearson_x100']:.2f}\n"
            f"  Spearman x100: {result['spearman_x100']:.2f}")
    if result.get("undefined_because"):
        text += f"\n  undefined: {result['undefined_because']}"
    return text


def _pair_scorer(args: argparse.Namespace) -> Any:
    """An encoder at --precision, or a pair classifier (which has no --precision: float32 only)."""
    from semsim.encoders.base import Encoder
    from semsim.pair_classifier import load_pair_scorer

    scorer = load_pair_scorer(args.model)
    if isinstance(scorer, Encoder):
        return load_model(args.model, args.precision) if args.precision != "float32" else scorer
    if args.precision != "float32":
        raise CliError(f"--precision is for sentence encoders; {args.model} is a pair classifier (float32 only)")
    return scorer


def cmd_evaluate_sts(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator

    if args.data:
        frame = data.load_pairs(args.data, score_range=(0.0, 5.0),
                                columns=("sentence1", "sentence2", "score"))
        name = Path(args.data).name
    else:
        frame = data.load_sts(args.split)
        name = f"sts-b {args.split}"
    encoder = _pair_scorer(args)  # a regression cross-encoder scores STS-B pairs itself
    result = {"model": encoder.spec, **PairSimilarityEvaluator.from_frame(frame, name=name)(encoder)}
    emit(result, args.json, _render_correlation)
    return 0


def cmd_evaluate_pairs(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.evaluation import PairSimilarityEvaluator

    frame = data.load_pairs(args.data, score_range=None)
    encoder = _pair_scorer(args)  # an encoder (cosine) or a pair model (its own score)
    result = {"model": encoder.spec,
              **({"scored_by": encoder.scored_by} if hasattr(encoder, "scored_by") else {}),
              **PairSimilarityEvaluator.from_frame(frame, name=Path(args.data).name)(encoder)}
    emit(result, args.json, _render_correlation)
    return 0


# -- evaluate retrieval -------------------------------------------------------------------------
def _render_retrieval(result: dict[str, Any]) -> str:
    keys = [k for k in result if k.startswith(("recall@", "mrr@", "ndcg@"))]
    lines = [f"{result['name']}: {result['n_queries']} queries against {result['n_corpus']} texts, "
             f"model {result['model']}"]
    lines += [f"  {key:<10} {result[key]:.4f}" + ("  (primary)" if key == result["primary_metric"] else "")
              for key in keys]
    return "\n".join(lines)


def cmd_evaluate_retrieval(args: argparse.Namespace) -> int:
    from semsim import data
    from semsim.evaluation import RetrievalEvaluator

    if args.beir and (args.queries or args.corpus):
        raise CliError("--beir FOLDER holds the queries and the corpus; drop --queries and --corpus")
    corpus_is_beir = bool(args.corpus) and (Path(args.corpus) / "corpus.jsonl").is_file()
    if not args.beir and not corpus_is_beir and bool(args.queries) != bool(args.corpus):
        raise CliError("give both --queries and --corpus, or neither (for the bundled ESCO set)")
    queries = args.queries or data.bundled_path("esco-retrieval", "queries")
    corpus = args.corpus or data.bundled_path("esco-retrieval", "corpus")
    name = "esco-retrieval" if not (args.queries or args.corpus) else Path(queries).name
    beir = args.beir or (args.corpus if corpus_is_beir else None)
    if beir:  # a BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
        evaluator = RetrievalEvaluator.from_beir(beir, args.split, name=f"{Path(beir).name} ({args.split})",
                                                 batch_size=args.batch_size)
    else:
        evaluator = RetrievalEvaluator.from_files(queries, corpus, name=name, batch_size=args.batch_size,
                                                  id_column=args.id_column, text_column=args.text_column)
    reranker = load_reranker(args.rerank) if args.rerank else None
    encoder = load_model(args.model, args.precision)
    if reranker is not None:
        from semsim.rerank import evaluate_reranked

        result = evaluate_reranked(evaluator, encoder, reranker, args.candidates,
                                   progress=progress_bar(f"embedding with {encoder.name}"))
        emit(result, args.json, _render_reranked)
        return 0
    result = evaluator(encoder, progress=progress_bar(f"embedding with {encoder.name}"))
    emit(result, args.json, _render_retrieval)
    return 0


def _render_reranked(result: dict[str, Any]) -> str:
    alone = result["bi_encoder_alone"]
    keys = [k for k in alone if k.startswith(("recall@", "mrr@", "ndcg@"))]
    lines = [f"{result['name']}: {result['n_queries']} queries against {result['n_corpus']} texts, model "
             f"{result['model']}, top {result['candidates']} reranked by {result['reranker']}",
             f"  {'metric':<10} {'bi-encoder':>10} {'reranked':>10} {'delta':>8}"]
    lines += [f"  {key:<10} {alone[key]:>10.4f} {result[key]:>10.4f} {result[key] - alone[key]:>+8.4f}"
              for key in keys]
    lines.append(f"  rerank time per query: p50 {result['rerank_ms_p50']:.1f} ms, p95 {result['rerank_ms_p95']:.1f} ms")
    return "\n".join(lines)


# -- evaluate classify --------------------------------------------------------------------------
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
    p = evaluate.add_parser("sts", help="Pearson/Spearman x100 on STS-B (test by default)")
    add_model_argument(p)
    p.add_argument("--data", help="a CSV with sentence1, sentence2, score (0-5) instead of bundled STS-B")
    p.add_argument("--split", choices=["train", "dev", "test"], default="test")
    add_precision_argument(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_sts)

    p = evaluate.add_parser("pairs", help="Pearson/Spearman on a scored-pairs CSV (text_a, text_b, score); "
                                          "the model may also be a pair classifier (its regression score)")
    add_model_argument(p)
    p.add_argument("--data", required=True)
    add_precision_argument(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_pairs)

    p = evaluate.add_parser("retrieval", help="recall@k, MRR@10, nDCG@10 on a query set (ESCO by default)")
    add_model_argument(p)
    p.add_argument("--queries", help="CSV: query_id, query, relevant_ids (default: bundled ESCO queries)")
    p.add_argument("--corpus", help="CSV: id, text (default: bundled ESCO corpus); the id column may also be "
                                    "doc_id, _id or corpus_id; a BEIR folder works too")
    p.add_argument("--id-column", help="the corpus CSV's id column (default: the first of id, doc_id, _id, "
                                       "corpus_id it has)")
    p.add_argument("--text-column", help="the corpus CSV's text column (default: text)")
    p.add_argument("--beir", metavar="FOLDER", help="a BEIR folder: corpus.jsonl, queries.jsonl, "
                                                    "qrels/SPLIT.tsv")
    p.add_argument("--split", default="test", help="with --beir: the qrels split (default: test)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--rerank", metavar="DIR", help="re-score each query's top --candidates with this pair "
                                                   "classifier (a cross-encoder) and report both rankings")
    p.add_argument("--candidates", type=positive_int, default=100,
                   help="with --rerank: candidates per query from the bi-encoder (default: %(default)s)")
    add_precision_argument(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_retrieval)

    p = evaluate.add_parser("classify", help="accuracy, precision, recall, F1, ROC AUC, confusion matrix")
    p.add_argument("--model", required=True, help="a classifier folder")
    p.add_argument("--data", required=True, help="labelled CSV (text, label) or rotten-tomatoes (test split)")
    add_json_flag(p)
    p.set_defaults(func=cmd_evaluate_classify)
