"""Pair-classifier benchmark: cross-encoder vs bi-encoder + head on job-title relations, STS-B as a regression
cross-encoder beside the bi-encoder, and ESCO retrieval reranked by a cross-encoder.

Run: .venv/bin/python bench/pair_classifier.py --tasks relations,sts,rerank [--max-steps N]
CPU-sized recipes (a few thousand pairs, capped steps); models go to bench/runs/, results to
bench/results/pair_classifier_<task>.json, a table to stdout. The load average is recorded beside each
time: the machine is shared. Nothing is asserted here.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from semsim import data  # noqa: E402
from semsim.training import PairClassifierTrainingRequest, train_pair_classifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "runs"
RESULTS = ROOT / "bench" / "results"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def train(name: str, args: argparse.Namespace, **fields) -> tuple[dict, float]:
    """Train one pair classifier (replacing an earlier run of the same name); (card, minutes)."""
    started = time.time()
    request = PairClassifierTrainingRequest(base=args.model, out=str(RUNS / name), overwrite=True, **fields)
    card = train_pair_classifier(request, show_progress=sys.stderr.isatty())
    minutes = (time.time() - started) / 60
    print(f"  {name}: {minutes:.1f} min, load {load()}", file=sys.stderr, flush=True)
    return card, minutes


def task_relations(args: argparse.Namespace) -> list[dict]:
    """Job-title relations test (unit groups unseen in training): cross-encoder vs bi-encoder + head."""
    common = {"data": "job-title-relations", "test": "job-title-relations", "max_steps_per_epoch": args.max_steps,
              "batch_size": 32, "patience": args.patience}
    rows = []
    # A frozen encoder's head trains on fixed vectors, so it gets more (cheap) epochs; early stopping on
    # validation accuracy picks each run's best epoch either way.
    for name, architecture, mode, lr, epochs in (("relations-cross", "cross", "full", args.lr, args.epochs),
                                                 ("relations-bi-frozen", "bi", "frozen", 1e-3, args.frozen_epochs),
                                                 ("relations-bi-full", "bi", "full", args.lr, args.epochs)):
        if args.only and name not in args.only.split(","):
            continue
        name = name + args.tag
        load_before = load()
        card, minutes = train(name, args, architecture=architecture, mode=mode, learning_rate=lr,
                              max_length=64, epochs=epochs, **common)
        test = card["metrics"]["tuned"]["test"]
        rows.append({"task": "relations", "model": name, "architecture": architecture, "mode": mode,
                     "accuracy": test["accuracy"], "f1_macro": test["f1_macro"],
                     "per_class": test["per_class"], "confusion_matrix": test["confusion_matrix"],
                     "labels": test["labels"], "majority_accuracy": card["metrics"]["base"]["test"]["accuracy"],
                     "steps": card["training"]["steps"], "best_epoch": card["training"]["best_epoch"],
                     "epochs_run": card["training"]["epochs_run"], "learning_rate": lr,
                     "validation_accuracy": [h["accuracy"] for h in card["training"]["validation_history"]],
                     "minutes": minutes, "load_before": load_before, "load_after": load()})
    return rows


def task_sts(args: argparse.Namespace) -> list[dict]:
    """STS-B test as a regression cross-encoder, beside the base bi-encoder's cosine (in the card as 'base')."""
    load_before = load()
    card, minutes = train("stsb-cross", args, data="sts-b", test="sts-b", architecture="cross", mode="full",
                          head="regression", learning_rate=args.lr, epochs=args.sts_epochs, batch_size=16,
                          max_steps_per_epoch=args.max_steps, max_length=128)
    test, base = card["metrics"]["tuned"]["test"], card["metrics"]["base"]["test"]
    return [{"task": "sts", "model": "stsb-cross", "spearman_x100": 100 * test["spearman"],
             "pearson_x100": 100 * test["pearson"], "bi_encoder_base_spearman_x100": 100 * base["spearman"],
             "steps": card["training"]["steps"], "best_epoch": card["training"]["best_epoch"],
             "validation_history": card["training"]["validation_history"], "minutes": minutes,
             "load_before": load_before, "load_after": load()}]


def bi_encoder_latency(encoder, queries: list[str], corpus: list[str]) -> dict:
    """p50/p95 ms of one query embedded and searched exactly (what a search costs without rerank)."""
    import numpy as np

    from index import FlatIndex

    vectors = encoder.encode(corpus)
    index = FlatIndex(vectors.shape[1])
    index.add(vectors, np.arange(len(vectors)))
    times = []
    for query in queries:
        started = time.perf_counter()
        index.search(encoder.encode([query]), 100)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95))}


