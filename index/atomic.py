"""Atomic folder publish and crash recovery, for index and model folders alike."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.errors import VectorIndexError

_log = logging.getLogger(__name__)

# How long a writer waits for another writer of the same folder before giving up. An `index add` of
# a large corpus holds the lock while it encodes, so this is minutes, not seconds.
WRITER_LOCK_TIMEOUT_S = 600.0

# Beside a folder NAME live (all hidden, all in NAME's parent directory):
#   .NAME.lock        the writer lock (flock); removed by the last holder
#   .NAME.publishing  the intent journal of a publish in flight: which folder becomes NAME, which
#                     name the old NAME moves to, and the new folder's file list
#   .NAME.tmp-HEX     a folder being built by atomic_folder, or the intent file being written
#   .NAME.old-HEX     the previous NAME during a swap
# Temporaries are only created while the writer lock is held, so whoever holds the lock knows that
# any temporary it did not create belongs to a dead process.
_TEMP_KINDS = ("tmp", "old")


class WriterLockTimeout(VectorIndexError):
    """Another writer held a folder's writer lock for longer than the caller was willing to wait."""


def lock_file(final: str | os.PathLike) -> Path:
    """The lock file beside `final` (`.NAME.lock`)."""
    final = Path(final)
    return final.parent / f".{final.name}.lock"


def intent_file(final: str | os.PathLike) -> Path:
    """The journal of a publish in flight beside `final` (`.NAME.publishing`)."""
    final = Path(final)
    return final.parent / f".{final.name}.publishing"


def _temp_name(final: Path, kind: str) -> Path:
    return final.parent / f".{final.name}.{kind}-{uuid.uuid4().hex[:12]}"


def _temporaries(final: Path) -> list[Path]:
    """`.NAME.tmp-*` and `.NAME.old-*` beside `final` (exact pattern: `.NAME.tmp-x.tmp-*` is another folder's).

    Suffixes of 8 to 12 characters: ours are 12 hex digits, saves before index/atomic.py left
    `.NAME.old-` + 8 hex and mkdtemp's `.NAME.tmp-` + 8 of [a-z0-9_].
    """
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(?:{'|'.join(_TEMP_KINDS)})-[0-9a-z_]{{8,12}}")
    try:
        names = os.listdir(final.parent)
    except OSError:  # no parent folder: nothing was ever published here
        return []
    return [final.parent / name for name in sorted(names) if pattern.fullmatch(name)]


# -- durability ---------------------------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # some filesystems refuse to fsync directories
        _fsync_file(path)


def _fsync_tree(root: Path) -> None:
    """fsync every regular file under `root`, then every directory (children before parents)."""
    for folder, _, files in os.walk(root, topdown=False):
        for name in files:
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                _fsync_file(path)
        _fsync_dir(Path(folder))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        os.unlink(path)


# -- the writer lock ----------------------------------------------------------------------------
@dataclass
class _Held:
    owner: int  # threading.get_ident() of the holding thread
    depth: int  # re-entrant: publish_folder inside atomic_folder inside IndexStore.save
    fd: int


# flock is per open file, so two opens in one process would block each other: the process keeps one
# descriptor per lock and counts re-entries of the owning thread; other threads wait like other processes.
_held: dict[str, _Held] = {}
_held_guard = threading.Lock()
# A forked child inherits the descriptor but is not the writer.
os.register_at_fork(after_in_child=_held.clear)


def _key(final: Path) -> str:
    return os.path.join(os.path.realpath(final.parent), f".{final.name}.lock")


def holds_writer_lock(final: str | os.PathLike) -> bool:
    """True if the calling thread holds the writer lock of `final`."""
    with _held_guard:
        held = _held.get(_key(Path(final)))
        return held is not None and held.owner == threading.get_ident()


def _try_flock(path: str) -> int | None:
    """A descriptor holding an exclusive flock on `path`, or None if someone else holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # The previous holder unlinks the file as it lets go: a lock taken on that unlinked file
        # would not exclude a writer who creates the next one, so start again on the new file.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


def _holder_pid(path: str) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"process {int(Path(path).read_text().strip())}"
    return "another process"


def _acquire(final: Path, timeout: float) -> bool:
    """Take the writer lock (waiting up to `timeout` s); True if this is the thread's outermost hold."""
    key = _key(final)
    me = threading.get_ident()
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.005
    said = False
    while True:
        with _held_guard:
            held = _held.get(key)
            if held is not None and held.owner == me:
                held.depth += 1
                return False
            if held is None:
                fd = _try_flock(key)
                if fd is not None:
                    _held[key] = _Held(me, 1, fd)
                    return True
        remaining = deadline - time.monotonic()
        who = "another thread of this process" if held is not None else _holder_pid(key)
        if remaining > 0 and not said:
            # Said once, so that a command that waits minutes for another writer is not taken for hung.
            _log.warning("%s is being written by %s; waiting for it to finish (up to %g s)", final, who, timeout)
            said = True
        if remaining <= 0:
            raise WriterLockTimeout(
                f"{final} is being written by {who} (lock {key}); gave up after waiting {timeout:g} s. "
                f"Wait for it to finish and try again")
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 0.1)


