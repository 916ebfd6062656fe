"""Running an external tool (yosys, nextpnr, verilator, make, a simulator) in a process group of its
own, so that an interrupt, a timeout or an error ends the tool *and everything it started*
(``make`` -> ``c++`` -> ``cc1plus``), not only the process we launched.

It lives in ``model`` only because that is the layer both ``sim`` and ``boards`` may import (like
:mod:`.fileio`); it uses the standard library alone.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import IO, Mapping, Sequence

__all__ = ["GRACE_S", "run_in_group", "end_group"]

# Time a tool gets after SIGTERM to clean up before its group is killed.
GRACE_S = 5.0


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
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=None if env is None else dict(env), stdout=stdout,
                            stderr=stderr, start_new_session=True)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_group(proc, grace)
        raise subprocess.TimeoutExpired(list(cmd), timeout) from None
    except BaseException:
        end_group(proc, grace)
        raise
