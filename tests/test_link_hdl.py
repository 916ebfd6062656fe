"""HostLink gateware (UART included) against its byte-level twin, in Amaranth's simulator.

Every test drives the real rx line bit by bit and decodes the real tx line, then compares the
board's answer bytes with what ``model.link.HostLink`` answers for the same bytes.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.link import HostLink
from spikegate.model import link as proto
from spikegate.model.link import CfgTarget, Cmd, Status, encode_request
from spikegate.model.random import random_network, random_spikes
from spikegate.model.uart import UARTRx, UARTTx
from waits import within
from conftest import run_testbench

DIV = 4
CLK = 400_000
BAUD = CLK // DIV
TIMEOUT = 20 * DIV


def make(net, lanes=2, max_events=64, max_payload=64, **kw):
    """The gateware link and its twin; ``kw`` (``stream``, ``registered_reads``) goes to both."""
    hw = HostLink(net, lanes=lanes, clk_freq=CLK, baud=BAUD, max_payload=max_payload, max_events=max_events,
                  frame_timeout=TIMEOUT, synchronise=False, **kw)
    tw = proto.HostLink(net, lanes=lanes, clk_freq=CLK, baud=BAUD, max_payload=max_payload,
                        max_events=max_events, **kw)
    return hw, tw


def run_script(hw, script):
    """``script``: list of byte strings; after each the line idles until the link is idle again
    (a silence longer than the frame timeout when the bytes leave a frame open). Returns the bytes
    the board sent after each piece and the number of cycles."""
    tx_levels = []
    marks = []
    cycles = [0]

    async def bench(ctx):
        ctx.set(hw.rx, 1)
        for piece in script:
            for byte in piece:
                # A host that pauses while the board answers: the board discards bytes that
                # arrive then (test_link_e2e's fuzz exercises that), the twin cannot time them.
                for _ in range(2):  # let the last byte reach the decoder
                    await ctx.tick()
                    tx_levels.append(ctx.get(hw.tx))
                for _ in within("the end of the link's answer"):
                    if not ctx.get(hw.answering):
                        break
                    await ctx.tick()
                    tx_levels.append(ctx.get(hw.tx))
                for v in UARTTx(DIV).levels(bytes([byte])):
                    ctx.set(hw.rx, int(v))
                    await ctx.tick()
                    tx_levels.append(ctx.get(hw.tx))
            ctx.set(hw.rx, 1)
            quiet = 0
            # Idle for 3 byte times after the link reports idle, so a response is complete.
            for _ in within(f"{30 * DIV} idle cycles after a frame"):
                if quiet == 30 * DIV:
                    break
                await ctx.tick()
                tx_levels.append(ctx.get(hw.tx))
                quiet = quiet + 1 if ctx.get(hw.idle) else 0
            marks.append(len(tx_levels))
        cycles[0] = len(tx_levels)

    run_testbench(hw, bench, period=1 / CLK)
    out, start = [], 0
    for end in marks:
        data, errors = UARTRx(DIV).decode(np.array(tx_levels[start:end]))
        assert errors == 0
        out.append(data)
        start = end
    return out, cycles[0]


def twin_script(tw, script):
    out = []
    for piece in script:
        r = tw.feed(piece)
        r += tw.timeout()
        out.append(r)
    return out


def strip_uptime(resp: bytes) -> bytes:
    """The status block's uptime counter (bytes 5..10 of its payload) counts wall time."""
    if len(resp) == 8 + proto.STATUS_LEN and resp[1] == Cmd.STATUS and resp[3] == Status.OK:
        p = bytearray(resp[6:6 + proto.STATUS_LEN])
        p[5:11] = b"\0" * 6
        return resp[:6] + bytes(p)
    return resp


def check(hw, tw, script):
    got, _ = run_script(hw, script)
    want = twin_script(tw, script)
    for i, (g, w) in enumerate(zip(got, want)):
        assert strip_uptime(g) == strip_uptime(w), f"piece {i} ({script[i].hex()}): board {g.hex()} twin {w.hex()}"
    return got


def test_identify_status_and_a_sample():
    net = random_network(3, (6, 5, 3), readout=False, timesteps=4)
    hw, tw = make(net)
    s = random_spikes(4, 1, 4, 6, p=0.5)[0]
    ev = proto.encode_events(s, tw.geo)
    script = [
        encode_request(Cmd.IDENTIFY, 1),
        encode_request(Cmd.LOAD, 2, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev),
        encode_request(Cmd.READ, 3),
        encode_request(Cmd.RUN, 4),
        encode_request(Cmd.STATUS, 5),
    ]
    got = check(hw, tw, script)
    ident = proto.Identity.parse(proto.decode_response(got[0])[3])
    assert ident.shape == (6, 5, 3) and ident.structure == proto.structure_digest(net)
    _, _, status, p = proto.decode_response(got[1])
    assert status == Status.OK
    from spikegate.model import simulate
    res = simulate(net, s[None])
    counts, mems = proto.decode_outputs(p[4:], tw.geo)
    assert np.array_equal(counts, res.counts[0]) and np.array_equal(mems, res.membranes[-1][0])
    assert proto.from_le(p[:4]) == tw.core.run(s).cycles


