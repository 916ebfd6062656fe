"""Streaming (docs/protocol.md, "Streaming"): the HostLink gateware takes the next frame while it
executes one. A host keeping STREAM_WINDOW requests unanswered gets, byte for byte, the answers the
twin gives to the same bytes, with nothing dropped, and in fewer cycles than one request at a time;
a rejection waits behind the answers to the frames before it."""
import numpy as np
import pytest

from spikegate.hdl.link import HostLink
from spikegate.host_encode import encode_payload
from spikegate.model import link as proto
from spikegate.model.link import Cmd, Status, encode_request
from spikegate.model.protocol import STREAM_WINDOW
from spikegate.model.random import random_network, random_spikes
from spikegate.model.uart import UARTTx
from waits import within
from conftest import run_testbench


DIV = 4
CLK = 400_000
BAUD = CLK // DIV
TIMEOUT = 20 * DIV


def make(net, stream=True, lanes=2, registered_reads=False):
    kw = dict(lanes=lanes, clk_freq=CLK, baud=BAUD, max_payload=64, max_events=64, registered_reads=registered_reads)
    return (HostLink(net, frame_timeout=TIMEOUT, synchronise=False, stream=stream, **kw),
            proto.HostLink(net, stream=stream, **kw))


def stream_frames(hw, frames, window):
    """Send ``frames`` back to back, at most ``window`` of them unanswered (an answer counts when
    its last byte has left); returns the answer bytes and the cycles until the last one."""
    tx = bytearray()
    answers = [0]

    async def bench(ctx):
        ctx.set(hw.rx, 1)
        t = 0
        rx_bit, rx_byte, in_byte, last = 0, 0, False, 1

        async def tick():
            nonlocal t, rx_bit, rx_byte, in_byte, last
            await ctx.tick()
            t += 1
            level = ctx.get(hw.tx)
            # an 8N1 receiver at DIV cycles a bit, sampling mid-bit
            if not in_byte and last == 1 and level == 0:
                in_byte, rx_bit, rx_byte = True, 0, t
            elif in_byte and (t - rx_byte) % DIV == DIV // 2:
                k = (t - rx_byte) // DIV
                if 1 <= k <= 8:
                    rx_bit |= level << (k - 1)
                elif k == 9:
                    tx.append(rx_bit)
                    in_byte = False
            last = level

        def answered():
            # whole answers in tx so far
            n, i = 0, 0
            while i + 6 <= len(tx):
                length = tx[i + 4] | tx[i + 5] << 8
                if i + 8 + length > len(tx):
                    break
                i += 8 + length
                n += 1
            return n

        for i, f in enumerate(frames):
            for _ in within(f"answer {i - window + 1} of {len(frames)} (window {window})"):
                if i - answered() < window:
                    break
                await tick()
            for v in UARTTx(DIV).levels(f):
                ctx.set(hw.rx, int(v))
                await tick()
            ctx.set(hw.rx, 1)
        for _ in within(f"all {len(frames)} answers"):
            if answered() == len(frames):
                break
            await tick()
        answers[0] = t

    run_testbench(hw, bench, period=1 / CLK)
    return bytes(tx), answers[0]


def _frames(net, geo, n, rng):
    spikes = random_spikes(7, n, net.timesteps, net.n_inputs, p=0.4)
    out = []
    for i in range(n):
        if i % 2:
            levels = rng.integers(0, 256, net.n_inputs)
            out.append(encode_request(Cmd.ENCODE, i, encode_payload(geo, levels, "rate")))
        else:
            ev = proto.encode_events(spikes[i], geo)
            out.append(encode_request(Cmd.LOAD, i, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev))
    return out


@pytest.mark.parametrize("registered_reads", [False, True])
def test_window_of_requests_matches_twin_and_overlaps(registered_reads):
    # a run outlasts the next frame's bytes, so that frame waits, checked, for the engine, which
    # must take it once (and only once) the last answer's bytes are all in the answer FIFO
    # (``registered_reads``: the payload banks and the answer FIFO read through flip-flops)
    net = random_network(3, (4, 24, 12), readout=False, timesteps=12)
    hw, tw = make(net, lanes=1, registered_reads=registered_reads)
    rng = np.random.default_rng(1)
    frames = _frames(net, tw.geo, 6, rng) + [encode_request(Cmd.STATUS, 99)]
    assert tw.core.run(random_spikes(7, 1, 12, 4, p=0.4)[0]).cycles > 10 * DIV * max(len(f) for f in frames)
    got, streamed = stream_frames(hw, frames, STREAM_WINDOW)
    want = tw.feed(b"".join(frames))
    # the STATUS block's uptime counts wall time: compare all else (rx_errors 0 on both)
    assert got[:-proto.STATUS_LEN - 2] == want[:-proto.STATUS_LEN - 2]
    st = proto.StatusBlock.parse(proto.decode_response(got[-(8 + proto.STATUS_LEN):])[3])
    assert st.rx_errors == 0 and st.frames_ok == len(frames)
    hw1, _ = make(net)
    _, one_at_a_time = stream_frames(hw1, frames, 1)
    assert streamed < one_at_a_time
    assert proto.Identity.parse(proto.decode_response(tw.feed(encode_request(Cmd.IDENTIFY, 1)))[3]).stream


@pytest.mark.parametrize("registered_reads", [False, True])
def test_batch_streams_and_rejection_waits_its_turn(registered_reads):
    net = random_network(4, (5, 4, 3), readout=True, timesteps=3)
    hw, tw = make(net, registered_reads=registered_reads)
    rng = np.random.default_rng(2)
    rec = lambda: proto.to_le(0, 4) + bytes(rng.integers(0, 256, net.n_inputs).astype(np.uint8))
    batch = encode_request(Cmd.BATCH, 7, bytes([0]) + rec() + rec() + rec())
    bad = bytearray(encode_request(Cmd.ENCODE, 9, bytes([0]) + proto.to_le(0, 4) + bytes(net.n_inputs)))
    bad[-1] ^= 0x40                                   # a CRC error behind a running BATCH
    # the rejection is decided while the second BATCH runs and answered after it (a frame sent
    # behind a rejection is lost with it: the decoder waits, the driver resends)
    frames = [batch, encode_request(Cmd.BATCH, 8, batch[5:-2]), bytes(bad)]
    got, _ = stream_frames(hw, frames, STREAM_WINDOW)
    assert got == tw.feed(b"".join(frames))
    statuses, i = [], 0
    while i < len(got):
        statuses.append(got[i + 3])
        i += 8 + (got[i + 4] | got[i + 5] << 8)
    assert statuses == [Status.OK, Status.OK, Status.BAD_CRC]


def test_without_stream_identify_says_so():
    net = random_network(3, (6, 5, 3), readout=False, timesteps=4)
    _, tw = make(net, stream=False)
    assert not proto.Identity.parse(proto.decode_response(tw.feed(encode_request(Cmd.IDENTIFY, 1)))[3]).stream
