"""`evaluate retrieval` reads the layouts other tools write: id columns by other names, and BEIR folders."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from semsim.data import DatasetError, load_beir, load_retrieval
from semsim.evaluation import RetrievalEvaluator
from tests.tiny_models import BagOfWords

CORPUS = pd.DataFrame({"id": ["d1", "d2", "d3", "d4", "d5"],
                       "text": ["data scientist", "registered nurse", "head chef", "lorry driver", "data analyst"]})
QUERIES = pd.DataFrame({"query_id": ["q1", "q2", "q3"], "query": ["data science", "nurse", "truck driver"],
                        "relevant_ids": ["d1|d5", "d2", "d4"]})
METRICS = ("recall@1", "recall@5", "mrr@10", "ndcg@10")


def write_layouts(root):
    """The same set as the CSV layout, with the corpus id called doc_id, and as a BEIR folder."""
    QUERIES.to_csv(root / "queries.csv", index=False)
    CORPUS.to_csv(root / "corpus.csv", index=False)
    CORPUS.rename(columns={"id": "doc_id"}).to_csv(root / "corpus_doc_id.csv", index=False)
    CORPUS.rename(columns={"id": "passage_key", "text": "body"}).to_csv(root / "corpus_named.csv", index=False)
    beir = root / "beir"
    (beir / "qrels").mkdir(parents=True)
    with (beir / "corpus.jsonl").open("w") as handle:
        for doc_id, text in zip(CORPUS["id"], CORPUS["text"], strict=True):
            title, _, rest = text.partition(" ")
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": rest}) + "\n")
    with (beir / "queries.jsonl").open("w") as handle:
        for query_id, query in zip(QUERIES["query_id"], QUERIES["query"], strict=True):
            handle.write(json.dumps({"_id": query_id, "text": query}) + "\n")
        handle.write(json.dumps({"_id": "q9", "text": "a query without qrels"}) + "\n")
    rows = [(q, d, 1) for q, cell in zip(QUERIES["query_id"], QUERIES["relevant_ids"], strict=True)
            for d in cell.split("|")] + [("q1", "d3", 0)]  # score 0: judged, not relevant
    pd.DataFrame(rows, columns=["query-id", "corpus-id", "score"]).to_csv(beir / "qrels" / "test.tsv", sep="\t",
                                                                           index=False)
    return beir


def test_beir_and_doc_id_layouts_give_the_csv_layouts_metrics(tmp_path):
    beir = write_layouts(tmp_path)
    expected = RetrievalEvaluator.from_files(tmp_path / "queries.csv", tmp_path / "corpus.csv")(BagOfWords())
    layouts = {"doc_id": RetrievalEvaluator.from_files(tmp_path / "queries.csv", tmp_path / "corpus_doc_id.csv"),
               "named": RetrievalEvaluator.from_files(tmp_path / "queries.csv", tmp_path / "corpus_named.csv",
                                                      id_column="passage_key", text_column="body"),
               "beir": RetrievalEvaluator.from_beir(beir)}
    for name, evaluator in layouts.items():
        result = evaluator(BagOfWords())
        assert result["n_queries"] == 3 and result["n_corpus"] == 5, name
        assert {m: result[m] for m in METRICS} == {m: expected[m] for m in METRICS}, name
    queries, corpus = load_beir(beir)
    assert corpus["text"].tolist() == CORPUS["text"].tolist()  # BEIR's title and text, joined
    assert queries["relevant"].tolist() == [["d1", "d5"], ["d2"], ["d4"]]  # q9 has no qrels; q1-d3 scored 0


def test_layout_errors_say_which_column_to_name(tmp_path):
    write_layouts(tmp_path)
    CORPUS.rename(columns={"id": "passage_key"}).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(DatasetError, match=r"no id column: looked for 'id', 'doc_id', '_id', 'corpus_id'.*--id-column"):
        load_retrieval(tmp_path / "queries.csv", tmp_path / "odd.csv")
    with pytest.raises(DatasetError, match="no column 'key' .--id-column."):
        load_retrieval(tmp_path / "queries.csv", tmp_path / "odd.csv", id_column="key")
    with pytest.raises(DatasetError, match="not a BEIR folder"):
        load_beir(tmp_path)


def test_cli_reads_beir_folders_and_doc_id_corpora(capsys, tmp_path, tiny_bert_dir):
    from semsim.cli import main

    beir = write_layouts(tmp_path)
    model = f"keras-hub:{tiny_bert_dir}"
    results = []
    for extra in (["--queries", str(tmp_path / "queries.csv"), "--corpus", str(tmp_path / "corpus.csv")],
                  ["--queries", str(tmp_path / "queries.csv"), "--corpus", str(tmp_path / "corpus_doc_id.csv")],
                  ["--beir", str(beir)], ["--corpus", str(beir)]):
        assert main(["evaluate", "retrieval", "--model", model, *extra, "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        results.append({m: result[m] for m in METRICS})
    assert all(result == results[0] for result in results)
    code = main(["evaluate", "retrieval", "--model", model, "--queries", str(tmp_path / "queries.csv"),
                 "--corpus", str(tmp_path / "corpus_named.csv")])
    assert code == 2 and "--id-column" in capsys.readouterr().err
