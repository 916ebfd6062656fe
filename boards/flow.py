"""The tool flow of one build: synthesis, the post-synthesis resource check, place and route
with ``--report``, packing; its products go into a build-cache entry (:mod:`.cache`).

Each tool runs in a process group of its own, ended as a whole when the build is interrupted,
fails or runs past its deadline (:mod:`..model.procgroup`)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path, PurePosixPath
from typing import Callable

from ..model.procgroup import run_in_group
from . import fit, logs
from .outreg import merge_in_netlist
from .cache import BUILD_TIMEOUT_S
from .dfu import dfu_suffix
from .errors import BuildError
from .targets import Board
from ..hdl.synapse import NO_RW_CHECK

__all__ = ["NAME", "NOT_RUN", "NO_RW_CHECK_SCRIPT", "synth_options", "extract", "run_flow", "timeout_advice"]

# The top module's name in Amaranth's build plan (its files are NAME.*).
NAME = "top"
# Tools Amaranth lists as required that the build itself does not run.
NOT_RUN = {"openFPGALoader", "dfu-suffix", "iceprog", "dfu-util"}


# Amaranth writes synchronous read ports, and Yosys reads a memory's ``no_rw_check`` attribute only
# where it merges flip-flops into an asynchronous one (memory_dff); so the attribute alone changed
# nothing, and every block RAM read carried soft logic returning the old word on a collision: a
# LUT between the block and its reader and registers beside it (ULX3S digits: 418 LUTs and 607
# flip-flops; iCEBreaker digits: 474 of its 5,280 logic cells; docs/timing.md). This marks the
# reads of those memories "collision gives x" (RD_COLLISION_X_MASK, one bit per read and write
# port pair, so one command per port count); the simulations check that no such read is used
# (sim.collisions).
NO_RW_CHECK_SCRIPT = "\n".join(
    ["proc", "memory_collect"]
    + [f"setparam -set RD_COLLISION_X_MASK {r * w}'b{'1' * (r * w)} t:$mem_v2 a:{NO_RW_CHECK} %i "
       f"r:RD_PORTS={r} %i r:WR_PORTS={w} %i" for r in range(1, 5) for w in range(1, 5)])


def synth_options(board: Board) -> dict:
    """Extra Amaranth build overrides for ``board``'s synthesis, the one place they are chosen.

    iCE40 UltraPlus: ``synth_ice40 -dsp`` maps wide multiplies and multiply-adds into the SB_MAC16
    DSPs the design leaves unused otherwise (a plastic digits network at 1 lane: 94 logic cells
    fewer, 4 of the 8 DSPs). ECP5's synthesis uses its DSPs by default. Every family:
    :data:`NO_RW_CHECK_SCRIPT` after reading the design."""
    opts = {"script_after_read": NO_RW_CHECK_SCRIPT}
    if board.family == "ice40" and board.dsps:
        opts["synth_opts"] = "-dsp"
    return opts


def _stage_name(tool: str) -> str:
    if tool == "yosys":
        return "synthesis"
    if tool.startswith("nextpnr"):
        return "place and route"
    return "bitstream packing"


def _run(cmd: list[str], cwd: Path, log: Path, desc: str, env: dict, timeout: float | None = None) -> None:
    """Run one tool, its output appended to ``log``; the tool and its children are ended if we
    are interrupted or it runs for more than ``timeout`` seconds (subprocess.TimeoutExpired)."""
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(cmd)}\n".encode())
        f.flush()
        status = run_in_group(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    if status != 0:
        own = _own_log(cmd, cwd)
        raise BuildError(f"{desc} failed ({Path(cmd[0]).name} exited with status "
                         f"{status}):\n  {logs.error_lines(log, *([own] if own else []))}")


def _own_log(cmd: list[str], cwd: Path) -> Path | None:
    """The file a tool writes its whole log to (``yosys -l FILE``, ``nextpnr --log FILE``). Yosys
    run ``-q`` prints only warnings, and an internal assertion's ERROR line is in that file only."""
    for flag in ("-l", "--log"):
        if flag in cmd[:-1]:
            return cwd / cmd[cmd.index(flag) + 1]
    return None


