"""The index, search and evaluate-retrieval commands, with a fake encoder instead of a real model."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import semsim.cli.evaluate
import semsim.cli.index
import semsim.cli.search
from semsim.cli import build_parser, main
from tests.test_index_fakes import TrigramEncoder

TITLES = ["Data scientist", "Data analyst", "Software engineer", "Nurse", "Head chef", "Bus driver"]


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # tests/conftest.py


@pytest.fixture(autouse=True)
def fake_models(monkeypatch):
    """Every model spec loads a trigram encoder named after the spec (so specs differ in fingerprint)."""
    loaded: dict[str, TrigramEncoder] = {}

    def load(spec, precision="float32"):
        return loaded.setdefault(spec, TrigramEncoder(spec=spec, salt=spec))

    for module in (semsim.cli.index, semsim.cli.search, semsim.cli.evaluate):
        monkeypatch.setattr(module, "load_model", load)
    return loaded


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "titles.csv"
    pd.DataFrame({"title": TITLES + ["Nurse", ""], "code": range(8)}).to_csv(path, index=False)
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def build(capsys, corpus, out, *extra):
    return run(capsys, "index", "build", "--model", "minilm", "--corpus", str(corpus), "--column", "title",
               "--out", str(out), *extra)


def test_build_info_search_as_json(capsys, corpus, tmp_path):
    code, out, _ = build(capsys, corpus, tmp_path / "idx", "--extra-columns", "code", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["count"] == 6 and summary["duplicates_dropped"] == 1 and summary["empty_dropped"] == 1
    assert summary["kind"] == "auto" and summary["chosen"] == "flat"

    code, out, _ = run(capsys, "index", "info", "--index", str(tmp_path / "idx"), "--json")
    info = json.loads(out)
    assert code == 0 and info["count"] == 6 and info["encoder"]["spec"] == "minilm"

    code, out, _ = run(capsys, "search", "--index", str(tmp_path / "idx"), "--query", "data scientist",
                       "-k", "2", "--json")
    result = json.loads(out)
    assert code == 0 and result["model"] == "minilm"  # the model recorded in meta.json
    assert [h["rank"] for h in result["hits"]] == [1, 2]
    assert result["hits"][0]["text"] == "Data scientist" and result["hits"][0]["code"] == "0"


def test_human_output(capsys, corpus, tmp_path):
    code, out, _ = build(capsys, corpus, tmp_path / "idx", "--kind", "hnsw")
    assert code == 0 and "indexed 6 texts" in out and "dropped 1 duplicate" in out
    code, out, _ = run(capsys, "search", "--index", str(tmp_path / "idx"), "--query", "nurse", "-k", "3")
    header = out.splitlines()[0].split()
    assert code == 0 and header == ["rank", "score", "text"] and "Nurse" in out.splitlines()[2]
    code, out, _ = run(capsys, "index", "info", "--index", str(tmp_path / "idx"))
    assert "vectors  6 x 32" in out and "hnsw" in out and "rebuilds the graph" in out


def test_existing_folder_needs_overwrite(capsys, corpus, tmp_path):
    assert build(capsys, corpus, tmp_path / "idx")[0] == 0
    code, out, err = build(capsys, corpus, tmp_path / "idx")
    assert code == 2 and out == "" and "exists; pass --overwrite" in err and err.count("\n") == 1
    assert build(capsys, corpus, tmp_path / "idx", "--overwrite")[0] == 0


def test_add_and_remove(capsys, corpus, tmp_path):
    build(capsys, corpus, tmp_path / "idx", "--kind", "hnsw")
    more = tmp_path / "more.csv"
    pd.DataFrame({"text": ["Vet", "Nurse", "Pilot"]}).to_csv(more, index=False)
    code, out, _ = run(capsys, "index", "add", "--index", str(tmp_path / "idx"), "--corpus", str(more), "--json")
    assert code == 0 and json.loads(out)["added"] == 2 and json.loads(out)["count"] == 8

    code, out, _ = run(capsys, "index", "remove", "--index", str(tmp_path / "idx"), "--ids", "0,1,77")
    assert code == 0 and "removed 2 rows" in out and "cannot delete in place" in out and "77" in out
    code, out, _ = run(capsys, "index", "remove", "--index", str(tmp_path / "idx"), "--texts", "Vet", "Nobody",
                       "--json")
    result = json.loads(out)
    assert result["removed"] == 1 and result["missing_texts"] == ["Nobody"] and result["rebuilt"]


def test_a_mismatched_model_is_refused(capsys, corpus, tmp_path):
    build(capsys, corpus, tmp_path / "idx")
    code, out, err = run(capsys, "search", "--index", str(tmp_path / "idx"), "--query", "nurse",
                         "--model", "use-multilingual")
    assert code == 2 and out == ""
    assert "built with 'minilm'" in err and "'use-multilingual'" in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["index", "remove", "--index", "x", "--ids", "1,b"], "comma-separated whole numbers"),
    (["index", "build", "--corpus", "c.csv", "--out", "o", "--kind", "annoy"], "invalid choice"),
    (["search", "--index", "x", "--query", "q", "-k", "0"], "at least 1"),
    (["index", "build", "--corpus", "c.csv", "--out", "o", "--param", "nokey"], "KEY=VALUE"),
])
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and err.count("\n") == 1


def test_user_errors_exit_2_with_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "search", "--index", str(tmp_path / "none"), "--query", "nurse")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    code, _, err = run(capsys, "index", "build", "--corpus", str(tmp_path / "none.csv"), "--out",
                       str(tmp_path / "o"))
    assert code == 2 and "neither a CSV file nor a bundled corpus" in err
    code, _, err = run(capsys, "evaluate", "retrieval", "--queries", "q.csv")
    assert code == 2 and "both --queries and --corpus" in err


def test_index_parameters_reach_the_index(capsys, corpus, tmp_path):
    code, out, _ = build(capsys, corpus, tmp_path / "idx", "--kind", "hnsw", "--param", "ef_search=77",
                         "--param", "M=8", "--json")
    assert code == 0 and json.loads(out)["params"]["ef_search"] == 77 and json.loads(out)["params"]["M"] == 8


def test_bundled_job_titles_build_with_one_command(capsys, tmp_path):
    code, out, _ = run(capsys, "index", "build", "--corpus", "job-titles", "--out", str(tmp_path / "jobs"),
                       "--json")
    if code == 2:
        pytest.skip("data/job_titles.csv is not built")
    summary = json.loads(out)
    titles = pd.read_csv(semsim.cli.index.resolve_corpus("job-titles", None)[0], keep_default_na=False)
    assert summary["count"] == titles["title"].str.strip().replace("", None).dropna().nunique()
    code, out, _ = run(capsys, "search", "--index", str(tmp_path / "jobs"), "--query", "Chief executive",
                       "-k", "1", "--columns", "unit_group_name", "--json")
    hit = json.loads(out)["hits"][0]
    assert hit["text"] == "Chief executive" and hit["unit_group_name"]


def test_evaluate_retrieval(capsys, tmp_path):
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["data scientist", "nurse", "bus driver"]}).to_csv(
        tmp_path / "c.csv", index=False)
    pd.DataFrame({"query_id": ["q1", "q2"], "query": ["data scientist", "registered nurse"],
                  "relevant_ids": ["a", "b"]}).to_csv(tmp_path / "q.csv", index=False)
    code, out, _ = run(capsys, "evaluate", "retrieval", "--queries", str(tmp_path / "q.csv"), "--corpus",
                       str(tmp_path / "c.csv"), "--json")
    result = json.loads(out)
    assert code == 0 and result["primary_metric"] == "ndcg@10" and result["n_queries"] == 2
    assert result["recall@10"] == 1.0
    code, out, _ = run(capsys, "evaluate", "retrieval", "--queries", str(tmp_path / "q.csv"), "--corpus",
                       str(tmp_path / "c.csv"))
    assert code == 0 and "ndcg@10" in out and "(primary)" in out


def test_index_build_offers_every_kind_of_the_index_package():
    import index

    parser = build_parser()
    for kind in ["auto", *index.KINDS]:
        args = parser.parse_args(["index", "build", "--corpus", "c.csv", "--out", "idx", "--kind", kind])
        assert args.kind == kind
