"""Read/write collisions in the simulated block RAMs (sim.collisions) and in the board builds.

The board builds let a read that collides with a write in a ``no_rw_check`` memory return
anything (boards.flow.synth_options); every Verilator run of the generated core and host link
simulates such a read as garbage (sim.runner.export_verilog), so the regression suite checks the
schedule's claim that none is used. Here: the poisoning itself, on a small memory, in Amaranth's
simulator; that the simulations use it; and that the synthesis script takes the attribute.
"""
from __future__ import annotations

import pytest
from amaranth.hdl import Fragment, Module, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from spikegate.hdl.synapse import BLOCK_RAM, BLOCK_RAM_NO_COLLISION
from spikegate.sim.collisions import CollisionPoison


class TwoPorts(wiring.Component):
    """A 2-lane memory of 4-bit lanes with one synchronous read port and one lane-masked write port."""

    def __init__(self, attrs):
        self.attrs = attrs
        super().__init__({"raddr": In(3), "ren": In(1), "rdata": Out(8),
                          "waddr": In(3), "wdata": In(8), "wen": In(2)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(8), depth=8, init=[0x10 * k + k for k in range(8)],
                                        attrs=self.attrs)
        r, w = mem.read_port(), mem.write_port(granularity=4)
        m.d.comb += [r.addr.eq(self.raddr), r.en.eq(self.ren), self.rdata.eq(r.data),
                     w.addr.eq(self.waddr), w.data.eq(self.wdata), w.en.eq(self.wen)]
        return m


def _reads(attrs, steps):
    """``steps``: (raddr, ren, waddr, wdata, wen) per cycle; the read data after each cycle."""
    dut = TwoPorts(attrs)
    platform = CollisionPoison()
    sim = Simulator(Fragment.get(dut, platform))
    sim.add_clock(1e-6)
    seen = []

    async def bench(ctx):
        for raddr, ren, waddr, wdata, wen in steps:
            ctx.set(dut.raddr, raddr)
            ctx.set(dut.ren, ren)
            ctx.set(dut.waddr, waddr)
            ctx.set(dut.wdata, wdata)
            ctx.set(dut.wen, wen)
            await ctx.tick()
            seen.append(ctx.get(dut.rdata))

    sim.add_testbench(bench)
    sim.run()
    return seen, platform.hits


def test_a_colliding_read_returns_its_written_lanes_inverted():
    steps = [
        (3, 1, 5, 0xAB, 0b00),   # no write: the word at 3
        (5, 1, 5, 0xCD, 0b01),   # collision, low lane written: old word 0x55 with the low lane inverted
        (5, 0, 0, 0x00, 0b00),   # port not enabled: holds that word and its poison
        (5, 1, 5, 0xEF, 0b10),   # the word written two cycles ago is 0x5D; high lane written: 0xAD
        (5, 1, 0, 0x00, 0b00),   # no write: the word as written, 0xED
    ]
    seen, hits = _reads(BLOCK_RAM_NO_COLLISION, steps)
    assert hits == 1
    assert seen == [0x33, 0x55 ^ 0x0F, 0x55 ^ 0x0F, 0x5D ^ 0xF0, 0xED]


def test_a_memory_without_the_attribute_keeps_the_old_word():
    steps = [(5, 1, 5, 0xCD, 0b11), (5, 1, 0, 0, 0)]
    seen, hits = _reads(BLOCK_RAM, steps)
    assert hits == 0
    assert seen == [0x55, 0xCD]


def test_the_simulations_are_built_with_poisoned_collisions():
    from spikegate.sim import runner
    from spikegate.hdl.core import NetworkCore
    from spikegate.model.hardware import HardwareConfig
    from spikegate.model.random import random_network

    net = random_network(1, (6, 5, 3))
    text = runner.export_verilog(NetworkCore(net, HardwareConfig(lanes=2, max_events=64)))
    assert "collision0" in text  # the poison register of a no_rw_check read port


@pytest.mark.parametrize("family", ["ice40", "ecp5", "gowin"])
def test_synthesis_lets_no_rw_check_reads_collide(family):
    # every family's Yosys script marks those reads before synthesis
    from spikegate.boards.flow import NO_RW_CHECK_SCRIPT, synth_options
    from spikegate.boards.targets import BOARDS
    from spikegate.boards.top import ResultSnoop

    board = next(b for b in BOARDS.values() if b.family == family)
    script = board.platform().prepare(ResultSnoop(10, 4), name="top", **synth_options(board)).files["top.ys"]
    assert "memory_collect" in NO_RW_CHECK_SCRIPT and "a:no_rw_check" in NO_RW_CHECK_SCRIPT
    assert script.index(NO_RW_CHECK_SCRIPT) < script.index("synth_")
