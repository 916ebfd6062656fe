"""The ENCODE command: CommandEngine (with its InputEncoder and a real NetworkCore) against the
byte-level twin, its refusals, overflow, and its exact cycle cost (Amaranth simulator)."""
import numpy as np
import pytest

from test_link_engine import Harness, run_engine, strip_uptime
from waits import until

from spikegate.hdl.link.engine import CommandEngine
from spikegate.model import link as proto
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.encode import bernoulli_state, from_levels
from spikegate.model.hardware import HardwareConfig
from spikegate.model.link import Cmd, Status, encode_cycles
from spikegate.model.protocol import BATCH_RECORD, ENCODE_HEADER, Encoding, layout_len, pack_fields
from spikegate.model.random import random_network
from spikegate.model.simulate import simulate
from conftest import run_testbench


def encode_payload(encoding: Encoding, state: int, levels) -> bytes:
    return pack_fields(ENCODE_HEADER, {"encoding": encoding, "state": state}) + bytes(int(v) for v in levels)


NET = random_network(7, (5, 4, 3), readout=False, timesteps=3, weight_bits=6, membrane_bits=12)


def twin_engine(max_events, registered_reads=False):
    geo = proto.LinkGeometry.of(NET, 2, 1_000_000, 100_000, 64, max_events,  # as test_link_engine's Harness
                                registered_reads=registered_reads)
    return proto.CommandEngine(NET, geo, CoreTwin(NET, geo.hardware()))


def setup(max_events=32, registered_reads=False):
    dut = Harness(NET, lanes=2, max_events=max_events, registered_reads=registered_reads)
    twin = twin_engine(max_events, registered_reads)
    assert twin.geo == dut.geo
    return NET, dut, twin


@pytest.mark.parametrize("registered_reads", [False, True])
def test_encode_matches_twin_and_model(registered_reads):
    net, dut, twin = setup(max_events=16, registered_reads=registered_reads)
    q = [0, 255, 128, 40, 200]
    s = bernoulli_state(9, 0)
    frames = [
        (Cmd.ENCODE, encode_payload(Encoding.RATE, 0, q)),
        (Cmd.ENCODE, encode_payload(Encoding.LATENCY, 0, q)),
        (Cmd.ENCODE, encode_payload(Encoding.BERNOULLI, s, q)),
        (Cmd.STATUS, b""),
        (Cmd.ENCODE, encode_payload(Encoding.RATE, 0, q[:4])),                 # one level short
        (Cmd.ENCODE, encode_payload(Encoding.RATE, 0, q) + b"\0"),             # one too many
        (Cmd.ENCODE, encode_payload(3, 1, q)),                                 # no such encoding
        (Cmd.ENCODE, encode_payload(Encoding.BERNOULLI, 0, q)),                # a state of 0 never moves
        (Cmd.ENCODE, encode_payload(Encoding.LATENCY, 5, q)),                  # a state it would ignore
        (Cmd.ENCODE, encode_payload(Encoding.RATE, 0, [255] * 5)),             # 3 * 6 = 18 words > 16
        (Cmd.STATUS, b""),                                                     # overflow flag, 16 loaded
        (Cmd.READ, b""),
        (Cmd.ENCODE, encode_payload(Encoding.RATE, 0, [255, 255, 255, 0, 0])),  # 12 words fit again
        (Cmd.STATUS, b""),
    ]
    got = run_engine(dut, frames)
    want = [twin.execute(c, p) for c, p in frames]
    for (cmd, p), g, w in zip(frames, got, want):
        assert strip_uptime(cmd, g) == strip_uptime(cmd, w), f"cmd {cmd:#x} payload {p.hex()}"
    assert [g[0] for g in got] == [0, 0, 0, 0, Status.BAD_LENGTH, Status.BAD_LENGTH, Status.RANGE, Status.RANGE,
                                   Status.RANGE, Status.OVERFLOW, 0, 0, 0, 0]
    overflowed = proto.StatusBlock.parse(got[10][1])
    assert overflowed.flags & 2 and overflowed.loaded == 16
    assert proto.StatusBlock.parse(got[13][1]).flags & 2 == 0
    # The answers are the contract's: the model run on the contract's spikes of those levels.
    for (cmd, p), (status, answer), (enc, st) in zip(frames[:3], got[:3], [("rate", None), ("latency", None),
                                                                             ("bernoulli", [s])]):
        spikes = from_levels(np.array([q]), enc, net.timesteps, st)
        ref = simulate(net, spikes)
        counts, mems = proto.decode_outputs(answer[4:], dut.geo)
        assert counts.tolist() == ref.counts[0].tolist() and mems.tolist() == ref.membranes[-1][0].tolist()
        assert proto.from_le(answer[:4]) == CoreTwin(net, twin.geo.hardware()).run(spikes[0]).cycles


def batch_payload(encoding, states, levels) -> bytes:
    return bytes([encoding]) + b"".join(proto.to_le(s, 4) + bytes(q) for s, q in zip(states, levels))


