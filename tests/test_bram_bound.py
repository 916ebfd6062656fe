"""bench/bram_bound.py: its Yosys commands really put every ECP5 block RAM's read through the
block's output register (checked on the real Yosys netlist), its critical-path summary, and its
refusal of boards and networks it cannot measure."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from amaranth.hdl import Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.memory import Memory

from spikegate.boards.flow import NAME, extract
from spikegate.boards.targets import get_board
from spikegate.boards.toolchain import resolve
from spikegate.hdl.synapse import BLOCK_RAM_NO_COLLISION
from spikegate.hdl.synth import RAM_CELLS
from spikegate.model.random import random_network

import benches


class _TwoMemories(Elaboratable):
    """Two memories, each read into the other's write data so that neither is optimised away: a
    64-bit-wide one shaped like a layer's state memory (its blocks' two ports ganged) and an
    18-bit one (one port each)."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.wide = wide = Memory(shape=64, depth=16, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        m.submodules.narrow = narrow = Memory(shape=18, depth=1024, init=[])
        w_rd, w_wr = wide.read_port(), wide.write_port()
        n_rd, n_wr = narrow.read_port(), narrow.write_port()
        addr = Signal(10)
        m.d.sync += addr.eq(addr + 1)
        m.d.comb += [w_rd.addr.eq(addr), w_wr.addr.eq(addr[2:]), w_wr.data.eq(n_rd.data.replicate(4)), w_wr.en.eq(1),
                     n_rd.addr.eq(addr), n_wr.addr.eq(~addr),
                     n_wr.data.eq(w_rd.data[:18] ^ w_rd.data[18:36] ^ w_rd.data[36:54]), n_wr.en.eq(1)]
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.d.comb += led.o.eq(n_rd.data.xor() ^ w_rd.data.xor())
        return m


def _block_ram_modes(tmp_path: Path, options: dict) -> dict[str, list[str]]:
    """Synthesise _TwoMemories for the ULX3S with ``options``: each block RAM cell's REGMODE
    parameter values in the netlist, by cell name."""
    board = get_board("ulx3s-85f")
    plan = board.platform().prepare(_TwoMemories(), name=NAME, **options)
    extract(plan, tmp_path)
    subprocess.run([resolve("yosys"), "-q", f"{NAME}.ys"], cwd=tmp_path, check=True, timeout=300,
                   capture_output=True)
    cells = json.loads((tmp_path / f"{NAME}.json").read_text())["modules"][NAME]["cells"]
    return {name: [v.strip() for k, v in sorted(cell["parameters"].items()) if k.startswith("REGMODE")]
            for name, cell in cells.items() if cell["type"] in RAM_CELLS["ecp5"]}


def test_outreg_puts_every_block_ram_read_through_its_output_register(tmp_path):
    bench = benches.load("bram_bound")
    board = get_board("ulx3s-85f")
    plain = _block_ram_modes(tmp_path / "plain", dict(bench.board_build.synth_options(board)))
    # three blocks: the wide memory's two, the narrow one's
    assert len(plain) == 3 and all(v == ["NOREG", "NOREG"] for v in plain.values()), plain
    bound = _block_ram_modes(tmp_path / "bound", bench.synth_with_outreg(board))
    assert bound == {name: ["OUTREG", "OUTREG"] for name in plain}


def test_critical_path_summary(tmp_path):
    hop = lambda kind, delay, a, b: {"type": kind, "delay": delay, "from": {"cell": a}, "to": {"cell": b}}
    rep = {"critical_paths": [
        {"from": "<async>", "to": "posedge clk", "path": [hop("source", 0.0, "btn", "btn"), hop("routing", 5.0, "btn", "ff")]},
        {"from": "posedge clk", "to": "posedge clk", "path": [
            hop("clk-to-q", 5.83, "mem.0", "mem.0"), hop("routing", 2.29, "mem.0", "lut"),
            hop("logic", 0.24, "lut", "lut"), hop("routing", 0.13, "lut", "ff"), hop("setup", 0.0, "ff", "ff")]}]}
    (tmp_path / "report.json").write_text(json.dumps(rep))
    assert benches.load("bram_bound").critical_path(tmp_path / "report.json") == {
        "from": "mem.0", "to": "ff", "ns": 8.49, "clk-to-q": 5.83, "logic": 0.24, "routing": 2.42}
    (tmp_path / "report.json").write_text(json.dumps({"critical_paths": rep["critical_paths"][:1]}))
    assert benches.load("bram_bound").critical_path(tmp_path / "report.json") == {}


@pytest.mark.parametrize("argv,message", [
    (["--boards", "icebreaker"], "--boards 'icebreaker' is not valid; valid: ECP5 boards"),
    (["--boards", "nosuch"], "--boards: board = 'nosuch' is not a known board"),
    (["--networks", "cifar"], "--networks 'cifar' is not valid; valid: digits, mnist-784-128-10"),
    (["--networks", "mnist-784-128-10"], "--mnist-net FILE is needed"),
    (["--jobs", "0"], "--jobs 0 is not valid"),
])
def test_refuses_what_it_cannot_measure_before_building(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        benches.load("bram_bound").main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_text_from_the_measured_rows_and_a_design_that_does_not_fit(tmp_path):
    bench = benches.load("bram_bound")
    rows = json.loads((benches.BENCH / "bram_bound.json").read_text())["rows"]
    net = random_network(0, (784, 128, 10), weight_bits=8, membrane_bits=16, readout=False, timesteps=16)
    # refused by build's pre-check: no tool runs
    big = bench.one("orangecrab-25f", "mnist-784-128-10", net, None, False, tmp_path / "cache", tmp_path / "out")
    assert big["fits"] is False and "block RAM" in big["error"]
    lines = bench.format_text([rows[0], {"board": "orangecrab-25f", "network": "mnist-784-128-10", "seed": 1,
                                         "design": big, "bound": big}]).splitlines()
    assert lines[0] == ("ulx3s-85f / digits, seed default: fmax 76.09 MHz, with registered block RAM reads "
                        "115.00 MHz (x1.51)")
    assert lines[1].startswith("  bound's critical path 8.70 ns (clock-to-data 0.52, logic 3.31, routing 4.86): ")
    assert lines[2].startswith("orangecrab-25f / mnist-784-128-10, seed 1: does not fit: ")
    assert not (tmp_path / "out").exists()
