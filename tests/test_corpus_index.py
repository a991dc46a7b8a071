"""semsim.corpus_index: building indexes from corpora in chunks, incremental updates, removal, info."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from index import VectorIndexError, open_index
from semsim.corpus_index import add_to_index, build_index, index_info, remove_from_index
from semsim.search import search_index
from tests.corpus_fixtures import TITLES

pytest_plugins = ["tests.corpus_fixtures"]
pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # tests/conftest.py


def test_build_streams_dedups_and_skips_empty_texts(encoder, corpus_csv, tmp_path):
    calls = []
    started = time.perf_counter()
    summary = build_index(encoder, corpus_csv, column="title", out_dir=tmp_path / "idx", kind="flat",
                          extra_columns=["group"], chunk_rows=4, progress=lambda d, t: calls.append((d, t)))
    wall = time.perf_counter() - started
    assert summary["count"] == 11  # 10 titles + "NA", which stays a title, not a missing value
    assert summary["duplicates_dropped"] == 2 and summary["empty_dropped"] == 2
    assert summary["kind"] == "flat" and summary["chosen_reason"]
    # The build's own duration: some time (it writes and fsyncs files), never more than the call took
    # (seconds are rounded to the millisecond).
    assert 0 < summary["seconds"] <= wall + 0.0005
    assert max(encoder.calls) <= 4, "the corpus is encoded chunk by chunk, never all at once"
    assert calls[-1][0] == calls[-1][1] == 15 and all(d <= t for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    store = open_index(tmp_path / "idx", expected_encoder=encoder)
    assert store.texts()[:2] == ["Data scientist", "Data analyst"]
    assert store.rows().column_names == ["id", "text", "group"]
    assert store.meta["extra"]["column"] == "title"


def test_build_from_a_dataframe_or_a_list(encoder, tmp_path):
    frame = pd.DataFrame({"text": TITLES, "code": range(len(TITLES))})
    summary = build_index(encoder, frame, "text", out_dir=tmp_path / "a", extra_columns=["code"])
    assert summary["count"] == len(TITLES) and summary["chosen"] == "flat"
    assert "threshold" in summary["chosen_reason"]
    assert search_index(encoder, tmp_path / "a", "Nurse", k=1)[0]["code"] == 3
    assert build_index(encoder, TITLES, "text", out_dir=tmp_path / "b", kind="hnsw")["kind"] == "hnsw"


def test_build_refuses_an_existing_folder_unless_told(encoder, tmp_path):
    build_index(encoder, TITLES[:3], "text", out_dir=tmp_path / "idx")
    with pytest.raises(VectorIndexError, match="already exists"):
        build_index(encoder, TITLES, "text", out_dir=tmp_path / "idx")
    build_index(encoder, TITLES, "text", out_dir=tmp_path / "idx", overwrite=True)
    assert index_info(tmp_path / "idx")["count"] == len(TITLES)


def test_build_errors_name_the_problem(encoder, corpus_csv, tmp_path):
    with pytest.raises(VectorIndexError, match="no column 'text'.*title, group"):
        build_index(encoder, corpus_csv, column="text", out_dir=tmp_path / "x")
    with pytest.raises(VectorIndexError, match="does not exist"):
        build_index(encoder, tmp_path / "nope.csv", "text", out_dir=tmp_path / "x")
    with pytest.raises(VectorIndexError, match="no texts to index"):
        build_index(encoder, ["", "  "], "text", out_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_add_skips_texts_already_indexed(encoder, tmp_path):
    build_index(encoder, TITLES[:5], "text", out_dir=tmp_path / "idx")
    summary = add_to_index(encoder, tmp_path / "idx", ["Nurse", " Vet ", "Vet", "", "Pilot"])
    assert summary["added"] == 2 and summary["duplicates_dropped"] == 2 and summary["empty_dropped"] == 1
    assert summary["count"] == 7
    assert search_index(encoder, tmp_path / "idx", "vet", k=1)[0]["text"] == "Vet"
    nothing = add_to_index(encoder, tmp_path / "idx", ["Vet"])
    assert nothing["added"] == 0 and nothing["count"] == 7


def test_remove_by_id_and_by_text(encoder, tmp_path):
    build_index(encoder, TITLES, "text", out_dir=tmp_path / "idx", kind="hnsw")
    by_id = remove_from_index(tmp_path / "idx", ids=[0, 1, 999])
    assert by_id["removed"] == 2 and by_id["missing_ids"] == [999] and by_id["count"] == 8
    assert by_id["rebuilt"] and "cannot delete in place" in by_id["message"]
    by_text = remove_from_index(tmp_path / "idx", texts=[" Nurse", "Astronaut"])
    assert by_text["removed"] == 1 and by_text["missing_texts"] == ["Astronaut"]
    texts = [h["text"] for h in search_index(encoder, tmp_path / "idx", "data scientist nurse", k=20)]
    assert "Data scientist" not in texts and "Nurse" not in texts and len(texts) == 7
    with pytest.raises(VectorIndexError, match="nothing to remove"):
        remove_from_index(tmp_path / "idx")


def test_index_info_reads_meta_only(encoder, tmp_path):
    build_index(encoder, TITLES, "text", out_dir=tmp_path / "idx", kind="ivf")
    info = index_info(tmp_path / "idx")
    assert info["count"] == len(TITLES) and info["dim"] == encoder.dim and info["kind"] == "ivf"
    assert info["encoder"]["spec"] == "fake-trigram" and info["encoder"]["fingerprint"] == encoder.fingerprint
    assert info["columns"] == ["id", "text"] and info["files"]["index.faiss"]["bytes"] > 0


def test_build_never_replaces_a_folder_that_is_not_an_index(encoder, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    with pytest.raises(VectorIndexError, match="not an index folder"):
        build_index(encoder, TITLES, "text", out_dir=tmp_path / "docs", overwrite=True)
    assert encoder.calls == [], "refused before spending time on encoding"
    with pytest.raises(VectorIndexError, match="extra columns cannot be named"):
        build_index(encoder, pd.DataFrame({"text": TITLES, "score": 1}), "text", out_dir=tmp_path / "x",
                    extra_columns=["score"])
