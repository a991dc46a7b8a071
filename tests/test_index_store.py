"""Index folders: rows and meta with the vectors, atomic saves, load-time checks, the encoder guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

import index.storage as storage
from index import (
    FORMAT_VERSION,
    IndexStore,
    VectorIndexError,
    create_index,
    load_vector_index,
    open_index,
    save_vector_index,
)
from index.datasets import ClusteredEmbeddings

DIM = 16
ENCODER = {"spec": "minilm", "name": "all-MiniLM-L6-v2", "fingerprint": "aaaa1111bbbb2222", "dim": DIM}


pytestmark = pytest.mark.usefixtures("one_faiss_thread")  # tests/conftest.py


def vectors(count: int, seed: int = 0) -> np.ndarray:
    return ClusteredEmbeddings(DIM, n_clusters=5, seed=seed).sample(count, seed=1)


def make_store(count: int = 40, kind: str = "flat", **params) -> IndexStore:
    store = IndexStore.create(DIM, kind, encoder=ENCODER, **params)
    store.add(vectors(count), [{"text": f"title {i}", "group": f"g{i % 3}"} for i in range(count)])
    return store


def test_index_package_never_imports_semsim_or_tensorflow():
    code = ("import sys, index, index.datasets; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('semsim', 'tensorflow', 'keras', 'tf_keras')))")
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_store_search_returns_rows_with_rank_score_and_extra_columns():
    store = make_store()
    hits = store.search(vectors(40)[3], k=5)[0]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4, 5]
    assert hits[0]["id"] == 3 and hits[0]["text"] == "title 3" and hits[0]["group"] == "g0"
    assert hits[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert list(hits[0]) == ["rank", "id", "score", "text", "group"]


def test_save_writes_the_three_files_and_meta(tmp_path):
    store = make_store()
    store.save(tmp_path / "idx", extra={"source": "titles.csv"})
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["index.faiss", "meta.json", "rows.parquet"]
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["encoder"] == ENCODER and meta["dim"] == DIM and meta["count"] == 40
    assert meta["index"]["kind"] == "flat" and "params" in meta["index"]
    assert meta["versions"]["faiss"] == faiss.__version__ and "numpy" in meta["versions"]
    assert meta["created"] and meta["extra"]["source"] == "titles.csv"
    assert meta["files"]["index.faiss"]["bytes"] == (tmp_path / "idx" / "index.faiss").stat().st_size
    assert not list(tmp_path.glob(".idx.*")), "no temporary or backup folders left behind"


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "auto"])
def test_store_round_trip(tmp_path, kind):
    store = make_store(kind=kind, **({"threshold": 10} if kind == "auto" else {}))
    store.save(tmp_path / "idx")
    loaded = open_index(tmp_path / "idx", expected_encoder=ENCODER)
    assert len(loaded) == 40 and loaded.kind == kind and loaded.encoder == ENCODER
    query = vectors(40)[7]
    assert loaded.search(query, 3) == store.search(query, 3)


def test_ids_are_never_reused_after_removal(tmp_path):
    store = make_store(count=10)
    store.remove([9, 8])
    store.save(tmp_path / "idx")
    loaded = open_index(tmp_path / "idx")
    new_ids = loaded.add(vectors(2, seed=5), [{"text": "new a"}, {"text": "new b"}])
    assert new_ids.tolist() == [10, 11]
    assert loaded.lookup([11, 0]) == [{"id": 11, "text": "new b", "group": None},
                                      {"id": 0, "text": "title 0", "group": "g0"}]


def test_ids_for_texts_strips_and_reports_missing():
    store = make_store(count=5)
    ids, missing = store.ids_for_texts(["  title 2 ", "title 4", "nope"])
    assert sorted(ids.tolist()) == [2, 4] and missing == ["nope"]


def test_a_failure_mid_save_leaves_the_previous_index_intact(tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    make_store(count=10).save(folder)
    bigger = make_store(count=30)

    def broken_write(table, path):
        Path(path).write_bytes(b"half a parquet file")
        raise OSError("disk full")

    monkeypatch.setattr(storage, "write_rows", broken_write)
    with pytest.raises(OSError, match="disk full"):
        bigger.save(folder)
    assert len(open_index(folder)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"], "the temporary folder is cleaned up"


def test_a_crash_between_the_two_renames_is_recovered_on_load(tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    make_store(count=12).save(folder)
    real_rename, dead = os.rename, []

    def die_on_the_second_rename(src, dst, *args, **kwargs):
        if dead or Path(src).name.startswith(".idx.tmp-"):  # a dead process renames nothing more
            dead.append(src)
            raise KeyboardInterrupt("killed")  # not an OSError: nothing in the save may catch it
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", die_on_the_second_rename)
    with pytest.raises(KeyboardInterrupt):
        make_store(count=30).save(folder)
    monkeypatch.undo()
    assert not folder.exists() and (tmp_path / ".idx.publishing").is_file()
    assert len(open_index(folder)) == 30, "the new version was complete: the publish is finished"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_a_deleted_index_is_never_brought_back_from_a_stale_backup(tmp_path):
    folder = tmp_path / "idx"
    make_store(count=12).save(folder)
    os.rename(folder, tmp_path / ".idx.old-0123456789ab")  # a backup left by a save that died after its swap
    with pytest.raises(VectorIndexError, match="does not exist"):
        open_index(folder)
    assert not folder.exists() and not list(tmp_path.iterdir()), "the stale backup is deleted, not restored"


def test_saving_refuses_to_replace_a_folder_that_is_not_an_index(tmp_path):
    precious = tmp_path / "docs"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(VectorIndexError, match="not an index folder"):
        make_store().save(precious)
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("missing", ["meta.json", "index.faiss", "rows.parquet"])
def test_missing_files_are_named(tmp_path, missing):
    make_store().save(tmp_path / "idx")
    (tmp_path / "idx" / missing).unlink()
    with pytest.raises(VectorIndexError, match=missing.replace(".", r"\.")):
        open_index(tmp_path / "idx")


def test_missing_folder(tmp_path):
    with pytest.raises(VectorIndexError, match="does not exist"):
        open_index(tmp_path / "nowhere")


def test_truncated_faiss_file_is_reported_not_crashed(tmp_path):
    make_store(count=40, kind="hnsw").save(tmp_path / "idx")
    path = tmp_path / "idx" / "index.faiss"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(VectorIndexError, match="truncated"):
        open_index(tmp_path / "idx")
    # Even with meta.json agreeing on the size, faiss's read error becomes a clear message.
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    meta["files"]["index.faiss"] = {"bytes": 200}
    (tmp_path / "idx" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(VectorIndexError, match="corrupt or truncated"):
        open_index(tmp_path / "idx")


def test_changed_bytes_fail_the_checksum(tmp_path):
    make_store().save(tmp_path / "idx")
    path = tmp_path / "idx" / "index.faiss"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(VectorIndexError, match="checksum"):
        open_index(tmp_path / "idx")


def test_rows_that_do_not_match_the_vectors_are_refused(tmp_path, monkeypatch):
    store = make_store(count=5)
    store.save(tmp_path / "a")
    make_store(count=6).save(tmp_path / "b")
    os.replace(tmp_path / "b" / "rows.parquet", tmp_path / "a" / "rows.parquet")
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    meta["files"].pop("rows.parquet")
    (tmp_path / "a" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(VectorIndexError, match="does not match"):
        open_index(tmp_path / "a")


def test_an_index_from_a_newer_version_asks_for_an_upgrade(tmp_path):
    make_store().save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "idx" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(VectorIndexError, match="newer semsim.*upgrade"):
        open_index(tmp_path / "idx")


def test_invalid_meta_json(tmp_path):
    make_store().save(tmp_path / "idx")
    (tmp_path / "idx" / "meta.json").write_text("{not json")
    with pytest.raises(VectorIndexError, match="not valid JSON"):
        open_index(tmp_path / "idx")


def test_a_different_encoder_is_refused_with_both_models_named(tmp_path):
    make_store().save(tmp_path / "idx")
    other = {"spec": "use-multilingual", "fingerprint": "ffff0000", "dim": DIM}
    with pytest.raises(VectorIndexError, match="built with 'minilm'.*but 'use-multilingual'.*was asked for"):
        open_index(tmp_path / "idx", expected_encoder=other)
    wider = {"spec": "big", "fingerprint": "1234", "dim": DIM * 2}
    with pytest.raises(VectorIndexError, match=f"{DIM}-d.*{DIM * 2}-d.*vector sizes differ"):
        open_index(tmp_path / "idx", expected_encoder=wider)
    retuned = {**ENCODER, "fingerprint": "changed-weights"}  # same spec, other weights
    with pytest.raises(VectorIndexError, match="changed-weig"):
        open_index(tmp_path / "idx", expected_encoder=retuned)

    class SameModel:  # an encoder object works as well as a dict; a different spec string is fine
        spec, fingerprint, dim = "/models/minilm-copy", ENCODER["fingerprint"], DIM

    open_index(tmp_path / "idx", expected_encoder=SameModel())
    store = open_index(tmp_path / "idx")
    with pytest.raises(VectorIndexError, match="cannot be used with this model"):
        store.check_encoder(other)


def test_a_bare_vector_index_folder_is_not_a_store(tmp_path):
    index = create_index("flat", DIM)
    index.add(vectors(3), [1, 2, 3])
    save_vector_index(index, tmp_path / "bare")
    assert len(load_vector_index(tmp_path / "bare")) == 3
    with pytest.raises(VectorIndexError, match="vectors only"):
        open_index(tmp_path / "bare")


def test_auto_reports_which_kind_it_picked_and_why(tmp_path):
    store = IndexStore.create(DIM, "auto", threshold=50)
    store.add(vectors(30), [{"text": f"t{i}"} for i in range(30)])
    small = store.index.describe()
    assert small["chosen"] == "flat" and "at or under the 50 threshold" in small["chosen_reason"]
    assert store.index.exact and not store.index.rebuild_on_remove
    store.add(vectors(30, seed=3), [{"text": f"u{i}"} for i in range(30)])
    large = store.index.describe()
    assert large["chosen"] == "hnsw" and "grew past 50" in large["chosen_reason"]
    assert not store.index.exact and store.index.rebuild_on_remove
    assert store.remove([0]).message.startswith("auto (hnsw) cannot delete in place")
    store.save(tmp_path / "idx")
    assert open_index(tmp_path / "idx").index.describe()["chosen"] == "hnsw"


def test_rows_need_text_and_cannot_shadow_result_fields():
    store = IndexStore.create(DIM, "flat")
    with pytest.raises(VectorIndexError, match="'text'"):
        store.add(vectors(1), [{"title": "x"}])
    with pytest.raises(VectorIndexError, match="score"):
        store.add(vectors(1), [{"text": "x", "score": 3}])
    assert len(store) == 0


def test_rows_with_clashing_column_types_are_refused_before_anything_changes():
    store = make_store(count=3)  # group holds strings
    with pytest.raises(VectorIndexError, match="do not match"):
        store.add(vectors(1, seed=4), [{"text": "x", "group": 5}])
    assert len(store) == 3 and store.rows().num_rows == 3
    store.add(vectors(1, seed=4), [{"text": "y", "new_column": 1.5}])  # new columns are fine
    assert store.lookup([3])[0] == {"id": 3, "text": "y", "group": None, "new_column": 1.5}
