"""Epoch checkpoints that survive a kill: each written whole under a new name, then committed; the previous kept."""

# Why not keras.callbacks.BackupAndRestore: it rewrites one `latest.weights.h5` in place, so a kill
# while the weights and optimizer state (272 MB for minilm) are written leaves a torn HDF5 file that
# `--resume` then fails on with an h5py traceback, and nothing older to fall back to.

from __future__ import annotations

import contextlib
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semsim.training.spec import TrainingError

# Committed generations kept: the newest and the one before it, the fallback when the newest cannot be read.
KEEP = 2
_COMMIT = re.compile(r"ckpt-(\d{6})\.json")
_WEIGHTS = re.compile(r"ckpt-(\d{6})\.weights\.h5")
_TEMP_PREFIX = ".tmp-"
# What keras.callbacks.BackupAndRestore left (runs interrupted before this module existed).
LEGACY_WEIGHTS, LEGACY_METADATA = "latest.weights.h5", "training_metadata.json"


def _crc32(path: Path) -> int:
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return crc


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to fsync directories
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Generation:
    """One committed checkpoint: the epochs it completed and its weights file (model + optimizer)."""

    number: int
    epoch: int
    weights: Path
    size: int | None  # recorded at commit; None for a legacy checkpoint
    crc32: int | None = None

    def describe(self) -> str:
        return f"the checkpoint after epoch {self.epoch} ({self.weights.name})"


class TrainingCheckpoint:
    """The checkpoints of one run in `folder`: `ckpt-NNNNNN.weights.h5` plus `ckpt-NNNNNN.json`.

    A save writes the weights to a hidden temporary, fsyncs it, renames it to its final name, then
    commits by writing the small JSON record the same way: a generation exists only once its record
    does, and its weights are never written again. So a kill at any instant leaves the last committed
    generation whole. The newest two are kept; restore falls back to the older one when the newer
    cannot be read, and says so.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def exists(self) -> bool:
        return bool(self.generations())

    def generations(self) -> list[Generation]:
        """Committed generations, newest first (a legacy BackupAndRestore checkpoint last)."""
        found = []
        try:
            names = os.listdir(self.folder)
        except OSError:
            return []
        for name in names:
            match = _COMMIT.fullmatch(name)
            if not match:
                continue
            try:
                record = json.loads((self.folder / name).read_text(encoding="utf-8"))
                generation = Generation(int(match.group(1)), int(record["epoch"]), self.folder / record["weights"],
                                        int(record["bytes"]), record.get("crc32"))
            except (OSError, ValueError, KeyError, TypeError):
                continue  # written whole by os.replace, so only a hand edit gets here: not a generation
            if generation.weights.parent == self.folder and _WEIGHTS.fullmatch(generation.weights.name):
                found.append(generation)
        found.sort(key=lambda g: g.number, reverse=True)
        legacy = self.folder / LEGACY_WEIGHTS
        if legacy.is_file():
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                epoch = int(json.loads((self.folder / LEGACY_METADATA).read_text(encoding="utf-8"))["epoch"])
                found.append(Generation(-1, epoch, legacy, None))
        return found

    # -- writing ------------------------------------------------------------------------------
    def save(self, model: Any, epoch: int) -> Generation:
        """Write and commit a new generation holding `model`'s weights and optimizer state after `epoch`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        committed = [g for g in self.generations() if g.number >= 0]
        number = committed[0].number + 1 if committed else 1
        # Make room first (keeping the newest), so the disk holds at most two full copies at any time.
        for old in committed[KEEP - 1:]:
            self._drop(old)
        self._remove_strays()
        weights = self.folder / f"ckpt-{number:06d}.weights.h5"
        tmp = self.folder / f"{_TEMP_PREFIX}{number:06d}.weights.h5"  # save_weights wants .weights.h5
        model.save_weights(str(tmp))
        _fsync(tmp)
        os.replace(tmp, weights)
        record = {"epoch": int(epoch), "weights": weights.name, "bytes": weights.stat().st_size,
                  "crc32": _crc32(weights), "format": 1}
        tmp_record = self.folder / f"{_TEMP_PREFIX}{number:06d}.json"
        with open(tmp_record, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_record, self.folder / f"ckpt-{number:06d}.json")  # the commit
        _fsync(self.folder)
        for old in self.generations()[KEEP:]:
            self._drop(old)
        return Generation(number, int(epoch), weights, record["bytes"], record["crc32"])

    def _drop(self, generation: Generation) -> None:
        """Un-commit (record first), then delete the weights."""
        with contextlib.suppress(OSError):
            if generation.number >= 0:
                os.unlink(self.folder / f"ckpt-{generation.number:06d}.json")
            else:
                os.unlink(self.folder / LEGACY_METADATA)
                for name in (f"{LEGACY_METADATA}.bkp", f"{LEGACY_WEIGHTS}.bkp"):
                    with contextlib.suppress(OSError):
                        os.unlink(self.folder / name)
            os.unlink(generation.weights)

    def _remove_strays(self) -> None:
        """Temporaries of a save that was killed, and weights whose record was never written."""
        committed = {g.weights.name for g in self.generations()}
        with contextlib.suppress(OSError):
            for name in os.listdir(self.folder):
                if name.startswith(_TEMP_PREFIX) or (_WEIGHTS.fullmatch(name) and name not in committed):
                    with contextlib.suppress(OSError):
                        os.unlink(self.folder / name)

    # -- reading ------------------------------------------------------------------------------
    def restore(self, model: Any) -> tuple[int, str | None]:
        """Load the newest readable generation into `model` (built and compiled); (epochs it completed,
        a note if a newer one was unreadable). TrainingError, with the way out, if none can be read."""
        generations = self.generations()
        if not generations:
            raise TrainingError(f"nothing to resume: {self.folder} holds no complete checkpoint (the run was "
                                f"stopped before its first epoch ended); start again with --overwrite")
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        failures = []
        for generation in generations:
            reason = self._load(model, generation)
            if reason is None:
                self._remove_strays()
                note = None
                if failures:
                    note = (f"{'; '.join(failures)}; resumed from {generation.describe()} instead, so epoch "
                            f"{generation.epoch + 1} runs again")
                return generation.epoch, note
            failures.append(f"{generation.describe()} cannot be read ({reason})")
        raise TrainingError(f"cannot resume from {self.folder}: {'; '.join(failures)}. Start the run again "
                            f"with --overwrite")

    @staticmethod
    def _load(model: Any, generation: Generation) -> str | None:
        """None if `generation` loaded into `model`, else why not (one line)."""
        try:
            size = generation.weights.stat().st_size
        except OSError as exc:
            return exc.strerror or type(exc).__name__
        if generation.size is not None and size != generation.size:
            return f"{size} bytes where {generation.size} were written"
        if generation.crc32 is not None and _crc32(generation.weights) != generation.crc32:
            return "its checksum does not match what was written"
        try:
            model.load_weights(str(generation.weights))
        except Exception as exc:  # h5py and Keras report torn or foreign files with many types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return f"{type(exc).__name__}: {first[:200]}"
        return None


def checkpoint_each_epoch(checkpoint: TrainingCheckpoint) -> Any:
    """A Keras callback committing a checkpoint at the end of every epoch (put it last in the callback
    list, after the epoch's logs). Made here so that importing this module loads no Keras."""
    import keras

    class CheckpointEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            checkpoint.save(self.model, epoch + 1)

    return CheckpointEachEpoch()
