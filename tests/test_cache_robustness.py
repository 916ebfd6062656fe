"""Cache and process robustness (issue 11, defects 2 and 6), with real processes and real files:

- the bitstream build cache never serves a damaged entry, ``force`` replaces an entry, two
  identical builds at once run the flow once, a killed build's scratch is pruned at the next open;
- tools run in their own process group, ended as a whole on a timeout or an interrupt;
- ``spikegate cache --info/--clear``.

The flow itself is exercised end to end in test_boards_build.py; here the cache layer gets a
small real payload from a ``make`` callable in its place, so the races can be run many times fast.
"""
from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spikegate.boards import cache
from spikegate.boards.errors import BuildError
from spikegate.boards.flow import _run as run_flow_tool
from spikegate.cli import main
from spikegate.model.procgroup import run_in_group
from spikegate.model.scratch import STALE_AGE_S, scratch_dir
from spikegate.sim import runner

KEY = "ab" * 32
BIT = "board.bin"


def _make(payload: bytes, counter: Path | None = None, delay: float = 0.0):
    """A build step that writes a bitstream and a result, counting its runs in ``counter``."""
    def make(work: Path, products: Path) -> None:
        if counter is not None:
            with open(counter, "a") as f:
                f.write(f"{os.getpid()}\n")
        time.sleep(delay)
        (work / "scratch.txt").write_text("intermediate")
        (products / BIT).write_bytes(payload)
        (products / "result.json").write_text(json.dumps({"timing": {"met": True}, "n": len(payload)}))
    return make


def test_damaged_entry_is_rebuilt_never_served(tmp_path, caplog):
    root = cache.open_cache(tmp_path)
    payload = bytes(range(256)) * 64
    first = cache.fetch(root, KEY, BIT, _make(payload))
    assert not first.cached and first.bitstream == payload
    assert cache.fetch(root, KEY, BIT, _make(b"unused")).cached
    # Truncate the cached bitstream (a full disk, a killed copy): it must not be served.
    (root / KEY / BIT).write_bytes(payload[:1000])
    counter = tmp_path / "runs"
    with caplog.at_level(logging.WARNING, logger="spikegate.boards.cache"):
        again = cache.fetch(root, KEY, BIT, _make(payload, counter))
    assert not again.cached and again.bitstream == payload
    assert counter.read_text().count("\n") == 1
    assert "is damaged (board.bin has 1000 bytes" in caplog.text and "rebuilding it" in caplog.text
    # A missing report (result.json) is damage too.
    (root / KEY / "result.json").unlink()
    assert not cache.fetch(root, KEY, BIT, _make(payload)).cached
    assert cache.read_entry(root / KEY, BIT)[1] == payload


def test_force_replaces_an_existing_entry(tmp_path):
    root = cache.open_cache(tmp_path)
    cache.fetch(root, KEY, BIT, _make(b"old bitstream"))
    new = cache.fetch(root, KEY, BIT, _make(b"new bitstream"), force=True)
    assert not new.cached and new.bitstream == b"new bitstream"
    assert cache.fetch(root, KEY, BIT, _make(b"unused")).bitstream == b"new bitstream"
    assert sorted(p.name for p in root.iterdir()) == [KEY, f"{KEY}.lock"]  # nothing set aside left


def _fetch_in_child(args):
    root, counter = args
    got = cache.fetch(Path(root), KEY, BIT, _make(b"x" * 5000, Path(counter), delay=1.5))
    return got.cached, got.bitstream == b"x" * 5000


def test_concurrent_identical_builds_run_the_flow_once(tmp_path):
    root = cache.open_cache(tmp_path / "c")
    counter = tmp_path / "runs"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.map(_fetch_in_child, [(str(root), str(counter))] * 3)
    assert counter.read_text().count("\n") == 1
    assert sorted(results) == [(False, True), (True, True), (True, True)]


@contextlib.contextmanager
def _lock_held_elsewhere(lock: Path):
    """Another real process holding ``lock`` (as a running build does) for the block; yields its pid."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from pathlib import Path; from spikegate.model.scratch import locked\n"
        f"with locked(Path({str(lock)!r}), timeout=5, what='x'):\n"
        "    print('held', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_waiting_for_a_held_lock_has_a_deadline(tmp_path):
    root = cache.open_cache(tmp_path)
    with _lock_held_elsewhere(cache.entry_lock(root, KEY)) as pid:
        heard = []
        with pytest.raises(cache.BuildError, match=rf"still held by pid {pid} after 0.5 s"):
            cache.fetch(root, KEY, BIT, _make(b"x"), lock_timeout=0.5, progress=heard.append)
        assert heard and f"waiting for pid {pid}" in heard[0]


def _killed_owner(root: Path, code: str) -> Path:
    """Run ``code`` (which makes scratch in ``root`` and prints its path) in a real process,
    SIGKILL it mid-work and return the scratch it left."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    left = Path(proc.stdout.readline().strip())
    proc.kill()
    proc.wait()
    assert left.exists() and left.parent == root
    return left


