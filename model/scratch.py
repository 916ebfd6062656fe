"""The file-system rules both caches (bitstream builds, simulator builds) follow.

- **Scratch names.** Every temporary folder or file a process makes in a cache is named
  ``<tag>.p<PID>.<random>[.ext]`` (:func:`scratch_dir`), so a later process can tell whose it is.
- **Pruning.** :func:`prune` removes scratch whose owner process is gone (a SIGKILLed build leaves
  its work folder behind: nothing else would ever remove it), scratch older than
  :data:`STALE_AGE_S` whatever its owner (a reused pid), and debris of the older unnamed kinds
  matching the caller's patterns once it is that old.
- **Locks.** :func:`locked` takes an exclusive ``flock`` with a deadline and writes the holder's pid
  into the lock file for the error message; :func:`is_locked` asks without waiting.
- **Durability.** :func:`fsync_tree` flushes a finished folder before it is renamed into place.

In ``model`` only because that is the layer both ``sim`` and ``boards`` may import (like
:mod:`.fileio`); standard library only.
"""
from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

__all__ = ["STALE_AGE_S", "LockTimeout", "scratch_dir", "scratch_name", "owner_pid", "pid_alive",
           "stale", "prune", "locked", "is_locked", "fsync_tree", "fsync_dir", "tree_size", "remove_tree"]

# Scratch older than this is debris whatever its recorded owner: no build or run takes this long,
# and the pid may have been reused by an unrelated process.
STALE_AGE_S = 2 * 24 * 3600

_SCRATCH = re.compile(r"\.p(\d+)\.[A-Za-z0-9_]+(\.[A-Za-z0-9]+)?$")


class LockTimeout(TimeoutError):
    """Another process held a cache lock past the deadline."""


def scratch_name(tag: str, suffix: str = "") -> str:
    """A fresh scratch name for this process (for files; folders use :func:`scratch_dir`)."""
    return f"{tag}.p{os.getpid()}.{secrets.token_hex(4)}{suffix}"


def scratch_dir(root: Path, tag: str) -> Path:
    """Make a new scratch folder in ``root`` owned by this process."""
    return Path(tempfile.mkdtemp(prefix=f"{tag}.p{os.getpid()}.", dir=root))


def owner_pid(name: str) -> int | None:
    """The owner's pid recorded in a scratch name, or None when ``name`` is not scratch."""
    m = _SCRATCH.search(name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def remove_tree(path: Path) -> None:
    """Remove a folder or file (whichever ``path`` is); missing is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _age(path: Path, now: float) -> float:
    try:
        return now - path.lstat().st_mtime
    except FileNotFoundError:
        return 0.0


def stale(path: Path, legacy: Sequence[str] = (), now: float | None = None) -> bool:
    """Whether ``path`` (an item of a cache folder) is debris :func:`prune` would remove."""
    now = time.time() if now is None else now
    pid = owner_pid(path.name)
    if pid is not None:
        if pid != os.getpid() and not pid_alive(pid):
            return True
        return _age(path, now) > STALE_AGE_S
    return (any(fnmatch.fnmatchcase(path.name, p) for p in legacy)
            and _age(path, now) > STALE_AGE_S)


def prune(root: Path, legacy: Sequence[str] = (), log: Callable[[str], None] | None = None) -> list[Path]:
    """Remove the debris in ``root`` (see the module docstring) and return what was removed."""
    removed = []
    try:
        items = list(root.iterdir())
    except FileNotFoundError:
        return removed
    now = time.time()
    for p in items:
        if stale(p, legacy, now):
            remove_tree(p)
            removed.append(p)
    if removed and log is not None:
        log(f"removed {len(removed)} stale item(s) left in {root} by interrupted runs: "
            f"{', '.join(p.name for p in removed[:5])}{' ...' if len(removed) > 5 else ''}")
    return removed


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return f"pid {text}" if text.isdigit() else "another process"


@contextlib.contextmanager
def locked(path: Path, *, timeout: float, what: str, shared: bool = False, poll: float = 0.2,
           on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive (or ``shared``) ``flock`` on ``path`` for the block, waiting at most
    ``timeout`` seconds for it; ``on_wait(text)`` hears once that we wait, and on whom."""
    f = open(path, "a+")
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(f, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    on_wait(f"waiting for {_holder(path)}, which holds {what} ({path})")
                    told = True
                if time.monotonic() >= deadline:
                    raise LockTimeout(f"{what} is still held by {_holder(path)} after {timeout:g} s "
                                      f"(lock file {path}); wait for that process or end it") from None
                time.sleep(poll)
        if not shared:
            f.truncate(0)
            f.write(str(os.getpid()))
            f.flush()
        yield
    finally:
        f.close()


def is_locked(path: Path) -> bool:
    """Whether some process holds a lock (shared or exclusive) on ``path`` right now."""
    try:
        f = open(path, "r")
    except FileNotFoundError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
        return False


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush every file of a folder (recursively) and the folders themselves to disk."""
    for dirpath, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def tree_size(path: Path) -> int:
    """Bytes in a file or under a folder (files that vanish while counting are skipped)."""
    if not path.is_dir() or path.is_symlink():
        try:
            return path.lstat().st_size
        except FileNotFoundError:
            return 0
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
