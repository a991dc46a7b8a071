"""`semsim compare`: base vs tuned on the same data, every metric's delta with a paired bootstrap 95% interval,
and optionally a self-contained HTML report (--report)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from semsim.cli.arguments import CliError, add_precision_argument, positive_int
from semsim.cli.output import add_json_flag, emit, format_table

TASKS = ("sts", "pairs", "retrieval", "classify")
KINDS = {"sts": "pairs", "pairs": "pairs", "retrieval": "retrieval", "classify": "classification"}
DEFAULT_DATA = {"pairs": "job-title-pairs", "classify": "rotten-tomatoes"}
MAX_RESAMPLES = 100_000


def _check(args: argparse.Namespace) -> None:
    if args.task == "classify" and args.precision != "float32":
        raise CliError("--precision is for sentence encoders; --task classify compares classifiers at float32")
    if args.task == "retrieval":
        if args.data:
            raise CliError("--data is for sts, pairs and classify; retrieval takes --queries and --corpus")
        if bool(args.queries) != bool(args.corpus):
            raise CliError("give both --queries and --corpus, or neither (for the bundled ESCO set)")
    elif args.queries or args.corpus:
        raise CliError("--queries and --corpus are for --task retrieval")
    if args.split != "test" and args.task != "sts":
        raise CliError("--split is for --task sts (the bundled STS-B splits)")
    if not 100 <= args.resamples <= MAX_RESAMPLES:
        raise CliError(f"--resamples must be between 100 and {MAX_RESAMPLES:,}, got {args.resamples}")
    if args.task == "classify":
        for flag, spec in (("--base", args.base), ("--tuned", args.tuned)):
            if not Path(spec).is_dir():
                raise CliError(f"{flag} {spec} is not a folder; --task classify compares two classifier folders "
                               "(from `semsim train sentiment`)")
    if args.report:
        report = Path(args.report).expanduser()
        if report.is_dir() or not report.parent.is_dir():
            raise CliError(f"--report {args.report}: give a file name in an existing folder, such as report.html")


def _evaluator(args: argparse.Namespace) -> tuple[Any, str]:
    """The task's evaluator on the chosen data, and the data's name."""
    from semsim import data
    from semsim.evaluation import ClassificationEvaluator, PairSimilarityEvaluator, RetrievalEvaluator
    from semsim.training.inputs import bundled_split

    if args.task == "retrieval":
        queries = args.queries or data.bundled_path("esco-retrieval", "queries")
        corpus = args.corpus or data.bundled_path("esco-retrieval", "corpus")
        query_frame, corpus_frame = data.load_retrieval(queries, corpus)
        name = "esco-retrieval" if not args.queries else Path(queries).name
        return RetrievalEvaluator(data.sample_rows(query_frame, args.rows, args.seed), corpus_frame, name=name,
                                  batch_size=args.batch_size), name
    if args.task == "sts" and not args.data:
        return PairSimilarityEvaluator.from_frame(data.sample_rows(data.load_sts(args.split), args.rows, args.seed),
                                                  name=f"sts-b {args.split}", batch_size=args.batch_size), \
            f"sts-b {args.split}"
    source = args.data or DEFAULT_DATA[args.task]
    bundled = source in data.BUNDLED_DATASETS
    if args.task == "classify":
        path = data.bundled_path(source, bundled_split(source, "test")) if bundled else source
        frame, name = data.load_labelled(path), (f"{source} test" if bundled else Path(source).name)
        return ClassificationEvaluator.from_frame(data.sample_rows(frame, args.rows, args.seed), name), name
    if bundled:
        frame = data.load_bundled(source, bundled_split(source, "test"))
        if not hasattr(frame, "columns") or "score" not in frame.columns:
            raise CliError(f"{source} is not a scored pairs data set; --task {args.task} needs text pairs with scores")
        name = f"{source} test"
    elif args.task == "sts":
        frame, name = data.load_pairs(source, score_range=(0.0, 5.0), columns=("sentence1", "sentence2", "score")), \
            Path(source).name
    else:
        frame, name = data.load_pairs(source, score_range=None), Path(source).name
    return PairSimilarityEvaluator.from_frame(data.sample_rows(frame, args.rows, args.seed), name=name,
                                              batch_size=args.batch_size), name


def _report_texts(evaluator: Any, kind: str) -> list[str]:
    """Distinct texts of the compared data, for the report's heatmaps and map."""
    if kind == "pairs":
        texts = evaluator.texts_a + evaluator.texts_b
    elif kind == "retrieval":
        texts = evaluator.queries + evaluator.corpus_texts
    else:
        texts = evaluator.texts
    return list(dict.fromkeys(t.strip() for t in texts if t.strip()))


