"""Atomic folder publish: a crash between any two file operations, real kill -9s, the writer lock."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index import (
    IndexStore,
    VectorIndexError,
    WriterLockTimeout,
    open_index,
    publish_folder,
    recover_folder,
    writer_lock,
)
from index.atomic import intent_file, lock_file

DIM = 8
ROOT = Path(__file__).resolve().parent.parent


class Killed(BaseException):
    """The process died here: raised past every `except Exception` and `suppress(OSError)`."""


# Every file operation a publish (and its clean-up) makes through Python.
FILE_OPERATIONS = [(os, "rename"), (os, "replace"), (os, "unlink"), (os, "rmdir"), (os, "mkdir"),
                   (os, "fsync"), (shutil, "rmtree")]


class FaultInjector:
    """Make the Nth file operation fail: as a kill (it and every later one raise Killed) or as one
    transient OSError (later operations work again)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: int, kill: bool):
        self.calls, self.fail_at, self.kill, self.failed = 0, fail_at, kill, False
        self.monkeypatch = monkeypatch
        for module, name in FILE_OPERATIONS:
            monkeypatch.setattr(module, name, self._wrap(getattr(module, name), name))

    def _wrap(self, real, name):
        def operation(*args, **kwargs):
            self.calls += 1
            if self.calls == self.fail_at or (self.kill and self.failed):
                self.failed = True
                raise Killed(name) if self.kill else OSError(5, f"injected failure of {name}")
            return real(*args, **kwargs)
        return operation

    def stop(self) -> None:
        self.monkeypatch.undo()


def make_store(version: str, count: int) -> IndexStore:
    vectors = np.random.default_rng(count).standard_normal((count, DIM)).astype(np.float32)
    store = IndexStore.create(DIM, "flat", encoder={"spec": "fake", "dim": DIM})
    store.add(vectors, [{"text": f"{version} {i}"} for i in range(count)])
    return store


def version_of(folder: Path) -> str:
    """'old' or 'new', checking that every row of the index folder is of that one version."""
    store = open_index(folder)
    versions = {text.split()[0] for text in store.texts()}
    assert len(versions) == 1, f"rows of two versions in one folder: {versions}"
    version = versions.pop()
    assert len(store) == {"old": 10, "new": 30}[version]
    return version


def leftovers(parent: Path, name: str) -> list[str]:
    """Temporaries, backups and journals beside `name` (the lock file of a killed writer may stay)."""
    return sorted(p.name for p in parent.iterdir() if p.name not in (name, f".{name}.lock"))


@pytest.mark.parametrize("kill", [True, False], ids=["killed", "transient-error"])
@pytest.mark.parametrize("first_save", [False, True], ids=["replacing", "first-save"])
def test_a_failure_at_every_file_operation_of_a_save_leaves_one_complete_version(tmp_path, monkeypatch, kill,
                                                                                 first_save):
    new = make_store("new", 30)
    outcomes = set()
    for fail_at in range(1, 200):
        parent = tmp_path / str(fail_at)
        folder = parent / "idx"
        if not first_save:
            make_store("old", 10).save(folder)
        else:
            parent.mkdir()
        injector = FaultInjector(monkeypatch, fail_at, kill)
        try:
            new.save(folder)
            raised = None
        except (Killed, OSError) as exc:
            raised = exc
        finally:
            injector.stop()
        new._source = None  # the next attempt is a fresh writer, not this store saving again
        if not injector.failed:
            assert raised is None and version_of(folder) == "new" and leftovers(parent, "idx") == []
            break
        if not kill:  # a live process undoes a failed swap itself: the save raised, or it had succeeded
            expected = "old" if raised is not None else "new"
            if first_save and expected == "old":
                assert not folder.exists()
            else:
                assert version_of(folder) == expected
        recover_folder(folder)
        assert leftovers(parent, "idx") == [], f"after a failure at operation {fail_at}"
        if folder.exists():
            outcomes.add(version_of(folder))
        else:
            assert first_save, "an index that existed before the save must survive it"
            outcomes.add("none")
        # The next run works and leaves nothing behind.
        make_store("new", 30).save(folder)
        assert version_of(folder) == "new" and leftovers(parent, "idx") == []
        shutil.rmtree(parent)
    else:
        pytest.fail("the save never got through")
    assert fail_at > 10, "a save makes more file operations than that: the injector missed them"
    # Some kill points keep the old version, some finish the new one.
    assert outcomes == ({"none", "new"} if first_save else {"old", "new"})


