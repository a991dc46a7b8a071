"""Writers serialise on one index, readers see one version: in-process races made exact, then real processes."""

from __future__ import annotations

import multiprocessing
import os
import queue
import shutil
import time
import traceback
from pathlib import Path

import numpy as np
import pytest

import index.storage as storage
from index import IndexStore, VectorIndexError, open_for_update, open_index

DIM = 16
ENCODER = {"spec": "fake", "dim": DIM}
ROWS = 40  # rows of each rebuilt version


def base_vectors(count: int = ROWS) -> np.ndarray:
    vectors = np.random.default_rng(0).standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def version_store(version: int) -> IndexStore:
    """Version v: ids 0..ROWS-1, row i has text "v{v}-{i}" and the vector of base row (i + v) % ROWS.

    Every version has the same ids, so only the texts and the vectors tell versions apart: a store
    built from the faiss file of one version and the rows of another answers with the wrong text.
    """
    store = IndexStore.create(DIM, "flat", encoder=ENCODER)
    ids = np.arange(ROWS)
    store.add(base_vectors()[(ids + version) % ROWS], [{"text": f"v{version}-{i}"} for i in ids], ids=ids)
    store.meta["extra"] = {"version": version}
    return store


def check_one_version(store: IndexStore, probes: int = ROWS) -> int:
    """The version this store is, after checking that its vectors, rows and meta all say the same."""
    version = store.meta["extra"]["version"]
    assert store.texts()[0].startswith(f"v{version}-"), "rows of another version than meta.json"
    for j in range(0, ROWS, max(1, ROWS // probes)):
        hit = store.search(base_vectors()[j], 1)[0][0]
        assert hit["id"] == (j - version) % ROWS, f"vectors of another version than meta.json ({version})"
        assert hit["text"] == f"v{version}-{hit['id']}", f"id {hit['id']} answered with {hit['text']!r}"
    return version


# -- in-process: a swap at the worst moment ---------------------------------------------------
@pytest.mark.parametrize("old_folder_deleted", [True, False])
def test_a_rebuild_between_reading_meta_and_the_other_files_gives_one_version(tmp_path, monkeypatch,
                                                                             old_folder_deleted):
    folder = tmp_path / "idx"
    version_store(1).save(folder)
    real_parse, rebuilt = storage._parse_meta, []

    def parse_then_rebuild(raw, where):
        meta = real_parse(raw, where)
        if not rebuilt:  # the reader has meta.json of version 1; version 2 lands before it opens the rest
            rebuilt.append(True)
            if old_folder_deleted:
                version_store(2).save(folder)
            else:
                with monkeypatch.context() as patch:  # the old folder outlives the swap for a while
                    patch.setattr(shutil, "rmtree", lambda *a, **k: None)
                    version_store(2).save(folder)
        return meta

    monkeypatch.setattr(storage, "_parse_meta", parse_then_rebuild)
    store = open_index(folder)
    # Old folder gone: the reader notices the swap and reads version 2 whole. Old folder still there:
    # it reads version 1 whole, through the handle on the folder it started with, and knows it is stale.
    assert check_one_version(store) == (2 if old_folder_deleted else 1)
    assert store.is_stale() is (not old_folder_deleted)


def test_a_cached_store_knows_when_it_was_replaced(tmp_path):
    folder = tmp_path / "idx"
    version_store(1).save(folder)
    cached = open_index(folder)
    assert not cached.is_stale()
    os.utime(folder / "meta.json")  # touched, same version: not stale
    assert not cached.is_stale()
    version_store(2).save(folder)
    assert cached.is_stale()
    assert not open_index(folder).is_stale()
    shutil.rmtree(folder)
    assert cached.is_stale()
    assert not IndexStore.create(DIM, "flat").is_stale(), "a store never saved has nothing to be stale against"


def test_a_writer_without_the_lock_fails_loudly_instead_of_losing_rows(tmp_path):
    folder = tmp_path / "idx"
    version_store(1).save(folder)
    first, second = open_index(folder), open_index(folder)
    first.add(base_vectors(1), [{"text": "from the first"}])
    first.save()
    second.add(base_vectors(1), [{"text": "from the second"}])
    with pytest.raises(VectorIndexError, match="replaced or deleted by another writer.*open_for_update"):
        second.save()
    assert open_index(folder).texts()[-1] == "from the first"
    first.add(base_vectors(1), [{"text": "first again"}])
    first.save()  # a store may save again over its own last version
    assert len(open_index(folder)) == ROWS + 2


# -- real processes -----------------------------------------------------------------------------
def _report(results, fn, *args) -> None:
    try:
        results.put(("ok", fn(*args)))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _adder(folder: str, writer: int, rounds: int, batch: int) -> int:
    for r in range(rounds):
        ids = np.arange(batch) + 1_000_000 * (writer + 1) + r * batch
        vectors = np.random.default_rng(ids[0]).standard_normal((batch, DIM)).astype(np.float32)
        with open_for_update(folder, timeout=60) as store:
            store.add(vectors, [{"text": f"w{writer}-{i}"} for i in ids], ids=ids)
            store.save()
    return rounds * batch


def _rebuilder(folder: str, versions: int) -> int:
    for version in range(2, versions + 2):
        version_store(version).save(folder)  # a new store over the old folder: `index build --overwrite`
    return versions


def _reader(folder: str, stop, ready, rebuilt: bool) -> dict[str, int]:
    seen, reads = set(), 0
    while not stop.is_set() or reads == 0:
        if reads == 1:
            ready.release()  # reading: the writers may start
        store = open_index(folder)
        if rebuilt:
            seen.add(check_one_version(store, probes=8))
        else:  # rows added by writers: each id keeps its own writer's text, and finds itself
            seen.add(len(store))
            ids, vectors = store.index.vectors()
            for row in store.lookup(ids[-5:]):
                assert row["text"].endswith(f"-{row['id']}"), row
            hits = store.search(vectors[-3:], 1)
            assert [h[0]["id"] for h in hits] == ids[-3:].tolist()
        reads += 1
        time.sleep(0.01)  # leave the 2 shared cores to the writers now and then
    return {"reads": reads, "versions_seen": len(seen)}


def _run(targets: list[tuple], readers: int, reader_args: tuple, limit_s: float = 180) -> tuple[list, list]:
    context = multiprocessing.get_context("spawn")
    results, stop, ready = context.Queue(), context.Event(), context.Semaphore(0)
    writers = [context.Process(target=_report, args=(results, *target)) for target in targets]
    watchers = [context.Process(target=_report, args=(results, _reader, *reader_args[:1], stop, ready,
                                                      *reader_args[1:]))
                for _ in range(readers)]
    for process in watchers:
        process.start()
    outcomes, deadline = [], time.monotonic() + limit_s
    # The writers start once every reader has read once: on a loaded machine a spawned reader can take
    # longer to import than the writers take to finish, and then nothing overlapped.
    for _ in watchers:
        if not ready.acquire(timeout=max(0.1, deadline - time.monotonic())):
            break
    for process in writers:
        process.start()
    try:
        while len(outcomes) < len(writers):
            outcomes.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        stop.set()
        while len(outcomes) < len(writers) + len(watchers):
            outcomes.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
    except queue.Empty:
        pytest.fail(f"workers did not finish within {limit_s} s")
    finally:
        stop.set()
        for process in watchers + writers:
            process.join(5)
            if process.is_alive():
                process.kill()
    errors = [detail for status, detail in outcomes if status == "error"]
    assert not errors, "\n".join(errors)
    values = [detail for _, detail in outcomes]
    return values[:len(writers)], values[len(writers):]


@pytest.mark.slow
def test_two_writers_and_readers_in_separate_processes(tmp_path):
    folder = tmp_path / "idx"
    version_store(0).save(folder)
    rounds, batch = 6, 25
    added, reads = _run([(_adder, str(folder), 0, rounds, batch), (_adder, str(folder), 1, rounds, batch)],
                        readers=2, reader_args=(str(folder), False))
    final = open_index(folder)
    assert sorted(added) == [rounds * batch] * 2
    assert len(final) == ROWS + sum(added), "no writer's rows were lost"
    for writer in (0, 1):
        assert sum(text.startswith(f"w{writer}-") for text in final.texts()) == rounds * batch
    assert all(r["reads"] > 0 for r in reads)
    assert sorted(Path(tmp_path).iterdir()) == [folder], "no temporaries, no lock file left"


@pytest.mark.slow
def test_readers_during_rebuilds_see_one_whole_version(tmp_path):
    folder = tmp_path / "idx"
    version_store(1).save(folder)
    versions = 40
    _, reads = _run([(_rebuilder, str(folder), versions)], readers=2, reader_args=(str(folder), True))
    assert check_one_version(open_index(folder)) == versions + 1
    assert all(r["reads"] > 0 for r in reads)
    assert max(r["versions_seen"] for r in reads) > 1, "the readers never overlapped a rebuild"
    assert sorted(Path(tmp_path).iterdir()) == [folder]