def _write_report(args: argparse.Namespace, result: dict[str, Any], evaluator: Any, models: tuple[Any, Any]) -> str:
    import numpy as np

    from semsim import data, embedding_compare, report

    base_encoder, tuned_encoder = (getattr(m, "encoder", m) for m in models)  # a classifier's own encoder
    texts = _report_texts(evaluator, KINDS[args.task])
    rng = np.random.default_rng(args.seed)
    picked = [texts[i] for i in sorted(rng.permutation(len(texts))[:report.MAP_TEXTS])]
    few = picked[: report.HEATMAP_TEXTS]
    reference_source, column = args.reference or "job-titles", args.reference_column
    bundled = data.BUNDLED_DATASETS.get(reference_source)
    if bundled is not None:  # a bundled corpus by name, read from its own text column
        reference_source, column = str(data.bundled_path(reference_source)), column or bundled.text_column
    column = column or "text"
    reference = data.load_texts(reference_source, column)["text"].drop_duplicates()
    reference = reference.sample(n=min(500, len(reference)), random_state=args.seed).tolist()
    sections = []
    vectors = {}
    for role, encoder in (("base", base_encoder), ("tuned", tuned_encoder)):
        vectors[role] = (encoder.encode(picked, batch_size=args.batch_size),
                         embedding_compare.reference_similarities(encoder.encode(reference, batch_size=args.batch_size),
                                                                  seed=args.seed))
    positions = [picked.index(t) for t in few]
    sections.append(report.heatmap_section(few, vectors["base"][0][positions], vectors["tuned"][0][positions],
                                           vectors["base"][1], vectors["tuned"][1],
                                           Path(reference_source).name))
    if len(picked) >= 3:
        sections.append(report.map_section(picked, vectors["base"][0], vectors["tuned"][0]))
    table = report.MetricTable(result["dataset"], result["unit"], result["n"], result["metrics"], args.resamples,
                               args.seed)
    document = report.render(f"semsim comparison · {Path(args.base).name or args.base} vs "
                             f"{Path(args.tuned).name or args.tuned}",
                             [report.model_summary("base", args.base), report.model_summary("tuned", args.tuned)],
                             [table], sections,
                             notes=[f"Task {args.task} on {result['dataset']}. Heatmaps and map: a seeded sample of "
                                    f"{len(picked)} texts of that data; relative similarity against random pairs of "
                                    f"{len(reference)} texts of {Path(reference_source).name}."])
    return str(report.write(args.report, document))


def _render(result: dict[str, Any]) -> str:
    rows = []
    for row in result["metrics"]:
        low, high = row["ci95"]
        rows.append({"metric": row["metric"], "base": f"{row['base']:.4f}", "tuned": f"{row['tuned']:.4f}",
                     "delta": f"{row['delta']:+.4f}", "95% interval": f"[{low:+.4f}, {high:+.4f}]",
                     "significant": "yes" if row["significant"] else "no"})
    head = (f"{result['dataset']}: {result['n']:,} {result['unit']}, base {result['base']} vs tuned "
            f"{result['tuned']}; paired bootstrap, {result['resamples']:,} resamples, seed {result['seed']}")
    text = head + "\n" + format_table(rows, ["metric", "base", "tuned", "delta", "95% interval", "significant"])
    text += "\n(significant: the interval excludes 0; otherwise the delta may be noise)"
    if result.get("report"):
        text += f"\nreport: {result['report']}"
    return text


