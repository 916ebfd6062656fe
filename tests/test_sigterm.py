"""SIGTERM (``timeout``, ``kill``, a batch scheduler) to a command that runs tools: every tool group
ends, the ones worker threads wait for included, and the command exits 143 instead of leaving its
tools running as orphans (model.procgroup.end_groups_on_sigterm; the CLI and bench/boards.py set
it). Each case runs in a child interpreter: the stop is for good in the process it happens in."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from test_cache_robustness import TREE, _pids, _wait_gone

DEADLINE_S = 60.0


def _python(script: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _kill_left(pids) -> None:
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigterm_ends_the_tools_of_every_thread(tmp_path):
    # Two worker threads and the main thread each wait for a tool tree (bench/boards.py --jobs).
    files = [tmp_path / f"pids{k}" for k in range(3)]
    child = _python(f"""
        import threading
        from spikegate.model.procgroup import end_groups_on_sigterm, run_in_group
        end_groups_on_sigterm()
        trees = {[TREE.format(pids=f) for f in files]!r}
        workers = [threading.Thread(target=run_in_group, args=(["sh", "-c", t],)) for t in trees[1:]]
        for w in workers:
            w.start()
        run_in_group(["sh", "-c", trees[0]])
        """)
    pids = []
    try:
        pids = [p for f in files for p in _pids(f)]
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=DEADLINE_S)
        assert child.returncode == 128 + signal.SIGTERM, err
        assert _wait_gone(pids) == []
    finally:
        child.kill()
        _kill_left(pids)


def test_ctrl_c_in_a_thread_pool_ends_the_workers_tools(tmp_path):
    # bench/boards.py --jobs 2: Ctrl-C reaches the thread waiting on the pool, not the workers.
    files = [tmp_path / f"pids{k}" for k in range(2)]
    child = _python(f"""
        import signal
        from concurrent.futures import ThreadPoolExecutor
        from spikegate.model.procgroup import groups_ended_on_error, run_in_group
        # (a child of a background shell inherits SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        trees = {[TREE.format(pids=f) for f in files]!r}
        with ThreadPoolExecutor(max_workers=2) as pool, groups_ended_on_error():
            list(pool.map(lambda t: run_in_group(["sh", "-c", t]), trees))
        """)
    pids = []
    try:
        pids = [p for f in files for p in _pids(f)]
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=DEADLINE_S)
        assert "KeyboardInterrupt" in err
        assert _wait_gone(pids) == []
    finally:
        child.kill()
        _kill_left(pids)


def test_no_tool_starts_once_the_run_is_stopping():
    # A worker between two tools (yosys done, nextpnr next) must not start the second.
    child = _python("""
        from spikegate.model.procgroup import ToolsStopped, end_all_groups, run_in_group
        assert run_in_group(["true"]) == 0
        end_all_groups()
        try:
            run_in_group(["true"])
        except ToolsStopped as e:
            print(e)
        """)
    out, err = child.communicate(timeout=DEADLINE_S)
    assert child.returncode == 0, err
    assert out.strip() == "true not started: the run is stopping"


def _tool_children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(d.name))
            except (OSError, IndexError):
                pass
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the tool through /proc")
def test_the_cli_ends_its_synthesis_on_sigterm(tmp_path):
    # The real command and tool: `spikegate build` on a fresh cache runs Yosys for a minute.
    env = {**os.environ, "SPIKEGATE_CACHE": str(tmp_path / "cache")}
    child = subprocess.Popen([sys.executable, "-m", "spikegate.cli", "build", "--board", "icebreaker",
                              "--out", str(tmp_path / "out")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    tools = []
    try:
        end = time.monotonic() + DEADLINE_S
        while not tools and time.monotonic() < end and child.poll() is None:
            tools = _tool_children(child.pid)
            time.sleep(0.1)
        assert tools, f"no tool started within {DEADLINE_S:g} s: {child.communicate()[1][-2000:]}"
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=DEADLINE_S)
        assert child.returncode == 128 + signal.SIGTERM, err[-2000:]
        assert _wait_gone(tools) == []
        assert not (tmp_path / "out" / "icebreaker.bit").exists()
    finally:
        child.kill()
        _kill_left(tools)
