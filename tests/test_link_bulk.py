"""Row-major (bulk) WRITEs: hand-worked vectors on the twin, the gateware engine against the twin,
and the driver's frames for whole networks."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spikegate.host import Board
from spikegate.model import link as proto
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.hardware import HardwareConfig
from spikegate.model.link import CfgTarget, Cmd, Status
from spikegate.model.protocol import WRITE_HEADER, WRITE_ROW_MAJOR
from spikegate.model.random import random_network

from test_link_engine import Harness, engine_matches_twin

SIZES = (5, 4, 3)   # layer 0: W is 5 x 4


def net_and_twin(max_payload=64):
    net = random_network(11, SIZES, readout=False, timesteps=3, weight_bits=6, membrane_bits=12)
    geo = proto.LinkGeometry.of(net, 2, 1_000_000, 100_000, max_payload, 32)
    return net, geo, proto.CommandEngine(net, geo, CoreTwin(net, HardwareConfig(lanes=2, max_events=32)))


def bulk(layer, row, col, values, target=CfgTarget.WEIGHT):
    """A WRITE payload with the row-major flag; 6-bit weights and 12-bit biases take 1 and 2 bytes."""
    vb = 1 if target == CfgTarget.WEIGHT else 2
    return (bytes([layer, target | WRITE_ROW_MAJOR]) + proto.to_le(row, 2) + proto.to_le(col, 2)
            + proto.to_le(len(values), 2) + b"".join(proto.to_le(v, vb) for v in values))


def test_twin_bulk_write_golden():
    net, geo, twin = net_and_twin()
    w0 = net.layers[0].weights.copy()
    # From W[1, 2]: 1, 2 end row 1; 3..6 fill row 2; 7 starts row 3.
    assert twin.execute(Cmd.WRITE, bulk(0, 1, 2, [1, 2, 3, 4, 5, 6, 7])) == (Status.OK, b"")
    want = w0.copy()
    want[1, 2], want[1, 3] = 1, 2
    want[2, :] = [3, 4, 5, 6]
    want[3, 0] = 7
    assert np.array_equal(twin.net.layers[0].weights, want)
    assert twin.stat.cfg_writes == 7 and twin.dirty
    # The last three weights exactly: W[4, 1..3].
    assert twin.execute(Cmd.WRITE, bulk(0, 4, 1, [-8, 9, -10]))[0] == Status.OK
    want[4, 1:] = [-8, 9, -10]
    assert np.array_equal(twin.net.layers[0].weights, want)
    # Refused, nothing written: one past the end, a start column past the row, the flag on a
    # bias, and (without the flag) a row overrun as before.
    for payload in (bulk(0, 4, 1, [1, 2, 3, 4]), bulk(0, 0, 4, [1]), bulk(1, 0, 0, [1], CfgTarget.BIAS),
                    bytes([0, CfgTarget.WEIGHT, 0, 0, 3, 0, 2, 0, 1, 1])):
        assert twin.execute(Cmd.WRITE, payload) == (Status.RANGE, b"")
    assert np.array_equal(twin.net.layers[0].weights, want)
    # A value out of range anywhere refuses the whole frame.
    assert twin.execute(Cmd.WRITE, bulk(0, 0, 0, [1, 2, 32]))[0] == Status.RANGE
    assert np.array_equal(twin.net.layers[0].weights, want)


def test_engine_bulk_matches_twin():
    net, geo, twin = net_and_twin()
    dut = Harness(net, lanes=2, max_events=32)
    frames = [
        (Cmd.WRITE, bulk(0, 1, 2, [1, 2, 3, 4, 5, 6, 7])),
        (Cmd.WRITE, bulk(0, 4, 1, [-8, 9, -10])),
        (Cmd.WRITE, bulk(0, 4, 1, [1, 2, 3, 4])),            # one past the last weight
        (Cmd.WRITE, bulk(0, 3, 3, [5, 6, 7, 8, 9, 10, 11])),  # one past, found on the last value
        (Cmd.WRITE, bulk(0, 0, 4, [1])),                      # start column past the row
        (Cmd.WRITE, bulk(1, 0, 0, [1], CfgTarget.BIAS)),      # the flag on a bias
        (Cmd.WRITE, bulk(1, 3, 1, [-31, 31, 7])),           # layer 1 is 4 x 3: W[3, 1], W[3, 2], past
        (Cmd.WRITE, bulk(1, 0, 1, [-31, 31, 0, 1, 2, 3, 4, 5, 6, 7, 8])),   # layer 1 from W[0, 1] to the end
        (Cmd.WRITE, bulk(0, 0, 0, list(range(-10, 10)))),   # all 20 weights of layer 0
        (Cmd.CHECKSUM, b""),
        (Cmd.STATUS, b""),
    ]
    got = engine_matches_twin(dut, twin, frames)
    assert [g[0] for g in got] == [0, 0, Status.RANGE, Status.RANGE, Status.RANGE, Status.RANGE, Status.RANGE,
                                   0, 0, 0, 0]
    assert np.array_equal(twin.net.layers[0].weights.reshape(-1), np.arange(-10, 10))
    assert proto.from_le(got[-2][1]) == proto.expected_checksum(twin.net)


@pytest.mark.parametrize("sizes,frames", [((64, 64, 10), 14), ((784, 128, 10), 206)])
def test_driver_bulk_frames_load_whole_network(sizes, frames):
    """The driver's WRITEs fill frames to max_payload (504 8-bit weights), and applied to the twin
    they give the network. Frame counts by hand: digits 9 + 1 + 1 (layer 0: 4096 weights, 64
    biases, threshold) + 2 + 1 (layer 1: 640 weights, biases, readout); 784-128-10 200 + 1 + 1 +
    3 + 1 (the row-per-frame driver sent 131 and 915)."""
    net = random_network(3, sizes, readout=True, timesteps=4, weight_bits=8, membrane_bits=14)
    geo = proto.LinkGeometry.of(net, 4, 16_125_000, 3_000_000, 512, 4096)
    with Board("loop://") as b:
        b.geo = geo
        payloads = b.write_frames(net)
    assert len(payloads) == frames
    assert max(len(p) for p in payloads) == WRITE_HEADER + 504
    empty = net.replace(layers=[l.replace(weights=np.zeros_like(l.weights), bias=np.zeros_like(l.bias))
                                for l in net.layers])
    engine = proto.CommandEngine(empty, geo, CoreTwin(empty, HardwareConfig(lanes=4, max_events=4096)))
    assert all(engine.execute(Cmd.WRITE, p) == (Status.OK, b"") for p in payloads)
    assert engine.net.digest() == net.digest()


@settings(max_examples=200, deadline=None)
@given(row=st.integers(0, 6), col=st.integers(0, 4), values=st.lists(st.integers(-40, 40), min_size=1, max_size=24))
def test_twin_bulk_write_matches_scalar_transcription(row, col, values):
    """Any row-major WRITE against a value-by-value reading of the rule: put the value at (r, c),
    step c, wrap to the next row after the last column; the frame is valid only if every value
    lands on an existing weight (and is in range), and then all of it is applied."""
    net, geo, twin = net_and_twin()
    n_in, n = SIZES[0], SIZES[1]
    lo, hi = geo.value_range(0, CfgTarget.WEIGHT)
    want = net.layers[0].weights.copy()
    r, c, ok = row, col, col < n
    for v in values:
        ok = ok and r < n_in and lo <= v <= hi
        if ok:
            want[r, c] = v
        c += 1
        if c == n:
            r, c = r + 1, 0
    status, _ = twin.execute(Cmd.WRITE, bulk(0, row, col, values))
    assert status == (Status.OK if ok else Status.RANGE)
    assert np.array_equal(twin.net.layers[0].weights, want if ok else net.layers[0].weights)
