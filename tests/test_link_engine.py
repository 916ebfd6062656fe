"""CommandEngine with a real NetworkCore against its byte-level twin (Amaranth simulator): checked
frames in, (status, payload) answers out, without the framing around them."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from spikegate.hdl.core import NetworkCore
from spikegate.hdl.link.engine import CommandEngine, connect_core
from spikegate.hdl.link.signatures import small
from spikegate.model import link as proto
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.link import CfgTarget, Cmd, Status
from spikegate.model.protocol import STATUS_FIELDS, STATUS_LEN, field
from spikegate.model.random import random_network, random_spikes
from waits import until, within
from conftest import run_testbench

MAX_PAYLOAD = 64


class Harness(wiring.Component):
    """The engine, the core it drives and a payload buffer the test bench fills (with
    ``registered_reads``, read through a flip-flop as the decoder's is)."""

    def __init__(self, net, lanes, max_events, encoder=True, ident_block=False, registered_reads=False):
        self.geo = proto.LinkGeometry.of(net, lanes, 1_000_000, 100_000, MAX_PAYLOAD, max_events,
                                         registered_reads=registered_reads)
        self.core = NetworkCore(net, self.geo.hardware())
        static = proto.identify_static(self.geo, proto.structure_digest(net), proto.content_digest(net))
        self.engine = CommandEngine(net, self.geo, self.core, static, encoder=encoder, ident_block=ident_block)
        super().__init__({"buf_addr": wiring.In(range(MAX_PAYLOAD)), "buf_data": wiring.In(8),
                          "buf_en": wiring.In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core, m.submodules.engine = core, eng = self.core, self.engine
        m.submodules.buf = buf = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        wr, rd = buf.write_port(), buf.read_port()
        data = rd.data
        if self.geo.registered_reads:
            data = Signal(8)
            m.d.sync += data.eq(rd.data)
        m.d.comb += [wr.addr.eq(self.buf_addr), wr.data.eq(self.buf_data), wr.en.eq(self.buf_en),
                     rd.addr.eq(eng.buf.addr), eng.buf.data.eq(data), eng.buf.small.eq(small(data))]
        connect_core(m, eng, core)
        return m


def run_engine(dut, frames):
    """Each (cmd, payload) into the buffer, then offered on ``frame``; returns (status, payload)."""
    eng = dut.engine
    answers = []

    async def bench(ctx):
        ctx.set(eng.resp.ready, 1)
        ctx.set(eng.data.ready, 1)
        for tag, (cmd, payload) in enumerate(frames):
            for a, b in enumerate(payload):
                ctx.set(dut.buf_addr, a)
                ctx.set(dut.buf_data, b)
                ctx.set(dut.buf_en, 1)
                await ctx.tick()
            ctx.set(dut.buf_en, 0)
            for f, v in (("cmd", cmd), ("tag", tag), ("length", len(payload))):
                ctx.set(getattr(eng.frame.payload, f), v)
            ctx.set(eng.frame.valid, 1)
            await until(ctx, lambda: ctx.get(eng.frame.ready), f"frame.ready for frame {tag}")
            await ctx.tick()
            ctx.set(eng.frame.valid, 0)
            await until(ctx, lambda: ctx.get(eng.resp.valid), f"answer to frame {tag}")
            hdr = {f: ctx.get(getattr(eng.resp.payload, f)) for f in ("cmd", "tag", "status", "length")}
            assert (hdr["cmd"], hdr["tag"]) == (cmd & 0xFF, tag)
            await ctx.tick()
            data = bytearray()
            for _ in within(f"{hdr['length']} answer bytes to frame {tag}"):
                if len(data) == hdr["length"]:
                    break
                if ctx.get(eng.data.valid):
                    data.append(ctx.get(eng.data.payload))
                await ctx.tick()
            answers.append((hdr["status"], bytes(data)))

    run_testbench(dut, bench, period=1e-6)
    return answers


def strip_uptime(cmd, answer):
    status, p = answer
    if cmd == Cmd.STATUS and status == Status.OK and len(p) == STATUS_LEN:
        f = field(STATUS_FIELDS, "uptime")
        p = p[:f.offset] + bytes(f.size) + p[f.offset + f.size:]
    return status, p


def engine_matches_twin(dut, twin, frames):
    """Run ``frames`` through the gateware engine and the twin; every answer equal (uptime aside).
    Returns the gateware's answers."""
    got = run_engine(dut, frames)
    want = [twin.execute(c, p) for c, p in frames]
    for (cmd, p), g, w in zip(frames, got, want):
        assert strip_uptime(cmd, g) == strip_uptime(cmd, w), f"cmd {cmd:#x} payload {p.hex()}"
    return got


def write(layer, target, row, col, values, geo):
    vb = geo.write_value_bytes(layer, target)
    return (bytes([layer, target]) + proto.to_le(row, 2) + proto.to_le(col, 2) + proto.to_le(len(values), 2)
            + b"".join(proto.to_le(v, vb) for v in values))


@pytest.mark.parametrize("ident_block, registered_reads", [(False, False), (True, False), (False, True),
                                                           (True, True)])
def test_engine_matches_twin(ident_block, registered_reads):
    """(``ident_block``: the identify payload in logic or in a block RAM: IDENTIFY before and after
    SET_NET_ID. ``registered_reads``: every block RAM read and the core's peeks a cycle later.)"""
    net = random_network(4, (5, 4, 3), readout=False, timesteps=3, weight_bits=6, membrane_bits=12)
    dut = Harness(net, lanes=2, max_events=32, ident_block=ident_block, registered_reads=registered_reads)
    geo = dut.geo
    twin = proto.CommandEngine(net, geo, CoreTwin(net, geo.hardware()))
    s = random_spikes(3, 1, 3, 5, p=0.5)[0]
    ev = proto.encode_events(s, geo)
    wlo, whi = geo.value_range(0, CfgTarget.WEIGHT)
    tlo, thi = geo.value_range(1, CfgTarget.THRESHOLD)
    frames = [
        (Cmd.IDENTIFY, b""),
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev),
        (Cmd.WRITE, write(0, CfgTarget.WEIGHT, 4, 1, [whi, wlo, 0], geo)),
        (Cmd.WRITE, write(0, CfgTarget.WEIGHT, 0, 0, [whi + 1], geo)),        # value out of range
        (Cmd.WRITE, write(1, CfgTarget.THRESHOLD, 0, 0, [thi], geo)),
        (Cmd.WRITE, write(1, CfgTarget.THRESHOLD, 0, 0, [thi + 1], geo)),     # at the rail
        (Cmd.WRITE, write(1, CfgTarget.BIAS, 0, 2, [-3, 4], geo)),            # col 2 + 2 > 3 neurons
        (Cmd.WRITE, bytes([0, 3, 0, 0, 0, 0, 1, 0, 0, 0])),                   # no such target
        (Cmd.RUN, b""),
        (Cmd.READ, b""),
        (Cmd.SET_NET_ID, bytes(range(16))),
        (Cmd.IDENTIFY, b""),
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR]) + bytes([0x80] * 33)),           # over max_events
        (0x55, b""),
        (Cmd.CLEAR, b"x"),
        (Cmd.STATUS, b""),
        # the length check multiplies the count by the value's bytes: 2 for a threshold or a bias here
        (Cmd.WRITE, write(1, CfgTarget.THRESHOLD, 0, 0, [thi], geo)[:-1]),  # a byte short
        (Cmd.WRITE, write(0, CfgTarget.BIAS, 0, 0, [1, 2], geo) + b"\0"),    # a byte over
        (Cmd.WRITE, write(0, CfgTarget.BIAS, 0, 1, [1, 2, 3], geo)),          # 3 x 2 bytes
        # flags alone (length 1: L_NEXT finds the end as soon as the flags are read), then a word
        # without the clear flag and a run of what is buffered
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR])),
        (Cmd.LOAD, bytes([0]) + ev[:geo.event_bytes]),
        (Cmd.LOAD, bytes([proto.LOAD_RUN])),
    ]
    assert geo.write_value_bytes(1, CfgTarget.THRESHOLD) == geo.write_value_bytes(0, CfgTarget.BIAS) == 2
    got = engine_matches_twin(dut, twin, frames)
    assert [g[0] for g in got] == [0, 0, 0, Status.RANGE, 0, Status.RANGE, Status.RANGE, Status.RANGE, 0, 0, 0, 0,
                                   Status.OVERFLOW, Status.UNKNOWN_CMD, Status.BAD_LENGTH, 0,
                                   Status.BAD_LENGTH, Status.BAD_LENGTH, 0, 0, 0, 0]
    # The twin's network follows the writes; the engine's run on the core computed with them.
    assert np.array_equal(twin.net.layers[0].weights[4, 1:4], [whi, wlo, 0])
    assert twin.net.layers[1].threshold == thi