@pytest.mark.parametrize("registered_reads", [False, True])
def test_batch_matches_twin_and_encode(registered_reads):
    net, dut, twin = setup(max_events=32, registered_reads=registered_reads)
    rng = np.random.default_rng(5)
    levels = rng.integers(0, 256, size=(4, 5)).tolist()
    states = [bernoulli_state(2, i) for i in range(4)]
    good = batch_payload(Encoding.BERNOULLI, states, levels)
    frames = [
        (Cmd.BATCH, good),
        (Cmd.BATCH, batch_payload(Encoding.RATE, [0], levels[:1])),
        (Cmd.STATUS, b""),
        (Cmd.BATCH, batch_payload(Encoding.BERNOULLI, states[:2] + [0], levels[:3])),   # third state 0
        (Cmd.STATUS, b""),                                                              # nothing ran
        (Cmd.BATCH, good[:-1]),                                                         # a record cut short
        (Cmd.BATCH, bytes([Encoding.RATE])),                                            # no record
        (Cmd.BATCH, batch_payload(3, [1], levels[:1])),                                 # no such encoding
        (Cmd.BATCH, b""),
    ]
    got = run_engine(dut, frames)
    want = [twin.execute(c, p) for c, p in frames]
    for (cmd, p), g, w in zip(frames, got, want):
        assert strip_uptime(cmd, g) == strip_uptime(cmd, w), f"cmd {cmd:#x} payload {p.hex()}"
    assert [g[0] for g in got] == [0, 0, 0, Status.RANGE, 0, Status.BAD_LENGTH, Status.BAD_LENGTH, Status.RANGE,
                                   Status.BAD_LENGTH]
    before, after = (proto.StatusBlock.parse(got[i][1]) for i in (2, 4))
    assert (before.flags, before.last_cycles, before.loaded) == (after.flags, after.last_cycles, after.loaded)
    assert after.frame_errors == before.frame_errors + 1
    # one answer block per sample, each the ENCODE answer of that sample
    alone = twin_engine(32, registered_reads)
    blocks = [alone.execute(Cmd.ENCODE, encode_payload(Encoding.BERNOULLI, s, q))[1] for s, q in zip(states, levels)]
    assert got[0][1] == b"".join(blocks)
    # a board whose buffer a sample could overflow refuses BATCH (answers are sent before later runs)
    _, small, small_twin = setup(max_events=16, registered_reads=registered_reads)
    assert run_engine(small, [(Cmd.BATCH, good)]) == [small_twin.execute(Cmd.BATCH, good)] == [(Status.RANGE, b"")]


def cycles_until(dut, cmd, payload, signal) -> int:
    """Cycles from the engine taking a frame (its payload written into the buffer first) to
    ``signal`` high."""
    eng, measured = dut.engine, []

    async def bench(ctx):
        ctx.set(eng.resp.ready, 1)
        ctx.set(eng.data.ready, 1)
        for a, b in enumerate(payload):
            ctx.set(dut.buf_addr, a)
            ctx.set(dut.buf_data, b)
            ctx.set(dut.buf_en, 1)
            await ctx.tick()
        ctx.set(dut.buf_en, 0)
        for f, v in (("cmd", cmd), ("tag", 1), ("length", len(payload))):
            ctx.set(getattr(eng.frame.payload, f), v)
        ctx.set(eng.frame.valid, 1)
        assert ctx.get(eng.frame.ready)
        await ctx.tick()                       # the engine takes the frame at this edge
        ctx.set(eng.frame.valid, 0)
        measured.append(await until(ctx, lambda: ctx.get(signal), signal.name, 10_000))

    run_testbench(dut, bench, period=1e-6)
    return measured[0]


@pytest.mark.parametrize("registered_reads", [False, True])
def test_batch_refusal_walks_each_complete_record_once(registered_reads):
    """A BATCH whose last record is cut short is refused after the first pass has walked each
    complete record once (its 4 state bytes read, 2 cycles each, and a step either side), and
    never reads into the short one."""
    twin = twin_engine(32)
    levels = [[1, 2, 3, 4, 5]] * 4
    states = [bernoulli_state(2, i) for i in range(4)]
    times = []
    for k in range(4):
        cut = batch_payload(Encoding.BERNOULLI, states[:k + 1], levels[:k + 1])[:-1]
        assert twin.execute(Cmd.BATCH, cut) == (Status.BAD_LENGTH, b"")
        dut = setup(registered_reads=registered_reads)[1]
        times.append(cycles_until(dut, Cmd.BATCH, cut, dut.engine.resp.valid))
    per_record = 2 * layout_len(BATCH_RECORD) + 2
    assert [t - times[0] for t in times] == [per_record * k for k in range(4)]


def test_built_without_the_encoder():
    """encoder=False: ENCODE and BATCH are unknown commands, as on a bitstream that predates them."""
    dut = Harness(NET, lanes=2, max_events=32)
    dut.engine._MustUse__silence = True   # replaced before elaboration
    static = proto.identify_static(dut.geo, proto.structure_digest(NET), proto.content_digest(NET))
    dut.engine = CommandEngine(NET, dut.geo, dut.core, static, encoder=False)
    twin = proto.CommandEngine(NET, dut.geo, CoreTwin(NET, HardwareConfig(lanes=2, max_events=32)), encoder=False)
    frames = [(Cmd.ENCODE, encode_payload(Encoding.RATE, 0, [1] * 5)), (Cmd.BATCH, b"\0" * 10), (Cmd.IDENTIFY, b"")]
    got = run_engine(dut, frames)
    assert got == [twin.execute(c, p) for c, p in frames]
    assert [g[0] for g in got] == [Status.UNKNOWN_CMD, Status.UNKNOWN_CMD, Status.OK]


@pytest.mark.parametrize("registered_reads", [False, True])
def test_encode_cycle_cost(registered_reads):
    """From the engine taking the frame to the core's start pulse: encode_cycles(geo) exactly (with
    registered reads too: the buffer and the remainders are read a cycle ahead)."""
    net, dut, _ = setup(registered_reads=registered_reads)
    payload = encode_payload(Encoding.BERNOULLI, 12345, [3, 250, 77, 0, 128])
    measured = [cycles_until(dut, Cmd.ENCODE, payload, dut.core.start)]
    assert measured == [encode_cycles(dut.geo)] == [4 + 2 * 5 + 3 * (5 + 1) + 1]
