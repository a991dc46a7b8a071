"""Bundled datasets (data/) and the loaders in semsim/data.py."""

from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from semsim import data
from semsim.data import BUNDLED_DATASETS, DatasetError

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
GRADES = {0.0, 0.25, 0.5, 0.75, 1.0}


def _build_module():
    spec = importlib.util.spec_from_file_location("build_datasets", REPO / "scripts" / "build_datasets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def titles() -> pd.DataFrame:
    return pd.read_csv(DATA / "job_titles.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def pairs() -> dict[str, pd.DataFrame]:
    return {s: data.load_bundled("job-title-pairs", s) for s in ("train", "validation", "test")}


# ------------------------------------------------------------------------------------ bundled files


def test_data_dir_is_the_repo_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEMSIM_DATA_DIR", raising=False)
    assert data.data_dir() == DATA


def test_every_bundled_dataset_loads_with_its_kind() -> None:
    expected = {
        "job-title-pairs",
        "rotten-tomatoes",
        "sts-b",
        "job-titles",
        "job-title-groups",
        "esco-occupations",
        "esco-retrieval",
        "job-title-relations",
        "sts-b-bands",
    }
    assert set(BUNDLED_DATASETS) == expected
    for name, dataset in BUNDLED_DATASETS.items():
        for path in dataset.paths().values():
            assert path.is_file(), path
            assert path.stat().st_size < 2 * 1024 * 1024, f"{path.name} should stay under 2 MB"
        if dataset.kind == "retrieval":
            queries, corpus = data.load_bundled(name)
            assert list(queries.columns[:3]) == ["query_id", "query", "relevant_ids"]
            assert list(corpus.columns) == ["id", "text"]
            continue
        for split in dataset.splits:
            df = data.load_bundled(name, split)
            if dataset.kind in ("pairs", "sts"):
                assert list(df.columns) == ["text_a", "text_b", "score"]
                assert df["score"].dtype == np.float32
            elif dataset.kind == "labelled":
                assert list(df.columns) == ["text", "label"]
            elif dataset.kind == "positives":
                assert list(df.columns) == ["text_a", "text_b", "negative", "group_id"]
            elif dataset.kind == "labelled-pairs":
                assert list(df.columns) == ["text_a", "text_b", "label"] and df["label"].nunique() == 3
            else:
                assert df.columns[0] == "text" and df.attrs["dropped_empty"] == 0


def test_total_size_is_modest() -> None:
    total = sum(p.stat().st_size for p in DATA.glob("*.csv"))
    assert total < 8 * 1024 * 1024


def test_job_titles_columns_and_hierarchy(titles: pd.DataFrame) -> None:
    assert list(titles.columns) == [
        "title",
        "unit_group",
        "unit_group_name",
        "minor_group",
        "minor_group_name",
        "sub_major_group",
        "sub_major_group_name",
        "major_group",
        "major_group_name",
    ]
    assert 5_000 <= len(titles) <= 30_000
    assert titles["title"].str.lower().is_unique
    assert titles["unit_group"].nunique() == 369  # every SOC 2010 unit group is represented
    assert (titles["unit_group"].str.len() == 4).all()
    assert (titles["unit_group"].str[:3] == titles["minor_group"]).all()
    assert (titles["unit_group"].str[:2] == titles["sub_major_group"]).all()
    assert (titles["unit_group"].str[:1] == titles["major_group"]).all()
    assert (titles.drop(columns="title") != "").all().all()
    assert not titles["title"].str.fullmatch(r"[A-Z0-9()]+").any(), "abbreviations should be dropped"


def test_pair_sizes_scores_and_grade_balance(pairs: dict[str, pd.DataFrame]) -> None:
    sizes = {"train": (18_000, 22_000), "validation": (1_800, 2_200), "test": (1_800, 2_200)}
    for split, df in pairs.items():
        low, high = sizes[split]
        assert low <= len(df) <= high, split
        assert set(df["score"].unique()) == GRADES, split
        shares = df["score"].value_counts(normalize=True)
        assert 0.35 <= shares[1.0] <= 0.45, split
        for grade in (0.0, 0.25, 0.5, 0.75):
            assert 0.10 <= shares[grade] <= 0.20, (split, grade)
        keys = {(min(a, b), max(a, b)) for a, b in zip(df["text_a"], df["text_b"], strict=True)}
        assert len(keys) == len(df), f"{split}: a pair repeats"
        assert (df["text_a"] != df["text_b"]).all()


def test_pair_scores_follow_the_soc_hierarchy(titles: pd.DataFrame, pairs: dict[str, pd.DataFrame]) -> None:
    unit = dict(zip(titles["title"], titles["unit_group"], strict=True))

    def grade(a: str, b: str) -> float:
        ua, ub = unit[a], unit[b]
        for depth, score in ((4, 1.0), (3, 0.75), (2, 0.5), (1, 0.25)):
            if ua[:depth] == ub[:depth]:
                return score
        return 0.0

    for split, df in pairs.items():
        assert df["text_a"].isin(unit).all() and df["text_b"].isin(unit).all(), split
        expected = [grade(a, b) for a, b in zip(df["text_a"], df["text_b"], strict=True)]
        assert np.array_equal(df["score"].to_numpy(), np.array(expected, dtype=np.float32)), split


def test_pair_splits_share_no_unit_group_or_title(
    titles: pd.DataFrame, pairs: dict[str, pd.DataFrame]
) -> None:
    unit = dict(zip(titles["title"], titles["unit_group"], strict=True))
    texts = {s: set(df["text_a"]) | set(df["text_b"]) for s, df in pairs.items()}
    units = {s: {unit[t] for t in ts} for s, ts in texts.items()}
    for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
        assert not texts[a] & texts[b], (a, b)
        assert not units[a] & units[b], (a, b)
    n_units = titles["unit_group"].nunique()
    assert 0.07 * n_units <= len(units["test"]) <= 0.13 * n_units
    assert 0.07 * n_units <= len(units["validation"]) <= 0.13 * n_units


def test_job_title_groups_split_like_the_pairs_with_sibling_negatives(
    titles: pd.DataFrame, pairs: dict[str, pd.DataFrame]
) -> None:
    """Positives and their hard negatives come from the split's own unit groups: no test unit group, title or
    unit group name is ever trained on, and a negative is never of its anchor's unit group."""
    unit = dict(zip(titles["title"], titles["unit_group"], strict=True))
    names = dict(zip(titles["unit_group"], titles["unit_group_name"], strict=True))
    pair_units = {s: {unit[t] for t in set(df["text_a"]) | set(df["text_b"])} for s, df in pairs.items()}
    groups = {s: data.load_bundled("job-title-groups", s) for s in ("train", "validation", "test")}
    for split, df in groups.items():
        assert set(df["group_id"]) == pair_units[split], split
        assert (df["text_a"].map(unit) == df["group_id"]).all()
        assert df["text_b"].map(lambda t: unit.get(t) or next(u for u, n in names.items() if n == t)).eq(
            df["group_id"]).all()
        negative_units = df["negative"].map(unit)
        assert (negative_units != df["group_id"]).all() and negative_units.isin(pair_units[split]).all()
        # Mostly a sibling: the same minor group (3-digit prefix) where the split has one.
        same_minor = (negative_units.str[:3] == df["group_id"].str[:3]).mean()
        assert same_minor > (0.8 if split == "train" else 0.2), split
    train_texts = set(groups["train"]["text_a"]) | set(groups["train"]["negative"])
    assert not train_texts & (set(groups["test"]["text_a"]) | set(groups["validation"]["text_a"]))


def test_rotten_tomatoes_splits() -> None:
    splits = {s: data.load_bundled("rotten-tomatoes", s) for s in ("train", "validation", "test")}
    total = sum(len(df) for df in splits.values())
    assert 12_000 <= total <= 14_000
    assert abs(len(splits["train"]) / total - 0.8) < 0.01
    shares = []
    for df in splits.values():
        assert set(df["label"]) == {"positive", "negative"}
        assert (df["text"].str.len() > 0).all()
        shares.append((df["label"] == "positive").mean())
    assert max(shares) - min(shares) < 0.01, "split is stratified by label"
    seen: set[str] = set()
    for df in splits.values():
        assert df["text"].is_unique and not seen & set(df["text"])
        seen |= set(df["text"])


def test_sts_b_has_the_official_split_sizes() -> None:
    sizes = {s: len(data.load_sts(s)) for s in ("train", "dev", "test")}
    assert sizes == {"train": 5749, "dev": 1500, "test": 1379}
    test = data.load_sts("test")
    assert test["score"].between(0, 5).all() and test["score"].std() > 1
    # The package's own loader returns dev as test; ours must not.
    assert not data.load_sts("dev")["text_a"].head(20).equals(test["text_a"].head(20))
    with pytest.raises(DatasetError, match="no split 'validation'"):
        data.load_sts("validation")


def test_esco_occupations_and_retrieval_set() -> None:
    occ = pd.read_csv(DATA / "esco_occupations.csv", dtype=str, keep_default_na=False)
    assert list(occ.columns) == ["id", "preferred_label", "alt_labels", "isco_group", "description"]
    assert 2_500 <= len(occ) <= 3_100 and occ["id"].is_unique
    assert occ["id"].str.startswith("http://data.europa.eu/esco/occupation/").all()
    assert (occ["preferred_label"] != "").all() and occ["description"].str.len().max() <= 161
    assert (occ["alt_labels"] != "").mean() > 0.95

    queries, corpus = data.load_bundled("esco-retrieval")
    assert len(queries) == 1000 and queries["query_id"].is_unique
    assert set(corpus["id"]) == set(occ["id"])
    preferred = set(corpus["text"].str.lower())
    assert not queries["query"].str.lower().isin(preferred).any()
    labels = dict(zip(occ["id"], occ["alt_labels"].str.lower().str.split("|"), strict=True))
    for query, relevant in zip(queries["query"], queries["relevant"], strict=True):
        assert relevant and all(query.lower() in labels[r] for r in relevant)


def test_readme_documents_every_file_with_its_row_count() -> None:
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for path in sorted(DATA.glob("*.csv")):
        rows = len(pd.read_csv(path, dtype=str, keep_default_na=False))
        assert re.search(rf"`{re.escape(path.name)}` \| {rows:,} \|", readme), path.name
    for needed in ("Open Government Licence v3.0", "CC BY 4.0", "Pang", "make data", "relevant_ids"):
        assert needed in readme


# ------------------------------------------------------------------------------------------ loaders


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


BAD_INPUTS = [
    # (file name, content, loader, message pattern, row, column)
    (
        "cols.csv",
        "text_a,score\na,0.5\n",
        data.load_pairs,
        r"missing column\(s\) 'text_b'; the file has: 'text_a', 'score'",
        None,
        None,
    ),
    (
        "empty_text.csv",
        "text_a,text_b,score\na,b,0.5\nc,  ,0.5\n",
        data.load_pairs,
        "empty text",
        3,
        "text_b",
    ),
    (
        "nan_score.csv",
        "text_a,text_b,score\na,b,0.5\nc,d,0.1\ne,f,high\n",
        data.load_pairs,
        "score 'high' is not a number",
        4,
        "score",
    ),
    (
        "range.csv",
        "text_a,text_b,score\na,b,1.5\n",
        data.load_pairs,
        r"score 1.5 is outside the range 0..1",
        2,
        "score",
    ),
    ("missing_score.csv", "text_a,text_b,score\na,b,\n", data.load_pairs, "missing score", 2, "score"),
    (
        "latin1.csv",
        "text_a,text_b,score\ncaf\xe9,b,0.5\n".encode("latin-1"),
        data.load_pairs,
        "not UTF-8.*re-save as UTF-8",
        None,
        None,
    ),
    ("empty.csv", b"", data.load_pairs, "file is empty", None, None),
    ("blank.csv", "\n \n", data.load_labelled, "file is empty", None, None),
    ("header_only.csv", "text,label\n", data.load_labelled, "no data rows", None, None),
    (
        "one_class.csv",
        "text,label\ngood,positive\ngreat,positive\n",
        data.load_labelled,
        r"only one class \('positive'\)",
        None,
        "label",
    ),
    ("no_label.csv", "text,label\ngood,positive\nbad,\n", data.load_labelled, "missing label", 3, "label"),
    (
        "empty_label_text.csv",
        "text,label\ngood,positive\n ,negative\n",
        data.load_labelled,
        "empty text",
        3,
        "text",
    ),
    (
        "all_empty.csv",
        "title,x\n ,1\n,2\n",
        lambda p: data.load_texts(p, "title"),
        "every row is empty",
        None,
        "title",
    ),
    (
        "broken.csv",
        'text_a,text_b,score\na,b,0.5\n"unclosed,b,0.5\n',
        data.load_pairs,
        "double quote opened here is never closed",
        3,
        None,
    ),
    (
        "ragged.csv",
        "text_a,text_b,score\na,b,0.5\nc,d,0.5\ne,f,0.5,extra,more\n",
        data.load_pairs,
        "5 fields where the header has 3",
        4,
        None,
    ),
    ("pos.csv", "text_a,other\na,b\n", data.load_positive_pairs, r"missing column\(s\) 'text_b'", None, None),
]


@pytest.mark.parametrize(
    ("name", "content", "loader", "pattern", "row", "column"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_loaders_reject_bad_files_naming_file_row_and_column(
    tmp_path: Path, name: str, content: str | bytes, loader, pattern: str, row: int | None, column: str | None
) -> None:
    path = _write(tmp_path, name, content)
    with pytest.raises(DatasetError, match=pattern) as info:
        loader(path)
    message = str(info.value)
    assert message.startswith(name), message
    assert (info.value.row, info.value.column) == (row, column)
    if row is not None:
        assert f"row {row} (header is row 1)" in message
    if column is not None:
        assert f"column '{column}'" in message


def test_error_lists_every_bad_row(tmp_path: Path) -> None:
    rows = "".join(f"t{i},,0.5\n" for i in range(8))
    path = _write(tmp_path, "many.csv", "text_a,text_b,score\n" + rows)
    with pytest.raises(DatasetError, match=r"row 2 .*empty text \(8 rows in all: 2, 3, 4, 5, 6, \.\.\.\)"):
        data.load_pairs(path)


def test_rows_are_counted_as_in_a_spreadsheet_despite_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "gaps.csv", 'text_a,text_b,score\n\na,b,0.5\n , \n"two\nlines",c,0.5\nd,,0.5\n')
    with pytest.raises(DatasetError, match=r"row 6 \(header is row 1\), column 'text_b': empty text") as info:
        data.load_pairs(path)
    assert info.value.row == 6  # header, blank, a, blank-ish, "two lines" (one record), d
    path.write_text("text_a,text_b,score\n\na,b,0.5\n\nc,d,1\n", encoding="utf-8")
    df = data.load_pairs(path)
    assert df.index.tolist() == [0, 1] and df["text_a"].tolist() == ["a", "c"]


def test_non_utf8_message_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "cp1252.csv", b"text,label\nok,positive\nna\xefve,negative\n")
    with pytest.raises(
        DatasetError, match=r"cp1252.csv: not UTF-8 \(byte 0xef on line 3\); re-save as UTF-8"
    ):
        data.load_labelled(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nope.csv: file not found"):
        data.load_pairs(tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match="is a folder"):
        data.read_csv(tmp_path)


def test_pairs_scores_and_unbounded_range(tmp_path: Path) -> None:
    path = _write(tmp_path, "p.csv", "\ufefftext_a,text_b,score,extra\n a ,b,-3.5,x\nc,d,12,y\n")
    df = data.load_pairs(path, score_range=None)
    assert df["text_a"].tolist() == ["a", "c"] and df["score"].tolist() == [-3.5, 12.0]
    with pytest.raises(DatasetError, match=r"score -3.5 is outside the range 0..5"):
        data.load_pairs(path, score_range=(0, 5))
    inf = _write(tmp_path, "inf.csv", "text_a,text_b,score\na,b,inf\n")
    with pytest.raises(DatasetError, match="not a finite number"):
        data.load_pairs(inf, score_range=None)


def test_pairs_with_other_column_names_and_semicolons(tmp_path: Path) -> None:
    path = _write(tmp_path, "sts.csv", "sentence1;sentence2;similarity\nA man.;A person.;3,5\nx;y;4\n")
    with pytest.raises(DatasetError, match="score '3,5' is not a number") as info:
        data.load_pairs(path, (0, 5), columns=("sentence1", "sentence2", "similarity"))
    assert info.value.row == 2 and info.value.column == "similarity"
    path.write_text("sentence1;sentence2;similarity\nA man.;A person.;3.5\n", encoding="utf-8")
    df = data.load_pairs(path, (0, 5), columns=("sentence1", "sentence2", "similarity"))
    assert df.iloc[0].tolist() == ["A man.", "A person.", 3.5]


def test_uploaded_file_like_objects_keep_their_name() -> None:
    upload = io.BytesIO(b"text,label\ngood,positive\nbad,negative\n")
    upload.name = "my upload.csv"
    upload.read()  # the app may have read it already
    df = data.load_labelled(upload)
    assert df["label"].tolist() == ["positive", "negative"] and df.attrs["source_name"] == "my upload.csv"
    bad = io.BytesIO(b"text,label\n\xff\xfe,positive\n")
    bad.name = "C:/Users/x/bad.csv"
    with pytest.raises(DatasetError, match=r"^bad.csv: not UTF-8"):
        data.load_labelled(bad)
    with pytest.raises(DatasetError, match="^uploaded file: file is empty"):
        data.load_labelled(io.BytesIO(b""))


def test_labels_are_strings_and_texts_keep_other_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "num.csv", "text,label\na,1\nb,0\nc,NA\n")
    assert data.load_labelled(path)["label"].tolist() == ["1", "0", "NA"]

    texts = _write(tmp_path, "t.csv", "id,title,text\n1, Nurse ,x\n2,  ,y\n3,Welder,z\n4,,w\n")
    df = data.load_texts(texts, "title")
    assert list(df.columns) == ["text", "id", "original_text"]
    assert df["text"].tolist() == ["Nurse", "Welder"] and df["id"].tolist() == ["1", "3"]
    assert df.attrs["dropped_empty"] == 2


def test_retrieval_validation(tmp_path: Path) -> None:
    corpus = _write(tmp_path, "corpus.csv", "id,text\nd1,nurse\nd2,welder\nd3,chef\n")
    queries = _write(tmp_path, "queries.csv", "query_id,query,relevant_ids\nq1,RN,d1\nq2,cook,d3 | d2\n")
    q, c = data.load_retrieval(queries, corpus)
    assert q["relevant"].tolist() == [["d1"], ["d3", "d2"]] and len(c) == 3

    unknown = _write(tmp_path, "bad_queries.csv", "query_id,query,relevant_ids\nq1,RN,d1\nq2,cook,d3|d9\n")
    with pytest.raises(
        DatasetError, match=r"^bad_queries.csv, row 3 \(header is row 1\), column 'relevant_ids': .*'d9'"
    ):
        data.load_retrieval(unknown, corpus)
    dup = _write(tmp_path, "dup_corpus.csv", "id,text\nd1,nurse\nd1,welder\n")
    with pytest.raises(DatasetError, match=r"^dup_corpus.csv, row 3 .*column 'id': duplicate id"):
        data.load_retrieval(queries, dup)
    none = _write(tmp_path, "none.csv", "query_id,query,relevant_ids\nq1,RN,\n")
    with pytest.raises(DatasetError, match=r"row 2 .*no relevant ids"):
        data.load_retrieval(none, corpus)


def test_bundled_registry_paths_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert data.bundled_path("sts-b", "dev") == DATA / "stsb_dev.csv"
    assert data.bundled_path("job-title-pairs") == DATA / "job_title_pairs_train.csv"
    assert data.bundled_path("job-titles") == DATA / "job_titles.csv"
    with pytest.raises(DatasetError, match="no bundled dataset of that name"):
        data.bundled_path("imdb")
    with pytest.raises(DatasetError, match="no split 'dev'; it has: train, validation, test"):
        data.bundled_path("rotten-tomatoes", "dev")
    assert BUNDLED_DATASETS["job-title-pairs"].score_range == (0.0, 1.0)
    assert BUNDLED_DATASETS["sts-b"].score_range == (0.0, 5.0)

    monkeypatch.setenv("SEMSIM_DATA_DIR", str(tmp_path))
    _write(tmp_path, "stsb_test.csv", "sentence1,sentence2,score\na,b,4.5\n")
    assert data.load_sts("test")["score"].tolist() == [4.5]


def test_content_hash(tmp_path: Path) -> None:
    path = _write(tmp_path, "h.csv", "text,label\na,b\n")
    digest = data.content_hash(path)
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert data.content_hash(str(path)) == digest == data.content_hash(io.BytesIO(path.read_bytes()))
    assert data.content_hash(pd.DataFrame({"text": ["a"], "label": ["b"]})) == digest
    path.write_text("text,label\na,c\n", encoding="utf-8")
    assert data.content_hash(path) != digest


# ------------------------------------------------------------------------------------------- build


def test_build_helpers() -> None:
    build = _build_module()
    assert build._natural_title("Accountant, fund") == "Fund accountant"
    assert build._natural_title("Adviser, personal, deal, new") == "New deal personal adviser"
    assert build._natural_title("Administrator, surgery, GP") == "GP surgery administrator"
    assert [build._grade("2421", b) for b in ("2421", "2423", "2413", "2111", "9111")] == [
        1.0,
        0.75,
        0.5,
        0.25,
        0.0,
    ]
    assert build._is_code("SRA1") and build._is_code("Band 1B") and not build._is_code("3D artist")
    assert build._split_esco_text("tea taster tea sampler Tea tasters taste teas. They grade them.") == (
        "tea taster",
        ["tea", "sampler"],
        "Tea tasters taste teas. They grade them.",
    )
    split = build.split_units([str(u) for u in range(1000, 1100)])
    assert [len(split[s]) for s in ("train", "validation", "test")] == [80, 10, 10]


@pytest.mark.slow
def test_build_is_deterministic_and_matches_committed_data(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("xlrd", reason="xlrd (requirements-dev.txt) reads the ONS .xls")
    build = _build_module()
    build.build(tmp_path)
    capsys.readouterr()
    built = sorted(p.name for p in tmp_path.iterdir())
    committed = sorted(p.name for p in DATA.iterdir() if p.suffix in (".csv", ".md"))
    assert built == committed
    for name in built:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), (
            f"{name} differs: run `make data`"
        )