def task_rerank(args: argparse.Namespace) -> list[dict]:
    """ESCO retrieval nDCG@10: the bi-encoder alone vs its top 100 re-scored by each cross-encoder trained above."""
    from semsim.encoders import load_encoder
    from semsim.evaluation import RetrievalEvaluator
    from semsim.pair_classifier import load_pair_classifier
    from semsim.rerank import evaluate_reranked

    queries, corpus = data.load_bundled("esco-retrieval")
    if args.queries:
        queries = queries.sample(n=args.queries, random_state=0).reset_index(drop=True)
    evaluator = RetrievalEvaluator(queries, corpus, name="esco-retrieval")
    encoder = load_encoder(args.model)
    latency = bi_encoder_latency(encoder, evaluator.queries[:200], evaluator.corpus_texts)
    rows = []
    for name in args.rerankers.split(","):
        folder = RUNS / name
        if not folder.is_dir():
            print(f"  skipping {name}: {folder} does not exist (run its task first)", file=sys.stderr)
            continue
        reranker = load_pair_classifier(folder)
        load_before = load()
        started = time.time()
        result = evaluate_reranked(evaluator, encoder, reranker, args.candidates)
        alone = result["bi_encoder_alone"]
        rows.append({"task": "rerank", "model": name, "scored_by": result["scored_by"],
                     "candidates": result["candidates"], "n_queries": result["n_queries"],
                     "ndcg@10_alone": alone["ndcg@10"], "ndcg@10_reranked": result["ndcg@10"],
                     "recall@1_alone": alone["recall@1"], "recall@1_reranked": result["recall@1"],
                     "mrr@10_alone": alone["mrr@10"], "mrr@10_reranked": result["mrr@10"],
                     "rerank_ms_p50": result["rerank_ms_p50"], "rerank_ms_p95": result["rerank_ms_p95"],
                     "bi_encoder_ms_p50": latency["p50"], "bi_encoder_ms_p95": latency["p95"],
                     "minutes": (time.time() - started) / 60, "load_before": load_before, "load_after": load()})
        print(f"  {name}: nDCG@10 {alone['ndcg@10']:.4f} -> {result['ndcg@10']:.4f}, rerank p50 "
              f"{result['rerank_ms_p50']:.0f} ms, load {load()}", file=sys.stderr, flush=True)
    return rows


TASKS = {"relations": task_relations, "sts": task_sts, "rerank": task_rerank}


def render(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        if row["task"] == "relations":
            lines.append(f"relations  {row['model']:<22} accuracy {row['accuracy']:.4f}  macro-F1 "
                         f"{row['f1_macro']:.4f}  ({row['steps']} steps, {row['minutes']:.1f} min, load "
                         f"{row['load_before'][0]}->{row['load_after'][0]})")
        elif row["task"] == "sts":
            lines.append(f"sts        {row['model']:<22} Spearman x100 {row['spearman_x100']:.2f} (bi-encoder base "
                         f"{row['bi_encoder_base_spearman_x100']:.2f}; {row['minutes']:.1f} min)")
        else:
            lines.append(f"rerank     {row['model']:<22} nDCG@10 {row['ndcg@10_alone']:.4f} -> "
                         f"{row['ndcg@10_reranked']:.4f}  rerank p50 {row['rerank_ms_p50']:.0f} ms (bi-encoder "
                         f"p50 {row['bi_encoder_ms_p50']:.0f} ms)")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", default="relations,sts,rerank")
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--epochs", type=int, default=1, help="relations: epochs (6,000 pairs, batch 32)")
    parser.add_argument("--frozen-epochs", type=int, default=None, help="relations: epochs of the frozen "
                        "bi-encoder's head (default: --epochs)")
    parser.add_argument("--patience", type=int, default=2, help="early stopping patience (epochs)")
    parser.add_argument("--only", default="", help="relations: only these runs (relations-cross,...)")
    parser.add_argument("--tag", default="", help="suffix of the run folders and result files (a second recipe)")
    parser.add_argument("--sts-epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-5, help="full fine-tuning learning rate")
    parser.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (quick runs)")
    parser.add_argument("--rerankers", default="relations-cross,stsb-cross")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--queries", type=int, default=None, help="rerank: a seeded sample of the ESCO queries")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.frozen_epochs = args.frozen_epochs or args.epochs
    RUNS.mkdir(parents=True, exist_ok=True)
    from semsim.device import describe_device

    all_rows = []
    for task in args.tasks.split(","):
        rows = TASKS[task](args)
        all_rows += rows
        report = {"device": describe_device(), "cpu_count": os.cpu_count(), "args": vars(args), "rows": rows}
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"pair_classifier_{task}{args.tag}.json").write_text(json.dumps(report, indent=2, default=str))
        print(render(rows), file=sys.stderr, flush=True)
    print(json.dumps(all_rows, indent=2, default=str) if args.json else render(all_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