def test_write_then_run_readout_network():
    net = random_network(5, (4, 3, 2), readout=True, timesteps=3)
    hw, tw = make(net)
    s = random_spikes(6, 1, 3, 4, p=0.6)[0]
    ev = proto.encode_events(s, tw.geo)
    w = net.layers[1].weights[1].copy()
    vb = tw.geo.write_value_bytes(1, CfgTarget.WEIGHT)
    vals = b"".join(proto.to_le(int(-x), vb) for x in w)
    script = [
        encode_request(Cmd.LOAD, 1, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev),
        encode_request(Cmd.WRITE, 2, bytes([1, CfgTarget.WEIGHT]) + proto.to_le(1, 2) + proto.to_le(0, 2)
                       + proto.to_le(len(w), 2) + vals),
        encode_request(Cmd.RUN, 3),
        encode_request(Cmd.READ, 4),
        encode_request(Cmd.SET_NET_ID, 5, bytes(range(16))),
        encode_request(Cmd.IDENTIFY, 6),
        # threshold of a readout layer: refused, nothing written
        encode_request(Cmd.WRITE, 7, bytes([1, CfgTarget.THRESHOLD, 0, 0, 0, 0, 1, 0]) + proto.to_le(1, vb)),
        encode_request(Cmd.STATUS, 8),
    ]
    got = check(hw, tw, script)
    assert proto.decode_response(got[1])[2] == Status.OK
    assert proto.decode_response(got[6])[2] == Status.RANGE


def test_errors():
    net = random_network(7, (5, 4), readout=False, timesteps=2, weight_bits=8, membrane_bits=16)
    hw, tw = make(net, max_events=8, max_payload=20)
    good = encode_request(Cmd.IDENTIFY, 9)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 1
    script = [
        bytes(bad_crc),
        encode_request(0x77, 1),                                   # unknown command
        encode_request(Cmd.STATUS, 2, b"x"),                        # payload where none belongs
        bytes([0xA5, Cmd.LOAD, 3]) + proto.to_le(21, 2),            # longer than max_payload
        encode_request(Cmd.LOAD, 4, bytes([1]) + bytes([0, 1, 0x80] * 3)),  # 9 words > max_events 8
        encode_request(Cmd.LOAD, 5, bytes([1, 5, 0x80])),            # address 5 >= n_in
        encode_request(Cmd.LOAD, 6, bytes([4])),                     # unknown flag
        encode_request(Cmd.WRITE, 7, bytes([0, CfgTarget.WEIGHT, 5, 0, 0, 0, 1, 0, 1])),  # row 5 >= n_in
        encode_request(Cmd.WRITE, 8, bytes([0, CfgTarget.WEIGHT, 0, 0, 3, 0, 2, 0, 1, 1])),  # col 3 + 2 > n
        encode_request(Cmd.WRITE, 9, bytes([0, CfgTarget.WEIGHT, 0, 0, 0, 0, 2, 0, 1])),  # length does not match count
        good[:4],                                                    # cut short: timeout
        b"\x00\xff\x13garbage",
        encode_request(Cmd.STATUS, 10),
        good,
    ]
    got = check(hw, tw, script)
    statuses = [proto.decode_response(g)[2] if g else None for g in got]
    assert statuses == [Status.BAD_CRC, Status.UNKNOWN_CMD, Status.BAD_LENGTH, Status.BAD_LENGTH,
                        Status.OVERFLOW, Status.RANGE, Status.RANGE, Status.RANGE, Status.RANGE,
                        Status.BAD_LENGTH, Status.TIMEOUT, None, Status.OK, Status.OK]


def _frames(net_inputs):
    cmds = st.sampled_from(list(Cmd) + [0x00, 0x5A, 0xA5, 0xFF])
    frame = st.builds(lambda c, t, p: encode_request(c, t, p), cmds, st.integers(0, 255),
                      st.binary(max_size=12))

    def corrupt(f, flips):
        b = bytearray(f)
        for where, bit in flips:
            b[where % len(b)] ^= 1 << bit
        return bytes(b)

    def burst(f, at, junk):
        b = bytearray(f)
        at %= len(b)
        b[at:at + len(junk)] = junk
        return bytes(b[:len(f)])

    # single- and multi-bit damage (up to 6 flipped bits), and bursts of 2-5 overwritten bytes
    flips = st.lists(st.tuples(st.integers(0, 40), st.integers(0, 7)), min_size=1, max_size=6)
    corrupted = st.builds(corrupt, frame, flips)
    bursts = st.builds(burst, frame, st.integers(0, 40), st.binary(min_size=2, max_size=5))
    cut = st.builds(lambda f, n: f[:max(1, n % len(f))], frame, st.integers(1, 40))
    return st.one_of(frame, corrupted, bursts, cut, st.binary(min_size=1, max_size=10))