def test_a_killed_build_leaves_no_debris_after_the_next_open(tmp_path):
    root = cache.open_cache(tmp_path)
    left = _killed_owner(root, (
        "import time; from pathlib import Path; from spikegate.boards import cache\n"
        "def make(work, products):\n"
        "    (products / 'board.bin').write_bytes(b'half'); print(work, flush=True); time.sleep(60)\n"
        f"cache.fetch(Path({str(root)!r}), {KEY!r}, 'board.bin', make)\n"))
    # Debris of an older version (no owner in its name): only once it is old.
    legacy_old, legacy_new = root / ".abcdef0123456789-x1y2z3", root / ".0123456789abcdef-q1w2e3"
    legacy_old.mkdir()
    legacy_new.mkdir()
    os.utime(legacy_old, (time.time() - STALE_AGE_S - 60,) * 2)
    cache.open_cache(tmp_path)
    assert not left.exists() and not legacy_old.exists() and legacy_new.exists()
    # The killed holder's lock died with it: the next build goes ahead at once.
    assert not cache.fetch(root, KEY, BIT, _make(b"ok"), lock_timeout=1).cached


def test_killed_simulator_scratch_is_pruned(tmp_path):
    root = runner.open_build_root(tmp_path)
    left = _killed_owner(root, (
        "import time; from pathlib import Path; from spikegate.model.scratch import scratch_dir\n"
        f"d = scratch_dir(Path({str(root)!r}), 'run'); (d / 'dump.vcd').write_bytes(b'0' * 10000)\n"
        "print(d, flush=True); time.sleep(60)\n"))
    own = scratch_dir(root, ".verilator-0123")  # our own scratch is never pruned
    old_waves = root / "waves-1-run-abc.vcd"
    old_waves.write_bytes(b"x")
    os.utime(old_waves, (time.time() - STALE_AGE_S - 60,) * 2)
    runner.open_build_root(tmp_path)
    assert not left.exists() and not old_waves.exists() and own.exists()


# --- process groups -------------------------------------------------------------------------------

TREE = "sleep 300 & echo $! > {pids}; sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait"


def _pids(path: Path) -> list[int]:
    for _ in range(100):
        if path.exists() and path.read_text().count("\n") == 3:
            return [int(x) for x in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"the process tree did not start: {path.read_text() if path.exists() else ''}")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"  # a zombie has ended; only its reaping is left