def test_a_killed_publish_of_a_nested_model_folder_is_finished_or_undone(tmp_path, monkeypatch):
    """publish_folder on a folder with subfolders (a model: weights/, assets/), work named `<out>.partial`."""

    def model(folder: Path, version: str) -> None:
        (folder / "weights").mkdir(parents=True)
        (folder / "weights" / "w.bin").write_bytes(version.encode() * 100)
        (folder / "config.json").write_text(json.dumps({"version": version}))

    outcomes = set()
    for fail_at in range(1, 100):
        parent = tmp_path / str(fail_at)
        out = parent / "model"
        model(out, "old")
        work = parent / "model.partial"
        model(work, "new")
        injector = FaultInjector(monkeypatch, fail_at, kill=True)
        try:
            publish_folder(work, out)
        except Killed:
            pass
        finally:
            injector.stop()
        recover_folder(out)
        version = json.loads((out / "config.json").read_text())["version"]
        assert (out / "weights" / "w.bin").read_bytes() == version.encode() * 100
        outcomes.add(version)
        # A work folder that did not become `out` is the caller's (a resumable run): left alone.
        assert leftovers(parent, "model") == ([] if version == "new" else ["model.partial"])
        if not injector.failed:
            break
    assert outcomes == {"old", "new"}


KILL_CHILD = """
import os, shutil, sys, time
import numpy as np
from index import IndexStore

point, folder = sys.argv[1], sys.argv[2]
seen = {"rename": 0}

def pause_before(name, real, nth=1):
    def operation(*args, **kwargs):
        seen[name] = seen.get(name, 0) + 1
        if name == point.split(":")[0] and seen[name] == int(point.split(":")[1]):
            print("ready", flush=True)
            time.sleep(60)  # killed here
        return real(*args, **kwargs)
    return operation

os.rename = pause_before("rename", os.rename)
os.replace = pause_before("replace", os.replace)
shutil.rmtree = pause_before("rmtree", shutil.rmtree)
store = IndexStore.create(8, "flat", encoder={"spec": "fake", "dim": 8})
store.add(np.random.default_rng(30).standard_normal((30, 8)).astype(np.float32),
          [{"text": f"new {i}"} for i in range(30)])
store.save(folder)
print("finished", flush=True)
"""


def test_kill_9_mid_save_leaves_the_old_or_the_new_version(tmp_path):
    # Killed before the intent is written: the old version stays. After it (the new folder is complete
    # by then): before the first rename, between the renames, while the old folder is deleted: the
    # next reader finishes the publish.
    points = {"replace:1": "old", "rename:1": "new", "rename:2": "new", "rmtree:1": "new"}
    children = {}
    for point in points:
        folder = tmp_path / point.replace(":", "-") / "idx"
        make_store("old", 10).save(folder)
        children[point] = (folder, subprocess.Popen([sys.executable, "-c", KILL_CHILD, point, str(folder)],
                                                    cwd=ROOT, stdout=subprocess.PIPE, text=True))
    for point, (_, child) in children.items():
        assert child.stdout.readline().strip() == "ready", point
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
    for point, (folder, _) in children.items():
        left = leftovers(folder.parent, "idx")
        assert (".idx.publishing" in left) == point.startswith("rename"), f"{point}: {left}"
        moved_aside = point in ("rename:2", "rmtree:1")
        assert any(name.startswith(".idx.old-") for name in left) == moved_aside, f"{point}: {left}"
        assert folder.exists() == (point != "rename:2"), "between the renames there is no `idx`"
        # The new version is complete once its intent is written, so a kill after that finishes it.
        assert version_of(folder) == points[point], point
        assert leftovers(folder.parent, "idx") == [], point