def _release(final: Path) -> None:
    key = _key(final)
    with _held_guard:
        held = _held[key]
        held.depth -= 1
        if held.depth:
            return
        del _held[key]
        try:
            # Unlinked while still locked, so no litter is left and no waiter can lock a stale file.
            with contextlib.suppress(OSError):
                os.unlink(key)
        finally:
            os.close(held.fd)


@contextlib.contextmanager
def _locked(final: Path, timeout: float) -> Iterator[bool]:
    outermost = _acquire(final, timeout)
    try:
        yield outermost
    finally:
        _release(final)


@contextlib.contextmanager
def writer_lock(final: str | os.PathLike, timeout: float = WRITER_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the writer lock of folder `final` (flock on `.NAME.lock` beside it) for the block.

    Writers of one folder (other processes, other threads) wait for each other, up to `timeout`
    seconds, then WriterLockTimeout (a VectorIndexError) names the holder. Re-entrant in the holding
    thread. A process that dies loses the lock at once (the kernel drops flocks), so there are no stale
    locks. Taking the lock first finishes any publish a dead process left half done (recover_folder),
    so a writer always starts from a complete folder.
    """
    with _writing(Path(final), timeout):
        yield


@contextlib.contextmanager
def _writing(final: Path, timeout: float, keep: Path | None = None) -> Iterator[None]:
    final.parent.mkdir(parents=True, exist_ok=True)
    with _locked(final, timeout) as outermost:
        if outermost:  # nested holds skip it: the holder's own temporaries are live
            _recover_locked(final, keep)
        yield


# -- publish and recovery -----------------------------------------------------------------------
def _manifest(folder: Path) -> dict[str, Any]:
    """Every file (with its size) and directory under `folder`: what a complete copy of it holds."""
    files, dirs = {}, []
    for root, dirnames, filenames in os.walk(folder):
        base = Path(root).relative_to(folder)
        dirs.extend(str(base / d) for d in dirnames)
        for name in filenames:
            path = Path(root) / name
            files[str(base / name)] = path.lstat().st_size
    return {"files": files, "dirs": sorted(dirs)}


def _write_intent(final: Path, plan: dict[str, Any]) -> None:
    """Write the intent journal atomically: it either exists complete or not at all."""
    tmp = _temp_name(final, "tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, intent_file(final))
    _fsync_dir(final.parent)


def _read_intent(final: Path) -> dict[str, Any]:
    path = intent_file(final)
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
        names = [plan["new"], *([plan["old"]] if plan["old"] is not None else [])]  # no "old": a first save
        manifest = plan["manifest"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VectorIndexError(f"{path} records an interrupted save of {final} but cannot be read ({exc}). "
                               f"It is only ever written whole, so it was changed by hand: check which of "
                               f"the hidden .{final.name}.* folders beside it to keep, then delete it") from exc
    for name in names:  # plain names of siblings, never paths elsewhere
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise VectorIndexError(f"{path} names {name!r}, which is not a folder beside {final}; delete it")
    if not isinstance(manifest, dict):
        raise VectorIndexError(f"{path} has no file list; delete it")
    return plan


def _recover_locked(final: Path, keep: Path | None = None, clean: bool = True) -> bool:
    """recover_folder's work, with the writer lock held. `keep`: the caller's own work folder, left
    alone; `clean=False` resolves the intent only (temporaries may be the caller's, in use)."""
    changed = False
    parent = final.parent
    if os.path.lexists(intent_file(final)):
        plan = _read_intent(final)
        new = parent / plan["new"]
        old = parent / plan["old"] if plan["old"] else None
        if keep is not None and new.name == keep.name:
            # Our own earlier attempt with this very folder (a live failure that could not undo itself):
            # put the old version back if it was moved, and let the caller publish again.
            if old is not None and old.is_dir() and not os.path.lexists(final):
                os.rename(old, final)
                changed = True
        elif new.is_dir() and _manifest(new) == plan["manifest"]:
            # The new folder is complete (the intent is written only after it was): finish the swap.
            if os.path.lexists(final):
                aside = old if old is not None and not os.path.lexists(old) else _temp_name(final, "old")
                os.rename(final, aside)
            os.rename(new, final)
            changed = True
        elif os.path.lexists(new):
            # The new folder was changed after the intent named it (never by this module): keep the old.
            if old is not None and old.is_dir() and not os.path.lexists(final):
                os.rename(old, final)
                changed = True
        # else: the new folder is gone, and only the rename into `final` removes it, so the swap
        # happened. Whatever `final` is now (the new version, or nothing if the user deleted it since)
        # stays as it is: the old version is never brought back.
        _fsync_dir(parent)
        os.unlink(intent_file(final))
        _fsync_dir(parent)
    for stale in _temporaries(final) if clean else []:  # the lock is held: none belongs to a live writer
        if keep is None or stale.name != keep.name:
            with contextlib.suppress(OSError):  # tidying up; a leftover must not stop a save
                _remove(stale)
    return changed


def recover_folder(final: str | os.PathLike, timeout: float = WRITER_LOCK_TIMEOUT_S) -> bool:
    """Finish a publish that a dead process left half done; True if folders were renamed to do it.

    Cheap when there is nothing to do (one directory listing, no lock). Otherwise, under the writer
    lock: if `.NAME.publishing` exists, a publish died between its renames, and the newest complete
    version wins: the new folder if it is still there and holds exactly the files the intent lists
    (the intent is written only once it is complete), else whatever is at `final` (the old folder is
    put back only when the new one is incomplete and `final` is missing). Stale `.NAME.tmp-*` and
    `.NAME.old-*` left by dead processes are deleted. A folder the user deleted is never brought back:
    without an intent, an `.old-*` backup is garbage, not a version.

    A live writer's publish is never mistaken for a dead one: it holds the lock, so a reader that
    finds an intent waits (up to `timeout` s) for that publish to end; a reader that finds only
    temporaries while a writer is busy leaves them for the next lock holder to clean.
    """
    final = Path(final)
    pending = os.path.lexists(intent_file(final))
    if not pending and not _temporaries(final):
        return False
    if holds_writer_lock(final):
        # Cleaned when this thread took the lock; temporaries now are its own, maybe in use.
        return _recover_locked(final, clean=False) if pending else False
    try:
        with _locked(final, timeout if pending else 0.0):
            return _recover_locked(final)
    except WriterLockTimeout:
        if pending:
            raise
        return False  # a writer is busy; it cleaned up when it took the lock
    except OSError as exc:  # e.g. a read-only place: nothing can be renamed or cleaned here
        if pending:
            raise VectorIndexError(f"a save of {final} was interrupted and cannot be finished here: "
                                   f"{exc}") from exc
        return False


def publish_folder(work: str | os.PathLike, final: str | os.PathLike,
                   timeout: float = WRITER_LOCK_TIMEOUT_S) -> None:
    """Make the complete folder `work` become `final` in one step, replacing what `final` was.

    `work` must sit beside `final` (same parent, so the renames are atomic). Its files and directories
    are fsynced first; then an intent journal (`.NAME.publishing`, naming `work`, the backup name and
    `work`'s file list) is written, `final` is renamed to `.NAME.old-*`, `work` to `final`, the intent
    removed and the backup deleted. Under the writer lock throughout. On return `final` holds work's
    content; if it raises, `final` is what it was (and `work` is left to the caller); if the process
    dies, recover_folder (called by the next writer or reader) finishes or undoes the swap, so at every
    instant either the old or the new folder is recoverable.
    """
    work, final = Path(work), Path(final)
    if not work.is_dir():
        raise VectorIndexError(f"nothing to publish: {work} is not a folder")
    if work.name == final.name or not final.parent.is_dir() or not os.path.samefile(work.parent, final.parent):
        raise VectorIndexError(f"{work} must be a folder beside {final} (same parent) to replace it atomically")
    with _writing(final, timeout, keep=work):
        # Nested in atomic_folder the lock was taken earlier; a failure since may have left an intent.
        _recover_locked(final, keep=work)
        _fsync_tree(work)
        old = _temp_name(final, "old") if os.path.lexists(final) else None
        _write_intent(final, {"new": work.name, "old": old.name if old else None, "manifest": _manifest(work),
                              "pid": os.getpid(), "started": time.time()})
        try:
            if old is not None:
                os.rename(final, old)
            os.rename(work, final)
        except BaseException:
            _undo(final, work, old)
            raise
        # Past this point the new version is in place; what follows only tidies up, and whatever it
        # leaves undone (a crash, a failing disk) the next recover_folder finishes.
        _fsync_dir(final.parent)
        with contextlib.suppress(OSError):
            os.unlink(intent_file(final))
            _fsync_dir(final.parent)
        if old is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(old)


def _undo(final: Path, work: Path, old: Path | None) -> None:
    """Best effort after a failed swap: the old folder back at `final`, no intent. If this fails too,
    the intent stays and recover_folder decides later."""
    with contextlib.suppress(OSError):
        if old is not None and old.is_dir() and not os.path.lexists(final):
            os.rename(old, final)
        if work.is_dir():  # the swap did not happen
            os.unlink(intent_file(final))
            _fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_folder(final: str | os.PathLike, timeout: float = WRITER_LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Yield a new hidden folder beside `final` to write into; when the block ends cleanly it is
    published as `final` (publish_folder). An exception inside the block leaves `final` untouched and
    the folder deleted. The writer lock is held for the whole block, so a concurrent writer waits.
    """
    final = Path(final)
    with writer_lock(final, timeout):
        tmp = _temp_name(final, "tmp")
        os.mkdir(tmp)
        try:
            yield tmp
            publish_folder(tmp, final, timeout)
        finally:
            # Never delete a folder that an intent still names: recovery may need it to finish the swap.
            if tmp.exists() and not _intent_names(final, tmp):
                shutil.rmtree(tmp, ignore_errors=True)


def _intent_names(final: Path, folder: Path) -> bool:
    try:
        return json.loads(intent_file(final).read_text(encoding="utf-8")).get("new") == folder.name
    except (OSError, ValueError, AttributeError):
        return False
