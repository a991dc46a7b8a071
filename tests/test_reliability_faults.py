"""Faults: training checkpoints killed mid-write, `index add` killed mid-save, two `index add` commands at once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from index import IndexStore, open_index, recover_folder
from index.atomic import writer_lock
from semsim.training import TrainingError
from semsim.training.checkpoint import LEGACY_METADATA, LEGACY_WEIGHTS, TrainingCheckpoint

ROOT = Path(__file__).resolve().parent.parent
CHILD_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


class Killed(BaseException):
    """The process died here: raised past every `except Exception` and `suppress(OSError)`."""


# -- training checkpoints ------------------------------------------------------------------------
def small_model(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def weights_of(model) -> list[np.ndarray]:
    return [np.array(w) for w in model.get_weights()]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_a_checkpoint_save_killed_at_any_step_resumes_from_the_previous_or_the_new(tmp_path, monkeypatch):
    """Each file operation of a save (the weights write itself included) is in turn the last one the
    process makes: restore then loads the previous epoch's or the new epoch's weights, whole, and the
    next save leaves exactly two generations and no temporaries."""
    first, second = small_model(1), small_model(2)
    operations = [(os, "replace"), (os, "unlink"), (os, "fsync"), (os, "open")]
    outcomes = set()
    for fail_at in range(1, 80):
        folder = tmp_path / str(fail_at)
        checkpoint = TrainingCheckpoint(folder)
        checkpoint.save(first, 1)
        checkpoint.save(first, 2)  # two generations on disk, as in a run past its second epoch
        calls = {"n": 0, "dead": False}

        def dying(real, name, calls=calls, fail_at=fail_at):
            def operation(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] >= fail_at:
                    calls["dead"] = True
                    raise Killed(name)
                return real(*args, **kwargs)
            return operation

        real_save = second.save_weights

        def torn_save_weights(path, *args, calls=calls, fail_at=fail_at, real_save=real_save,
                              **kwargs):  # killed half-way through writing the weights
            calls["n"] += 1
            if calls["n"] >= fail_at:
                real_save(path, *args, **kwargs)
                with open(path, "r+b") as handle:
                    handle.truncate(os.path.getsize(path) // 2)
                calls["dead"] = True
                raise Killed("save_weights")
            return real_save(path, *args, **kwargs)

        for module, name in operations:
            monkeypatch.setattr(module, name, dying(getattr(module, name), name))
        monkeypatch.setattr(second, "save_weights", torn_save_weights)
        try:
            checkpoint.save(second, 3)
        except Killed:
            pass
        finally:
            monkeypatch.undo()
        restored = small_model(3)
        epoch, note = TrainingCheckpoint(folder).restore(restored)
        assert note is None, f"a kill must never leave a committed generation unreadable: {note}"
        expected = {2: weights_of(first), 3: weights_of(second)}[epoch]
        assert same(weights_of(restored), expected), f"epoch {epoch} restored other weights (kill at {fail_at})"
        outcomes.add(epoch)
        TrainingCheckpoint(folder).save(restored, epoch + 1)  # the resumed run's next epoch
        names = sorted(os.listdir(folder))
        assert len(names) == 4 and not [n for n in names if n.startswith(".")], f"kill at {fail_at}: {names}"
        if not calls["dead"]:
            break
    else:
        pytest.fail("the save never got through")
    assert outcomes == {2, 3}, "the kill points span the commit"


def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous_one_and_says_so(tmp_path):
    first, second = small_model(1), small_model(2)
    checkpoint = TrainingCheckpoint(tmp_path / "checkpoint")
    checkpoint.save(first, 1)
    newest = checkpoint.save(second, 2)
    data = bytearray(newest.weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped: only the checksum notices
    newest.weights.write_bytes(bytes(data))
    restored = small_model(3)
    epoch, note = checkpoint.restore(restored)
    assert epoch == 1 and same(weights_of(restored), weights_of(first))
    assert "after epoch 2" in note and "checksum" in note and "resumed from the checkpoint after epoch 1" in note
    # Both unreadable: a clear message naming the way out, never an h5py traceback.
    for generation in checkpoint.generations():
        generation.weights.write_bytes(b"\0" * 100)
    with pytest.raises(TrainingError, match=r"cannot resume from .*epoch 2.*epoch 1.*--overwrite") as caught:
        checkpoint.restore(small_model(4))
    assert "\n" not in str(caught.value)


def test_a_torn_checkpoint_from_keras_backup_and_restore_gives_a_message(tmp_path):
    """Runs interrupted before this code wrote Keras' own layout: read when whole, refused clearly when torn."""
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    model = small_model(1)
    model.save_weights(str(folder / LEGACY_WEIGHTS))
    (folder / LEGACY_METADATA).write_text(json.dumps({"epoch": 2, "batch": 0}))
    restored = small_model(2)
    assert TrainingCheckpoint(folder).restore(restored) == (2, None)
    assert same(weights_of(restored), weights_of(model))
    with open(folder / LEGACY_WEIGHTS, "r+b") as handle:
        handle.truncate(os.path.getsize(folder / LEGACY_WEIGHTS) // 3)
    with pytest.raises(TrainingError, match=r"latest\.weights\.h5.*cannot be read.*--overwrite"):
        TrainingCheckpoint(folder).restore(small_model(3))


TRAIN_CHILD = """
import sys, time
import keras.src.saving.saving_lib as saving_lib

real_close = saving_lib.H5IOStore.close

def close(self):
    if ".tmp-000002" in str(getattr(self, "path_or_io", "")):
        print("ready", flush=True)  # the second epoch's weights are half written: killed here
        time.sleep(120)
    return real_close(self)

saving_lib.H5IOStore.close = close
from tests.test_training import make_pairs
from tests.training_runs import fit_pairs

fit_pairs(sys.argv[1], make_pairs(64), sys.argv[2], epochs=3)
print("finished", flush=True)
"""


def test_kill_9_while_a_training_checkpoint_is_written_then_resume(tiny_hub_dir, tmp_path):
    from semsim.encoders import load_encoder
    from tests.test_training import make_pairs
    from tests.training_runs import fit_pairs

    base, out = f"tfhub:{tiny_hub_dir}", tmp_path / "models" / "tuned"
    child = subprocess.Popen([sys.executable, "-c", TRAIN_CHILD, base, str(out)], cwd=ROOT, env=CHILD_ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    checkpoint = out.with_name("tuned.partial") / "checkpoint"
    assert sorted(os.listdir(checkpoint)) == [".tmp-000002.weights.h5", "ckpt-000001.json",
                                              "ckpt-000001.weights.h5"], "killed mid-write of epoch 2"
    card = fit_pairs(base, make_pairs(64), out, epochs=3, resume=True)  # --resume alone is enough
    assert card["training"]["resumed_from_epoch"] == 1 and card["training"]["epochs_run"] == 2
    assert "resume_note" not in card["training"], "the torn temporary was never a checkpoint"
    assert load_encoder(str(out), cache=False).encode(["nurse"]).shape == (1, 8)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tuned"], "no .partial, no temporaries left"
    assert "checkpoint" not in os.listdir(out) and "resume.json" not in os.listdir(out)


def test_resume_alone_finishes_a_run_started_to_replace_a_model(tiny_hub_dir, tmp_path, monkeypatch):
    """A run started with --overwrite over a model, then interrupted, continues with --resume alone; a
    model that appeared at --out after an interrupted run began still needs --overwrite."""
    from semsim.training import callbacks
    from tests.test_training import make_pairs
    from tests.training_runs import fit_pairs

    base, out = f"tfhub:{tiny_hub_dir}", tmp_path / "model"
    fit_pairs(base, make_pairs(64), out, epochs=1)
    original = callbacks.JsonlProgress.on_epoch_end

    def crash_in_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit_pairs(base, make_pairs(64), out, epochs=2, overwrite=True)
    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", original)
    card = fit_pairs(base, make_pairs(64), out, epochs=2, resume=True)
    assert card["training"]["resumed_from_epoch"] == 1 and json.loads((out / "model_card.json").read_text())

    other = tmp_path / "other"
    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        fit_pairs(base, make_pairs(64), other, epochs=2)
    monkeypatch.setattr(callbacks.JsonlProgress, "on_epoch_end", original)
    shutil.copytree(out, other)  # a model appears at --out meanwhile
    with pytest.raises(TrainingError, match="already exists; pass --overwrite"):
        fit_pairs(base, make_pairs(64), other, epochs=2, resume=True)


# -- index add killed mid-save ------------------------------------------------------------------
ADD_CHILD = """
import os, shutil, sys, time
import numpy as np
from index import open_for_update

point, folder = sys.argv[1], sys.argv[2]
seen = {}

def pause_before(name, real):
    def operation(*args, **kwargs):
        seen[name] = seen.get(name, 0) + 1
        if name == point.split(":")[0] and seen[name] == int(point.split(":")[1]):
            print("ready", flush=True)
            time.sleep(60)  # killed here
        return real(*args, **kwargs)
    return operation

with open_for_update(folder) as store:  # what `semsim index add` does
    store.add(np.random.default_rng(5).standard_normal((5, 8)).astype(np.float32),
              [{"text": f"added {i}"} for i in range(5)])
    os.rename = pause_before("rename", os.rename)
    os.replace = pause_before("replace", os.replace)
    shutil.rmtree = pause_before("rmtree", shutil.rmtree)
    store.save()
print("finished", flush=True)
"""


def test_kill_9_mid_index_add_keeps_every_row_of_the_old_or_the_new_version(tmp_path):
    # Before the intent is written (the meta.json write's replace): the old version. After it: the new.
    points = {"replace:1": 10, "rename:1": 15, "rename:2": 15, "rmtree:1": 15}
    children = {}
    for point in points:
        folder = tmp_path / point.replace(":", "-") / "idx"
        store = IndexStore.create(8, "flat", encoder={"spec": "fake", "dim": 8})
        store.add(np.random.default_rng(1).standard_normal((10, 8)).astype(np.float32),
                  [{"text": f"old {i}"} for i in range(10)])
        store.save(folder)
        children[point] = (folder, subprocess.Popen([sys.executable, "-c", ADD_CHILD, point, str(folder)],
                                                    cwd=ROOT, env=CHILD_ENV, stdout=subprocess.PIPE, text=True))
    for point, (_, child) in children.items():
        assert child.stdout.readline().strip() == "ready", point
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    for point, (folder, _) in children.items():
        recover_folder(folder)  # what the next command does first
        store = open_index(folder)
        assert len(store) == points[point], point
        assert {f"old {i}" for i in range(10)} <= set(store.texts()), "no old row lost"
        left = [p.name for p in folder.parent.iterdir() if p.name not in ("idx", ".idx.lock")]
        assert left == [], f"{point}: {left}"


# -- two `semsim index add` commands at once -----------------------------------------------------
def test_two_index_add_commands_at_once_wait_for_each_other_and_lose_no_rows(tiny_bert_dir, tmp_path):
    from semsim.cli import main

    corpus = {name: tmp_path / f"{name}.csv" for name in ("base", "a", "b")}
    for name, path in corpus.items():
        pd.DataFrame({"title": [f"{name} nurse {i}" for i in range(60)]}).to_csv(path, index=False)
    index_dir = tmp_path / "idx"
    assert main(["index", "build", "--model", f"keras-hub:{tiny_bert_dir}", "--corpus", str(corpus["base"]),
                 "--column", "title", "--out", str(index_dir)]) == 0
    waiting = {name: threading.Event() for name in ("a", "b")}
    stderr: dict[str, list[str]] = {"a": [], "b": []}

    def follow(name: str, process: subprocess.Popen) -> None:
        for line in process.stderr:
            stderr[name].append(line)
            if "waiting for it to finish" in line:
                waiting[name].set()

    processes, readers = {}, []
    with writer_lock(index_dir):  # both commands start while a third writer holds the index
        for name in ("a", "b"):
            processes[name] = subprocess.Popen(
                [sys.executable, "-m", "semsim", "index", "add", "--index", str(index_dir), "--corpus",
                 str(corpus[name]), "--column", "title", "--model", f"keras-hub:{tiny_bert_dir}", "--json"],
                cwd=ROOT, env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            readers.append(threading.Thread(target=follow, args=(name, processes[name]), daemon=True))
            readers[-1].start()
        for name in ("a", "b"):
            assert waiting[name].wait(300), f"{name} never reached the lock: {''.join(stderr[name])[-2000:]}"
    results = {}
    for name, process in processes.items():
        out = process.stdout.read()
        assert process.wait(300) == 0, "".join(stderr[name])[-2000:]
        results[name] = json.loads(out)
    assert sorted(r["added"] for r in results.values()) == [60, 60]
    final = open_index(index_dir)
    assert len(final) == 180, "every row of both commands is in the index"
    assert {t.split()[0] for t in final.texts()} == {"base", "a", "b"}