def extract(plan, work: Path) -> None:
    """Write ``plan``'s files under ``work``. Amaranth's ``BuildPlan.extract`` changes the
    process's working directory while it writes, so two builds in threads of one process
    (``bench/boards.py --jobs``, a threaded Dask worker) put files in each other's folders, or fail
    when the folder one of them saved as its way back is removed under it."""
    for name, content in plan.files.items():
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise BuildError(f"the build plan names a file outside its folder: {name!r}")
        path = work.joinpath(*rel.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)


def timeout_advice(cmd: list[str]) -> str:
    """What a build stopped at its deadline while running ``cmd`` can try besides more time."""
    # nextpnr's router1 can go on for hours on a congested large design that router2 routes in
    # minutes (docs/timing.md: the ULX3S's 784-128-10 build at 64 lanes).
    if cmd[0].startswith("nextpnr") and "router2" not in cmd:
        return "; if it was still routing, `--router router2` may finish it"
    return ""


def run_flow(plan, board: Board, tools: dict[str, str], work: Path, products: Path, lanes,
             progress: Callable[[str], None], timeout: float | None = None) -> None:
    """Run every tool of ``plan`` in the scratch folder ``work`` and copy the products (bitstream,
    reports, log, ``result.json``) into the folder ``products`` (a cache entry in the making).

    ``lanes`` only words the resource errors; ``progress`` gets a line per tool. The tools get
    ``timeout`` seconds together (default :data:`.cache.BUILD_TIMEOUT_S`); past it the running one is
    ended and BuildError raised.
    """
    timeout = BUILD_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    extract(plan, work)
    commands = json.loads(plan.files[f"build_{NAME}.json"])["commands"]
    env = dict(os.environ)
    log = work / "flow.log"
    tool_seconds = {}
    netlist = work / (f"{NAME}.syn.json" if board.family == "gowin" else f"{NAME}.json")
    cells = {}
    output_registers = None
    runs = [cmd for cmd in commands if cmd[0] != "dfu-suffix"]
    k = 0
    for cmd in commands:
        tool = cmd[0]
        if tool == "dfu-suffix":
            dfu_suffix(work / f"{NAME}.bit")
            continue
        stage = _stage_name(tool)
        desc = f"build {board.name}: {stage} ({Path(tools[tool]).name})"
        k += 1
        progress(f"{desc} [{k}/{len(runs)}] ...")
        ts = time.monotonic()
        try:
            _run([tools[tool]] + cmd[1:], work, log, desc, env, timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise BuildError(f"{desc} did not finish within the {timeout:g} s a build's tools get together "
                             f"(`spikegate build --timeout S`, default {BUILD_TIMEOUT_S:g}); it was stopped and "
                             f"nothing was cached{timeout_advice(cmd)}") from None
        except BuildError:
            if tool.startswith("nextpnr"):
                logs.raise_pnr_resource_error(work / f"{NAME}.tim", board, lanes)
            raise
        if tool == "yosys":
            if board.family == "ecp5":
                # (before the cell count: the flip-flops taken into blocks are no longer cells)
                output_registers = merge_in_netlist(netlist)
            cells = fit.classify_cells(board.family, logs.cell_counts(netlist))
            fit.check_cells(board, cells, lanes)
        tool_seconds[stage] = round(time.monotonic() - ts, 1)
    progress(f"build {board.name}: tools done in {sum(tool_seconds.values()):.1f} s")
    rep_path = work / "report.json"
    rep = json.loads(rep_path.read_text()) if rep_path.is_file() else {}
    result = {"utilization": logs.utilisation(board, cells, rep),
              "timing": logs.timing(rep, logs.constraint_from(rep)),
              "cells": cells, "tool_seconds": tool_seconds, "bram_output_registers": output_registers}
    shutil.copyfile(work / f"{NAME}{board.bitstream_ext}", products / board.bitstream_name)
    for f in ("report.json", f"{NAME}.tim", f"{NAME}.rpt", "flow.log"):
        if (work / f).is_file():
            shutil.copyfile(work / f, products / f)
    (products / "result.json").write_text(json.dumps(result, indent=1))
