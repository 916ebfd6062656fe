"""Running an external tool (yosys, nextpnr, verilator, make, a simulator) in a process group of its
own, so that an interrupt, a timeout or an error ends the tool *and everything it started*
(``make`` -> ``c++`` -> ``cc1plus``), not only the process we launched.

It lives in ``model`` only because that is the layer both ``sim`` and ``boards`` may import (like
:mod:`.fileio`); it uses the standard library alone.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from typing import IO, Mapping, Sequence

__all__ = ["GRACE_S", "ToolsStopped", "run_in_group", "end_group", "end_all_groups", "end_groups_on_sigterm",
           "groups_ended_on_error"]

# Time a tool gets after SIGTERM to clean up before its group is killed.
GRACE_S = 5.0


# Every group run_in_group has started and not yet ended, whichever thread waits for it: a signal
# reaches only the main thread, so groups waited for by worker threads (bench/boards.py --jobs) are
# ended from here.
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
# Set by end_all_groups: a process on its way out starts no more tools.
_stopping = threading.Event()


class ToolsStopped(RuntimeError):
    """run_in_group was called after :func:`end_all_groups`: the process is stopping."""


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a reused id in someone else's session: not ours any more
        return False
    return True


def end_group(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """SIGTERM to ``proc``'s whole process group, SIGKILL to what is left after ``grace`` seconds;
    returns once the leader is reaped and the group is empty (or killed)."""
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    try:
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # The leader's children were re-parented when it exited but are still in its group.
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        # Also reached on a second Ctrl-C during the grace period: then nothing waits any longer.
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def run_in_group(cmd: Sequence[str], *, cwd=None, env: Mapping[str, str] | None = None,
                 stdout: IO | int | None = None, stderr: IO | int | None = None,
                 timeout: float | None = None, grace: float = GRACE_S) -> int:
    """Run ``cmd`` in a new session (its own process group) and return its exit status.

    On ``timeout`` seconds the group is ended and :class:`subprocess.TimeoutExpired` raised; on
    any exception while waiting (``KeyboardInterrupt`` included) the group is ended and the
    exception re-raised. A terminal's Ctrl-C reaches only our process group, so without this the
    tool's children would run on as orphans.
    """
    with _live_lock:
        if _stopping.is_set():
            raise ToolsStopped(f"{cmd[0]} not started: the run is stopping")
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=None if env is None else dict(env), stdout=stdout,
                                stderr=stderr, start_new_session=True)
        _live.add(proc)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_group(proc, grace)
        raise subprocess.TimeoutExpired(list(cmd), timeout) from None
    except BaseException:
        end_group(proc, grace)
        raise
    finally:
        with _live_lock:
            _live.discard(proc)


def end_all_groups(grace: float = GRACE_S) -> None:
    """End every tool group still running, whichever thread started it (SIGTERM, then SIGKILL after
    ``grace`` seconds), and refuse to start any more (:class:`ToolsStopped`): for a process on
    its way out, whose worker threads would otherwise wait for their tools to finish."""
    with _live_lock:
        _stopping.set()
        procs = list(_live)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_group_running(p.pid) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.05)
    for proc in procs:
        if _group_running(proc.pid):
            _signal_group(proc.pid, signal.SIGKILL)


def _group_running(pgid: int) -> bool:
    """Whether a member of group ``pgid`` has not yet exited. Unlike :func:`_group_alive`, a leader
    that has exited but is not yet reaped counts as ended: here its waiting thread may be the one
    this runs in (a signal handler), so nothing reaps it until we return."""
    proc_dir = "/proc"
    if not os.path.isdir(proc_dir):
        return _group_alive(pgid)
    for name in os.listdir(proc_dir):
        if not name.isdigit():
            continue
        try:
            with open(f"{proc_dir}/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # (it ended while we looked)
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


@contextlib.contextmanager
def groups_ended_on_error():
    """Inside ``with ThreadPoolExecutor(...) as pool, groups_ended_on_error():`` an exception in the
    waiting thread (Ctrl-C reaches only it) ends every tool group before the pool waits for its
    workers, which would otherwise wait for their tools to finish."""
    try:
        yield
    except BaseException:
        end_all_groups()
        raise


def end_groups_on_sigterm() -> None:
    """From now on SIGTERM (``kill``, ``timeout``, a batch scheduler) ends every tool group, then
    exits with status 143 through ``SystemExit``, so ``finally`` blocks run. Without it the
    interpreter dies at once and its tools, each in a session of its own, run on as orphans.
    Only a main thread can set a handler; elsewhere (a command run from a worker thread) this does
    nothing."""
    def stop(signum, frame):
        end_all_groups()
        raise SystemExit(128 + signum)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