def cmd_compare(args: argparse.Namespace) -> int:
    from semsim.evaluation import paired

    _check(args)
    started = time.perf_counter()
    evaluator, name = _evaluator(args)
    kind = KINDS[args.task]
    if kind == "classification":
        from semsim.classifier import load_classifier

        models = (load_classifier(args.base), load_classifier(args.tuned))
    else:
        from semsim.encoders.serving import load_for_inference

        models = (load_for_inference(args.base, args.precision),
                  load_for_inference(args.tuned, args.precision, cache=args.tuned != args.base))
    loaded = time.perf_counter()
    items = []
    for model in models:
        if kind == "pairs":
            items.append(paired.pair_items(evaluator, model))
        elif kind == "retrieval":
            items.append(paired.retrieval_items(evaluator, model))
        else:
            items.append(paired.classification_items(evaluator, model))
    scored = time.perf_counter()
    rows = paired.metric_rows(kind, items[0], items[1], resamples=args.resamples, seed=args.seed)
    done = time.perf_counter()
    result: dict[str, Any] = {
        "task": args.task, "dataset": name, "n": paired.item_count(kind, items[0]), "unit": paired.UNITS[kind],
        "base": args.base, "tuned": args.tuned, "resamples": args.resamples, "seed": args.seed, "level": 0.95,
        "metrics": rows,
        "seconds": {"load": round(loaded - started, 2), "score": round(scored - loaded, 2),
                    "bootstrap": round(done - scored, 2)}}
    if args.report:
        result["report"] = _write_report(args, result, evaluator, models)
        result["seconds"]["report"] = round(time.perf_counter() - done, 2)
    result["seconds"]["total"] = round(time.perf_counter() - started, 2)
    emit(result, args.json, _render)
    return 0


def register(commands: Any, evaluate: Any) -> None:
    p = commands.add_parser("compare", help="base vs tuned on the same data: deltas with paired bootstrap 95%% "
                                            "intervals, optionally an HTML report",
                            description=__doc__)  # (help is %-formatted, the description is not)
    p.add_argument("--base", required=True, help="the base model spec (for classify: a classifier folder)")
    p.add_argument("--tuned", required=True, help="the tuned model spec (for classify: a classifier folder)")
    p.add_argument("--task", required=True, choices=TASKS,
                   help="sts: STS-B (or --data with sentence1, sentence2, score 0-5); pairs: scored pairs "
                        "(--data, default job-title-pairs test); retrieval: --queries/--corpus (default ESCO); "
                        "classify: labelled texts (--data, default rotten-tomatoes test)")
    p.add_argument("--data", help="a CSV or a bundled data set name (its test split)")
    p.add_argument("--split", choices=["train", "dev", "test"], default="test", help="sts: the bundled STS-B split")
    p.add_argument("--queries", help="retrieval: CSV query_id, query, relevant_ids")
    p.add_argument("--corpus", help="retrieval: CSV id, text")
    p.add_argument("--rows", type=positive_int, help="a seeded sample of this many pairs, queries or texts")
    p.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the resamples and samples (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    add_precision_argument(p)  # both models at it (#17); classifiers only at float32
    p.add_argument("--report", metavar="FILE.html", help="also write a self-contained HTML report")
    p.add_argument("--reference", help="the report's reference corpus for relative similarity: a CSV or a bundled "
                                       "corpus name (default: job-titles)")
    p.add_argument("--reference-column", help="its text column (default: title for the job titles, else text)")
    add_json_flag(p)
    p.set_defaults(func=cmd_compare)
