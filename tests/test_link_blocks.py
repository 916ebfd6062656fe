"""The host link's framing blocks, each alone against its byte-level twin (Amaranth simulator):
FrameDecoder, ResponseEncoder and the CRC they share."""
import binascii

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.link import FrameDecoder, ResponseEncoder
from spikegate.hdl.link.signatures import crc16_processor
from spikegate.model import link as proto
from spikegate.model.link import Cmd, Frame, Reject, Status, encode_request

from conftest import run_testbench
from waits import within

TIMEOUT = 40
MAX_PAYLOAD = 20
KAT = b"123456789"


def test_crc_known_answer_python_and_gateware():
    """CRC-16/CCITT-FALSE check value: the twin/host CRC and Amaranth's CRC processor agree on it."""
    assert proto.crc16(KAT) == 0x29B1 == binascii.crc_hqx(KAT, 0xFFFF)
    dut = crc16_processor()
    got = []

    async def bench(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for b in KAT:
            ctx.set(dut.data, b)
            ctx.set(dut.valid, 1)
            await ctx.tick()
        ctx.set(dut.valid, 0)
        got.append(ctx.get(dut.crc))

    run_testbench(dut, bench)
    assert got == [0x29B1]


# --- FrameDecoder --------------------------------------------------------------------------------

def run_decoder(script, small_bit=True):
    """Feed each piece byte by byte, then a silence longer than the frame timeout; act as the
    engine and encoder (take frames and rejections, read payloads, release). Returns the events.
    Every payload byte read comes with its ``small`` flag, checked here."""
    dut = FrameDecoder(MAX_PAYLOAD, TIMEOUT, small_bit=small_bit)
    events = []

    async def serve(ctx):
        if ctx.get(dut.frame.valid):
            cmd, tag, n = (ctx.get(getattr(dut.frame.payload, f)) for f in ("cmd", "tag", "length"))
            ctx.set(dut.frame.ready, 1)
            await ctx.tick()
            ctx.set(dut.frame.ready, 0)
            payload = bytearray()
            for a in range(n):
                ctx.set(dut.buf.addr, a)
                await ctx.tick()
                payload.append(ctx.get(dut.buf.data))
                assert ctx.get(dut.buf.small) == (payload[-1] < 4), (a, payload[-1])
            events.append(Frame(cmd, tag, bytes(payload)))
        elif ctx.get(dut.reject.valid):
            p = dut.reject.payload
            assert ctx.get(p.length) == 0
            events.append(Reject(ctx.get(p.cmd), ctx.get(p.tag), Status(ctx.get(p.status))))
            ctx.set(dut.reject.ready, 1)
            await ctx.tick()
            ctx.set(dut.reject.ready, 0)
        else:
            await ctx.tick()
            return
        ctx.set(dut.release, 1)
        await ctx.tick()
        ctx.set(dut.release, 0)

    async def bench(ctx):
        for piece in script:
            for b in piece:
                assert ctx.get(dut.listening) and ctx.get(dut.i.ready)
                ctx.set(dut.i.payload, b)
                ctx.set(dut.i.valid, 1)
                await ctx.tick()
                ctx.set(dut.i.valid, 0)
                for _ in range(2):
                    await serve(ctx)
            for _ in range(TIMEOUT + 4):
                await serve(ctx)
            assert ctx.get(dut.hunting)

    run_testbench(dut, bench)
    return events


def twin_decoder(script):
    tw = proto.FrameDecoder(MAX_PAYLOAD)
    events = []
    for piece in script:
        events += [e for e in (tw.feed(b) for b in piece) if e is not None]
        events += [e for e in [tw.timeout()] if e is not None]
    return events


@pytest.mark.parametrize("small_bit", [True, False], ids=["small-stored", "small-from-byte"])
def test_decoder_good_bad_and_cut_frames(small_bit):
    good = encode_request(Cmd.WRITE, 7, bytes(range(12)))
    bad_crc = bytearray(good)
    bad_crc[-2] ^= 0x10
    bad_payload = bytearray(good)
    bad_payload[8] ^= 0x01
    script = [good, bytes(bad_crc), bytes(bad_payload), b"\x00\x13" + encode_request(Cmd.STATUS, 1),
              bytes([0xA5, Cmd.LOAD, 3]) + proto.to_le(MAX_PAYLOAD + 1, 2), good[:9]]
    got = run_decoder(script, small_bit)
    assert got == twin_decoder(script)
    # A damaged frame never reaches the engine: only the two good ones come out as frames.
    assert got == [Frame(Cmd.WRITE, 7, bytes(range(12))), Reject(Cmd.WRITE, 7, Status.BAD_CRC),
                   Reject(Cmd.WRITE, 7, Status.BAD_CRC), Frame(Cmd.STATUS, 1, b""),
                   Reject(Cmd.LOAD, 3, Status.BAD_LENGTH), Reject(Cmd.WRITE, 7, Status.TIMEOUT)]


def _pieces():
    frame = st.builds(encode_request, st.sampled_from(list(Cmd) + [0x00, 0xA5]), st.integers(0, 255),
                      st.binary(max_size=MAX_PAYLOAD))

    def corrupt(f, where, bit):
        b = bytearray(f)
        b[where % len(b)] ^= 1 << bit
        return bytes(b)

    return st.one_of(frame, st.builds(corrupt, frame, st.integers(0, 40), st.integers(0, 7)),
                     st.builds(lambda f, n: f[:max(1, n % len(f))], frame, st.integers(1, 40)),
                     st.binary(min_size=1, max_size=8))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=st.lists(_pieces(), min_size=1, max_size=5))