def test_a_deleted_index_stays_deleted(tmp_path):
    folder = tmp_path / "idx"
    make_store("old", 10).save(folder)
    shutil.copytree(folder, tmp_path / ".idx.old-0123456789ab")  # a backup a killed delete step left
    shutil.copytree(folder, tmp_path / ".idx.tmp-0123456789ab")  # a build a killed save left
    shutil.copytree(folder, tmp_path / ".idx.old-deadbeef")  # names left by saves before index/atomic.py
    shutil.copytree(folder, tmp_path / ".idx.tmp-k2j_x9ab")
    (tmp_path / ".idx.tmp-0123456789ab.tmp-0123456789ab").mkdir()  # another folder's temporary: kept
    shutil.rmtree(folder)  # the user deletes the index
    assert recover_folder(folder) is False
    assert not folder.exists()
    assert [p.name for p in tmp_path.iterdir()] == [".idx.tmp-0123456789ab.tmp-0123456789ab"]
    with pytest.raises(VectorIndexError, match="does not exist"):
        open_index(folder)


def test_recovery_keeps_the_old_version_when_the_new_folder_is_incomplete(tmp_path):
    folder = tmp_path / "idx"
    make_store("old", 10).save(folder)
    work = tmp_path / ".idx.tmp-aaaaaaaaaaaa"
    make_store("new", 30).save(tmp_path / "elsewhere")
    os.rename(tmp_path / "elsewhere", work)
    manifest = {"files": {n: (work / n).stat().st_size for n in os.listdir(work)}, "dirs": []}
    (work / "rows.parquet").unlink()  # changed after the intent named it complete
    os.rename(folder, tmp_path / ".idx.old-bbbbbbbbbbbb")
    intent_file(folder).write_text(json.dumps({"new": work.name, "old": ".idx.old-bbbbbbbbbbbb",
                                               "manifest": manifest}))
    assert recover_folder(folder) is True
    assert version_of(folder) == "old" and leftovers(tmp_path, "idx") == []


def test_an_intent_naming_a_path_outside_the_parent_is_refused(tmp_path):
    folder = tmp_path / "idx"
    make_store("old", 10).save(folder)
    intent_file(folder).write_text(json.dumps({"new": "../victim", "old": None, "manifest": {}}))
    with pytest.raises(VectorIndexError, match="not a folder beside"):
        recover_folder(folder)
    intent_file(folder).write_text(json.dumps({"new": None, "old": None, "manifest": {}}))
    with pytest.raises(VectorIndexError, match="not a folder beside"):
        recover_folder(folder)
    intent_file(folder).write_text("{half")
    with pytest.raises(VectorIndexError, match="cannot be read"):
        open_index(folder)


def test_a_reader_during_a_live_swap_waits_for_it_instead_of_undoing_it(tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    make_store("old", 10).save(folder)
    swapping, real_rename = threading.Event(), os.rename

    def slow_second_rename(src, dst, *args, **kwargs):
        if Path(src).name.startswith(".idx.tmp-") and threading.current_thread().name == "writer":
            swapping.set()  # `idx` is gone now: only the intent and the lock say a publish is live
            time.sleep(0.3)
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", slow_second_rename)
    writer = threading.Thread(target=make_store("new", 30).save, args=(folder,), name="writer")
    writer.start()
    assert swapping.wait(10)
    assert not folder.exists()
    assert version_of(folder) == "new"
    writer.join()
    assert leftovers(tmp_path, "idx") == []


def test_the_writer_lock_makes_a_second_writer_wait_then_time_out_loudly(tmp_path):
    folder = tmp_path / "idx"
    make_store("old", 10).save(folder)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_lock(folder):
            with writer_lock(folder):  # re-entrant in the holding thread
                held.set()
                release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    started = time.monotonic()
    with pytest.raises(WriterLockTimeout, match=r"being written by another thread.*gave up after waiting 0.3 s"):
        make_store("new", 30).save(folder, timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert version_of(folder) == "old"
    release.set()
    holder.join()
    assert not lock_file(folder).exists(), "the last holder removes the lock file"
    make_store("new", 30).save(folder, timeout=5)
    assert version_of(folder) == "new"


def test_a_lock_held_by_another_process_names_it(tmp_path):
    folder = tmp_path / "idx"
    code = ("import sys, time; from index import writer_lock\n"
            "with writer_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(WriterLockTimeout, match=f"process {child.pid}"), writer_lock(folder, timeout=0.2):
            pass
    finally:
        child.kill()
        child.wait()
    with writer_lock(folder, timeout=5):  # the kernel dropped the dead holder's lock
        pass