def _wait_gone(pids, seconds=10.0) -> list[int]:
    t = time.monotonic() + seconds
    while time.monotonic() < t and not all(_gone(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if not _gone(p)]


def test_timeout_ends_the_whole_process_group(tmp_path):
    pids = tmp_path / "pids"
    with pytest.raises(subprocess.TimeoutExpired):
        run_in_group(["sh", "-c", TREE.format(pids=pids)], timeout=1.0, grace=1.0)
    assert _wait_gone(_pids(pids)) == []


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C as at a terminal: a run started in the background of a non-interactive shell
    inherits SIGINT ignored, and then no KeyboardInterrupt comes (the tree would run its 300 s)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def _interrupt_soon(pids: Path) -> threading.Thread:
    def fire():
        _pids(pids)
        os.kill(os.getpid(), signal.SIGINT)
    t = threading.Thread(target=fire, daemon=True)
    t.start()
    return t


def test_interrupt_ends_the_whole_process_group(tmp_path, ctrl_c_raises):
    pids = tmp_path / "pids"
    _interrupt_soon(pids)
    with pytest.raises(KeyboardInterrupt):
        run_in_group(["sh", "-c", TREE.format(pids=pids)], grace=1.0)
    assert _wait_gone(_pids(pids)) == []


def test_interrupted_flow_tool_ends_its_children(tmp_path, ctrl_c_raises):
    """boards.flow runs each tool through the process group: Ctrl-C ends the tool's children."""
    pids = tmp_path / "pids"
    _interrupt_soon(pids)
    with pytest.raises(KeyboardInterrupt):
        run_flow_tool(["sh", "-c", TREE.format(pids=pids)], tmp_path, tmp_path / "flow.log", "a tool",
                      dict(os.environ))
    assert _wait_gone(_pids(pids)) == []


@pytest.mark.parametrize("flag", ["-l", "--log"])
def test_failed_tool_error_names_the_line_from_its_own_log(tmp_path, flag):
    """Yosys run -q prints only warnings; an internal assertion's ERROR is in its -l log alone
    (a 64-lane ECP5 build's ABC9 pass did that). The build error must quote that line."""
    tool = tmp_path / "tool.py"
    tool.write_text("import sys\n"
                    "print('Warning: an unrelated warning')\n"
                    "print('ERR' + 'OR: printed and logged')\n"
                    "with open(sys.argv[2], 'w') as f:\n"
                    "    f.write('Executing ABC_OPS_REINTEGRATE\\nERROR: Assert failed in rtlil.cc:3091.\\n'\n"
                    "            'ERROR: printed and logged\\n')\n"
                    "sys.exit(1)\n")
    with pytest.raises(BuildError, match=r"(?s)a tool failed \(.* status 1\):.*ERROR: Assert failed in rtlil") as e:
        run_flow_tool([sys.executable, str(tool), flag, "own.rpt"], tmp_path, tmp_path / "flow.log",
                      "a tool", dict(os.environ))
    assert str(e.value).count("ERROR: printed and logged") == 1  # a line in both logs, quoted once


# --- spikegate cache ------------------------------------------------------------------------------

def test_cache_command_info_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPIKEGATE_CACHE", str(tmp_path))
    monkeypatch.setenv("SPIKEGATE_SIM_CACHE", str(tmp_path / "sim"))
    root = cache.open_cache()
    cache.fetch(root, KEY, BIT, _make(b"b" * 3000))
    busy = "cd" * 32
    cache.fetch(root, busy, BIT, _make(b"c" * 2000))
    damaged = "ef" * 32
    cache.fetch(root, damaged, BIT, _make(b"d" * 1000))
    (root / damaged / BIT).write_bytes(b"d")
    sim = runner.open_build_root()
    (sim / f"icarus-{'1' * 20}").mkdir()
    (sim / f"icarus-{'1' * 20}" / runner.MARKER).write_text("{}")
    (sim / f"icarus-{'1' * 20}" / "sim.vvp").write_bytes(b"v" * 500)

    assert main(["cache", "--info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    build_area, sim_area = info["areas"]
    entries = {i["name"]: i for i in build_area["items"] if i["kind"] == "entry"}
    assert entries[KEY]["status"] == "ok" and entries[KEY]["bytes"] > 3000
    assert entries[damaged]["status"].startswith("damaged: board.bin has 1 bytes")
    assert sim_area["items"][0] == {"name": f"icarus-{'1' * 20}", "kind": "entry", "bytes": 502, "status": "ok"}
    assert info["total_bytes"] == build_area["total_bytes"] + sim_area["total_bytes"] > 6000
    assert main(["cache"]) == 0
    assert "bitstream builds in" in capsys.readouterr().out

    # A build holding its entry's lock (another real process) keeps it through --clear.
    with _lock_held_elsewhere(cache.entry_lock(root, busy)):
        assert main(["cache", "--clear", "--build", "--json"]) == 0
    cleared = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in cleared["areas"]] == ["build"]
    status = {i["name"]: i["status"] for i in cleared["areas"][0]["items"]}
    assert status[KEY] == status[damaged] == "removed" and status[busy] == "in use"
    assert (root / busy / BIT).exists() and not (root / KEY).exists() and not (root / damaged).exists()
    assert cleared["removed_bytes"] > 3000 and (sim / f"icarus-{'1' * 20}").exists()
    assert main(["cache", "--clear", "--sim"]) == 0
    assert not (sim / f"icarus-{'1' * 20}").exists()
    assert "freed" in capsys.readouterr().out


def test_extracting_a_build_plan_ignores_the_working_directory(tmp_path):
    """Builds in threads of one process (bench/boards.py --jobs) each write their plan while
    another thread changes the process's working directory: every file lands in its own folder.
    (Amaranth's BuildPlan.extract writes relative to a chdir and failed this.)"""
    from amaranth.build.run import BuildPlan
    from spikegate.boards.flow import extract
    elsewhere = [tmp_path / "a", tmp_path / "b"]
    for d in elsewhere:
        d.mkdir()
    stop = threading.Event()

    def wander():
        while not stop.is_set():
            for d in elsewhere:
                os.chdir(d)

    home = os.getcwd()
    t = threading.Thread(target=wander)
    t.start()
    try:
        for k in range(200):
            plan = BuildPlan(script="build")
            plan.add_file("top.il", f"design {k}")
            plan.add_file("sub/top.pcf", f"pins {k}".encode())
            extract(plan, tmp_path / f"w{k}")
    finally:
        stop.set()
        t.join()
        os.chdir(home)
    for k in range(200):
        assert (tmp_path / f"w{k}" / "top.il").read_text() == f"design {k}"
        assert (tmp_path / f"w{k}" / "sub" / "top.pcf").read_bytes() == f"pins {k}".encode()
    assert all(not any(d.iterdir()) for d in elsewhere)
    bad = BuildPlan(script="build")
    bad.add_file("../escape", "x")
    with pytest.raises(Exception, match="outside its folder"):
        extract(bad, tmp_path / "w")
