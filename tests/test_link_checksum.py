"""CHECKSUM (issue 11, defect 3): the gateware's CRC-32 over every weight, bias and threshold against
``model.link.expected_checksum``, its cycle cost against ``checksum_cycles``, in Amaranth's simulator."""
import zlib

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from spikegate.hdl.core import NetworkCore
from spikegate.hdl.link.checksum import ChecksumWalker
from spikegate.model import link as proto
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.link import CfgTarget, Cmd, Status
from spikegate.model.random import random_network
from test_link_engine import Harness, run_engine, write
from waits import until
from conftest import run_testbench


def test_expected_checksum_is_zlib_crc32_of_the_write_encoding():
    net = random_network(2, (3, 2, 2), readout=True, timesteps=2, weight_bits=12, membrane_bits=20)
    s = proto.checksum_stream(net)
    l0, l1 = net.layers
    # 2-byte weights, 3-byte biases and thresholds; no threshold for the readout layer
    assert len(s) == 3 * 2 * 2 + 2 * 3 + 3 + 2 * 2 * 2 + 2 * 3
    assert s[:2] == int(l0.weights[0, 0] & 0xFFFF).to_bytes(2, "little")
    assert s[2:4] == int(l0.weights[0, 1] & 0xFFFF).to_bytes(2, "little")  # row by row
    assert s[12:15] == int(l0.bias[0] & 0xFFFFFF).to_bytes(3, "little")
    assert s[18:21] == int(l0.threshold).to_bytes(3, "little")
    assert proto.expected_checksum(net) == zlib.crc32(s)


def test_documented_digits_cost():
    from spikegate.datasets import load_network
    assert proto.checksum_cycles(load_network(None)) == 14511  # the example in docs/protocol.md


@pytest.mark.parametrize("sizes, readout, wb, vb, lanes, registered_reads", [
    ((5, 3, 3), False, 6, 12, 2, False), ((4, 5, 2), True, 12, 20, 4, False),
    ((5, 3, 3), False, 6, 12, 2, True), ((4, 5, 2), True, 12, 20, 4, True)])
def test_checksum_matches_twin(sizes, readout, wb, vb, lanes, registered_reads):
    net = random_network(5, sizes, readout=readout, timesteps=2, weight_bits=wb, membrane_bits=vb)
    dut = Harness(net, lanes=lanes, max_events=16, registered_reads=registered_reads)
    geo = dut.geo
    twin = proto.CommandEngine(net, geo, CoreTwin(net, geo.hardware()))
    wlo, whi = geo.value_range(0, CfgTarget.WEIGHT)
    blo, bhi = geo.value_range(1, CfgTarget.BIAS)
    frames = [
        (Cmd.CHECKSUM, b""),
        (Cmd.WRITE, write(0, CfgTarget.WEIGHT, sizes[0] - 1, 1, [whi, wlo], geo)),
        (Cmd.CHECKSUM, b""),
        (Cmd.WRITE, write(1, CfgTarget.BIAS, 0, sizes[2] - 1, [blo], geo)),
        (Cmd.WRITE, write(0, CfgTarget.THRESHOLD, 0, 0, [7], geo)),
        (Cmd.CHECKSUM, b""),
        (Cmd.CHECKSUM, b"\x00"),
    ]
    got = run_engine(dut, frames)
    want = [twin.execute(c, p) for c, p in frames]
    assert got == want
    assert [g[0] for g in got] == [0] * 6 + [Status.BAD_LENGTH]
    assert got[0][1] == proto.expected_checksum(net).to_bytes(4, "little")
    assert got[5][1] == proto.expected_checksum(twin.net).to_bytes(4, "little") != got[0][1]


@pytest.mark.parametrize("registered_reads", [False, True])
def test_checksum_cycles_match_the_formula(registered_reads):
    """(With registered reads the walker reads the next value's address while the bytes of this
    one go into the CRC: the same count.)"""
    net = random_network(6, (3, 4, 2), readout=False, timesteps=2, weight_bits=12, membrane_bits=12)
    dut = Harness(net, lanes=2, max_events=16, registered_reads=registered_reads)
    assert checksum_cycles_of(dut) == proto.checksum_cycles(net)


def checksum_cycles_of(dut) -> int:
    """Cycles of a CHECKSUM on the engine of ``dut``, from taking the frame to the answer header."""
    eng = dut.engine
    seen = {}

    async def bench(ctx):
        ctx.set(eng.resp.ready, 1)
        ctx.set(eng.data.ready, 1)
        ctx.set(eng.frame.payload.cmd, Cmd.CHECKSUM)
        ctx.set(eng.frame.valid, 1)
        await until(ctx, lambda: ctx.get(eng.frame.ready), "frame.ready")
        await ctx.tick()
        ctx.set(eng.frame.valid, 0)
        # the cycle that took the frame, then the walk
        seen["cycles"] = 1 + await until(ctx, lambda: ctx.get(eng.resp.valid), "the CHECKSUM answer")

    run_testbench(dut, bench, period=1e-6)
    return seen["cycles"]


class WalkerOnCore(wiring.Component):
    """The walker on a core's parameter port, nothing between them."""

    def __init__(self, net, lanes, registered_reads):
        geo = proto.LinkGeometry.of(net, lanes, 1_000_000, 100_000, 64, 16, registered_reads=registered_reads)
        self.core = NetworkCore(net, geo.hardware())
        self.walker = ChecksumWalker(net, geo, self.core)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core, m.submodules.walker = core, walker = self.core, self.walker
        m.d.comb += [core.param_addr.eq(walker.param_addr), walker.param_data.eq(core.param_data)]
        return m


@pytest.mark.parametrize("registered_reads", [False, True])
def test_walks_back_to_back(registered_reads):
    """``start`` in the first cycle after ``done``: the second walk's first value is read at once
    (with registered reads, 3 cycles after its address: 1-byte weights leave no cycle to spare)."""
    net = random_network(8, (5, 6, 3), readout=False, timesteps=2, weight_bits=6, membrane_bits=12)
    dut = WalkerOnCore(net, 4, registered_reads)
    assert dut.core.param_latency == (3 if registered_reads else 1)
    walker, want = dut.walker, proto.expected_checksum(net)
    crcs = []

    async def bench(ctx):
        await ctx.tick()
        for _ in range(3):
            ctx.set(walker.start, 1)
            await ctx.tick()
            ctx.set(walker.start, 0)
            cycles = 1 + await until(ctx, lambda: ctx.get(walker.done), "done")
            crcs.append((ctx.get(walker.crc), cycles))
            await ctx.tick()  # the walker is idle from the next cycle: start it there

    run_testbench(dut, bench)
    # ticks from the cycle with start to the one with done: IDLE's cycle and the values' (the
    # formula's constant 3 counts the engine's cycles around the walk instead)
    assert crcs == [(want, proto.checksum_cycles(net) - 2)] * 3