@settings(max_examples=int(os.environ.get("SPIKEGATE_LINK_FUZZ", "15")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_matches_twin(data):
    """Random, corrupted and cut-short frames and garbage: every answer equals the twin's, and an
    identify afterwards is answered correctly."""
    net = random_network(11, (3, 2), readout=False, timesteps=2, weight_bits=8)
    hw, tw = make(net, max_events=8, max_payload=20)
    script = data.draw(st.lists(_frames(3), min_size=3, max_size=8))
    script.append(encode_request(Cmd.IDENTIFY, 0x42))
    got = check(hw, tw, script)
    assert proto.decode_response(got[-1])[2] == Status.OK


def test_parameter_errors():
    net = random_network(1, (3, 2))
    with pytest.raises(ValueError, match="baud = 300000 is too fast"):
        HostLink(net, clk_freq=1_000_000, baud=300_000)
    with pytest.raises(ValueError, match="max_payload = 8"):
        HostLink(net, clk_freq=12_000_000, max_payload=8)
    with pytest.raises(ValueError, match="frame_timeout = 10"):
        HostLink(net, clk_freq=12_000_000, frame_timeout=10)
    with pytest.raises(ValueError, match="lanes"):
        HostLink(net, clk_freq=12_000_000, lanes=3)


@pytest.mark.parametrize("sizes,wb,vb", [((200, 3, 2), 12, 24), ((3, 4, 2), 16, 32), ((129, 2), 2, 4)])
def test_wide_values_and_two_byte_events(sizes, wb, vb):
    """Two-byte event words (n_in > 128), multi-byte weights, biases and thresholds: writes of
    every target, then a run, byte for byte as the twin."""
    net = random_network(13, sizes, readout=False, timesteps=3, weight_bits=wb, membrane_bits=vb)
    hw, tw = make(net, max_events=700, max_payload=700)
    g = tw.geo
    assert g.event_bytes == (2 if sizes[0] > 128 else 1)
    rng = np.random.default_rng(0)
    wlo, whi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    L = len(sizes) - 1
    n_last = sizes[-1]
    wv = rng.integers(wlo, whi + 1, size=n_last)
    wbytes = g.write_value_bytes(L - 1, CfgTarget.WEIGHT)
    mbytes = g.write_value_bytes(L - 1, CfgTarget.BIAS)
    vmax = (1 << (vb - 1)) - 1
    s = random_spikes(14, 1, 3, sizes[0], p=0.5)[0]
    script = [
        encode_request(Cmd.WRITE, 1, bytes([L - 1, CfgTarget.WEIGHT]) + proto.to_le(sizes[-2] - 1, 2)
                       + proto.to_le(0, 2) + proto.to_le(n_last, 2)
                       + b"".join(proto.to_le(int(v), wbytes) for v in wv)),
        encode_request(Cmd.WRITE, 2, bytes([L - 1, CfgTarget.BIAS, 0, 0, 1, 0]) + proto.to_le(1, 2)
                       + proto.to_le(-vmax // 3, mbytes)),
        encode_request(Cmd.WRITE, 3, bytes([0, CfgTarget.THRESHOLD, 0, 0, 0, 0, 1, 0])
                       + proto.to_le(vmax // 5, mbytes)),
        # out of range by one: the weight just above the widest value, the threshold at the rail
        encode_request(Cmd.WRITE, 4, bytes([0, CfgTarget.WEIGHT, 0, 0, 0, 0, 1, 0])
                       + proto.to_le(whi + 1, wbytes)),
        encode_request(Cmd.WRITE, 5, bytes([0, CfgTarget.THRESHOLD, 0, 0, 0, 0, 1, 0])
                       + proto.to_le(vmax, mbytes)),
        encode_request(Cmd.LOAD, 6, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + proto.encode_events(s, g)),
        encode_request(Cmd.STATUS, 7),
    ]
    got = check(hw, tw, script)
    # whi + 1 only exists in the frame when the width is not a whole number of bytes; at 16 bits
    # it wraps to -32768, a valid weight.
    over = Status.RANGE if wb % 8 else Status.OK
    assert [proto.decode_response(r)[2] for r in got] == [0, 0, 0, over, Status.RANGE, 0, 0]
    from spikegate.model import simulate
    res = simulate(tw.net, s[None])
    counts, mems = proto.decode_outputs(proto.decode_response(got[5])[3][4:], g)
    assert np.array_equal(counts, res.counts[0]) and np.array_equal(mems, res.membranes[-1][0])


def test_prebuilt_core():
    from spikegate.hdl.core import NetworkCore
    from spikegate.model.hardware import HardwareConfig
    net = random_network(1, (3, 2))
    core = NetworkCore(net, HardwareConfig(lanes=2, max_events=64))
    hw = HostLink(net, clk_freq=CLK, baud=BAUD, max_events=64, core=core, frame_timeout=TIMEOUT)
    assert hw.core is core and hw.geo.lanes == (2,)
    with pytest.raises(ValueError, match="core must be a NetworkCore built for this same net"):
        HostLink(net, clk_freq=CLK, baud=BAUD, max_events=32, core=core)