def test_decoder_fuzz_matches_twin(script):
    got = run_decoder(script)
    assert got == twin_decoder(script)
    # Every frame that reaches the engine is exactly one the host sent, CRC and all.
    sent = {bytes(p) for p in script}
    for e in got:
        if isinstance(e, Frame):
            assert any(encode_request(e.cmd, e.tag, e.payload) in s for s in sent)


# --- ResponseEncoder -----------------------------------------------------------------------------

def run_encoder(items, stall):
    """``items``: (source, cmd, tag, status, payload) with source "resp" or "reject"; ``o.ready``
    is high one cycle in ``stall + 1``. Returns the bytes sent and the number of ``done`` pulses."""
    dut = ResponseEncoder()
    out, done = bytearray(), [0]

    async def bench(ctx):
        cycle = 0
        for source, cmd, tag, status, payload in items:
            hdr = getattr(dut, source)
            for f, v in (("cmd", cmd), ("tag", tag), ("status", status), ("length", len(payload))):
                ctx.set(getattr(hdr.payload, f), v)
            ctx.set(hdr.valid, 1)
            pending = list(payload)
            for _ in within(f"answer {cmd:#x} out of the response encoder"):
                cycle += 1
                ctx.set(dut.data.valid, bool(pending))
                ctx.set(dut.data.payload, pending[0] if pending else 0)
                ctx.set(dut.o.ready, cycle % (stall + 1) == 0)
                if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                    out.append(ctx.get(dut.o.payload))
                if ctx.get(dut.data.valid) and ctx.get(dut.data.ready):
                    pending.pop(0)
                taken = ctx.get(hdr.valid) and ctx.get(hdr.ready)
                finished = ctx.get(dut.done)
                await ctx.tick()
                if taken:
                    ctx.set(hdr.valid, 0)
                if finished:
                    done[0] += 1
                    break
            assert not pending
        ctx.set(dut.data.valid, 0)

    run_testbench(dut, bench)
    return bytes(out), done[0]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.tuples(st.sampled_from(["resp", "reject"]), st.integers(0, 255), st.integers(0, 255),
                                st.sampled_from(list(Status)), st.binary(max_size=12)), min_size=1, max_size=3),
       stall=st.integers(0, 3))
def test_encoder_matches_twin(items, stall):
    items = [(s, c, t, st_, p if s == "resp" else b"") for s, c, t, st_, p in items]
    got, done = run_encoder(items, stall)
    tw = proto.ResponseEncoder()
    assert got == b"".join(tw.encode(c, t, st_, p) for _, c, t, st_, p in items)
    assert done == len(items)
