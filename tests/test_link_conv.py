"""A conv-first network over the host link (issue 15): LOAD takes the packed input addresses the
core takes (the host translates), CHECKSUM reads a dense layer after a conv layer at its packed
rows in the contract's order, WRITE loads those rows; twin and gateware agree, and the driver runs
samples bit-exact (twin here; the Verilator board in test_link_conv_e2e.py)."""
from pathlib import Path

import numpy as np
import pytest
from spikegate.model import link as proto
from spikegate.model.conv_eval import conv2d_layer
from spikegate.model.conv_layer import hardware_rows_of, input_addresses
from spikegate.model.core import NetworkCore as CoreTwin
from spikegate.model.hardware import HardwareConfig
from spikegate.model.link import CfgTarget, Cmd, Status
from spikegate.model.network import Layer, Network
from spikegate.model.random import random_spikes
from test_host import TwinServer
from test_link_checksum import checksum_cycles_of
from test_link_engine import Harness, run_engine, write

from spikegate.host import Board

LANES, MAX_EVENTS = 2, 256


def conv_net(seed: int = 0, shape=(4, 4, 4)) -> Network:
    """conv 3x3 stride 1 on a C x H x W map whose packed addresses differ from the flat indices
    (C > 1), then a dense readout whose rows sit at the conv layer's packed outputs. 64 inputs by
    default: the digits data set fits it."""
    rng = np.random.default_rng(seed)
    conv = conv2d_layer(rng.integers(-8, 8, (3, shape[0], 3, 3)), shape, stride=1, padding=1,
                        bias=rng.integers(-2, 3, 3), threshold=6, weight_bits=4, membrane_bits=10)
    dense = Layer(weights=rng.integers(-8, 8, (conv.n, 4)), weight_bits=4, membrane_bits=12, readout=True)
    return Network([conv, dense], timesteps=3)


def other_weights(net: Network, seed: int = 1) -> Network:
    """Same structure, other readout weights and biases and another conv threshold (all writable)."""
    rng = np.random.default_rng(seed)
    conv, dense = net.layers
    return net.replace(layers=[conv.replace(threshold=conv.threshold + 1),
                               dense.replace(weights=rng.integers(-8, 8, dense.weights.shape),
                                             bias=rng.integers(-20, 20, dense.n))])


SMALL = (3, 2, 3)  # ragged fields: unused packed input addresses and readout rows, 5 address bits


def test_geometry_takes_the_core_addresses():
    net = conv_net(shape=SMALL)
    geo = proto.LinkGeometry.of(net, LANES, 1_000_000, 100_000, 64, MAX_EVENTS)
    core = CoreTwin(net, HardwareConfig(lanes=LANES, max_events=MAX_EVENTS))
    first = core.geometry[0].conv
    assert (geo.in_fields, geo.in_shape) == (tuple(first.in_fields), SMALL)
    assert geo.addr_bits == first.addr_bits == 5
    packed = set(input_addresses(first.in_fields, first.spec.in_shape, np.arange(net.n_inputs)))
    assert len(packed) == net.n_inputs and max(packed) >= net.n_inputs
    assert {a for a in range(1 << 7) if not geo.load_address_bad(a)} == packed
    assert geo.rows == (0, core.geometry[1].n_in) and geo.conv == (True, False)
    # events round trip through the packed addresses
    sp = random_spikes(0, 1, 3, net.n_inputs, p=0.4)[0]
    ev = proto.encode_events(sp, geo)
    assert np.array_equal(proto.decode_events(ev, geo), sp)
    assert proto.from_le(ev[:1]) in packed


def test_encoder_is_refused_for_a_conv_first_network():
    from spikegate.hdl.link import HostLink
    with pytest.raises(ValueError, match="encoder = True is not valid.*conv layer"):
        proto.HostLink(conv_net(), lanes=LANES)
    with pytest.raises(ValueError, match="encoder = True is not valid.*conv layer"):
        HostLink(conv_net(), lanes=LANES, clk_freq=1_000_000, baud=100_000)


@pytest.mark.parametrize("shape", [SMALL, (4, 4, 4)])
def test_checksum_reads_the_packed_rows(shape):
    net = conv_net(shape=shape)
    core = CoreTwin(net, HardwareConfig(lanes=LANES, max_events=MAX_EVENTS))
    assert proto.expected_checksum(net, core.param, core.geometry) == proto.expected_checksum(net)


def bulk(payload: bytes) -> bytes:
    """A weight WRITE payload made row-major."""
    return payload[:1] + bytes([payload[1] | proto.WRITE_ROW_MAJOR]) + payload[2:]


def ConvHarness(net):
    """test_link_engine's Harness for a conv-first network: built without the on-chip encoder."""
    return Harness(net, LANES, MAX_EVENTS, encoder=False)


def test_engine_matches_twin_on_a_conv_network():
    net = conv_net(shape=SMALL)
    dut = ConvHarness(net)
    geo = dut.geo
    twin = proto.CommandEngine(net, geo, CoreTwin(net, HardwareConfig(lanes=LANES, max_events=MAX_EVENTS)),
                               encoder=False)
    conv = dut.core.geometry[0].conv
    rows = hardware_rows_of(conv.out_fields, conv.spec.out_shape)
    hole = next(r for r in range(geo.rows[1]) if r not in set(rows.tolist()))
    sp = random_spikes(3, 1, 3, net.n_inputs, p=0.4)[0]
    ev = proto.encode_events(sp, geo)
    eos = proto.to_le(geo.eos_flag, geo.event_bytes)
    bad = [a for a in range(1 << geo.addr_bits) if geo.load_address_bad(a)]
    frames = [
        (Cmd.CHECKSUM, b""),
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev),
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR]) + proto.to_le(bad[0], 1) + eos),     # outside the map: RANGE
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR]) + proto.to_le(1 << geo.addr_bits, 1)),  # above the fields
        (Cmd.WRITE, write(1, CfgTarget.WEIGHT, int(rows[5]), 1, [7, -8], geo)),
        (Cmd.WRITE, bulk(write(1, CfgTarget.WEIGHT, int(rows[9]), 3, [1, 2, 3], geo))),
        (Cmd.WRITE, write(1, CfgTarget.WEIGHT, hole, 0, [5], geo)),              # unused row: accepted
        (Cmd.WRITE, write(1, CfgTarget.WEIGHT, geo.rows[1], 0, [5], geo)),       # past the rows: RANGE
        (Cmd.WRITE, write(0, CfgTarget.WEIGHT, 0, 0, [1], geo)),                 # conv kernel: RANGE
        (Cmd.WRITE, write(0, CfgTarget.BIAS, 0, 0, [1], geo)),                   # conv bias: RANGE
        (Cmd.WRITE, write(0, CfgTarget.THRESHOLD, 0, 0, [9], geo)),
        (Cmd.CHECKSUM, b""),
        (Cmd.LOAD, bytes([proto.LOAD_CLEAR | proto.LOAD_RUN]) + ev),
    ]
    got = run_engine(dut, frames)
    want = [twin.execute(c, p) for c, p in frames]
    assert got == want
    assert [g[0] for g in got] == [Status.OK, Status.OK, Status.RANGE, Status.RANGE, Status.OK, Status.OK,
                                   Status.OK, Status.RANGE, Status.RANGE, Status.RANGE, Status.OK, Status.OK,
                                   Status.OK]
    assert got[0][1] == proto.expected_checksum(net).to_bytes(4, "little")
    assert got[11][1] == proto.expected_checksum(twin.net).to_bytes(4, "little") != got[0][1]
    res = CoreTwin(net, HardwareConfig(lanes=LANES, max_events=MAX_EVENTS)).run(sp)
    _, mems = proto.decode_outputs(got[1][1][4:], geo)
    assert np.array_equal(mems, res.membranes[-1]) and proto.from_le(got[1][1][:4]) == res.cycles


@pytest.mark.parametrize("shape", [SMALL, (4, 4, 4)])
def test_driver_loads_and_runs_a_conv_network_on_the_twin(shape):
    net = conv_net(shape=shape)
    new = other_weights(net)
    srv = TwinServer(proto.HostLink(net, lanes=LANES, max_payload=64, max_events=MAX_EVENTS, encoder=False))
    try:
        with Board(srv.url, timeout=1.0) as b:
            assert b.ensure_network(new) is True          # the board held other weights: loaded, checked
            assert b.ensure_network(new, verify=True) is False
            sp = random_spikes(2, 3, 3, net.n_inputs, p=0.4)
            core = CoreTwin(new, HardwareConfig(lanes=LANES, max_events=MAX_EVENTS))
            for s in sp:
                want = core.run(s)
                counts, m, cyc = b.run_sample(s)
                assert np.array_equal(counts, want.counts) and np.array_equal(m, want.membranes[-1])
                assert cyc == want.cycles
    finally:
        srv.close()


def test_checksum_cycles_of_a_conv_network():
    net = conv_net(shape=SMALL)
    assert checksum_cycles_of(ConvHarness(net)) == proto.checksum_cycles(net)


def test_the_icebreaker_conv_network_geometry():
    """tests/data/mnist-conv-16k7s3.json as built (P = 1): 10-bit packed addresses up to 891, the
    readout's 1,024 rows, and CHECKSUM read from the core at them equals the host's."""
    net = Network.load(Path(__file__).parent / "data" / "mnist-conv-16k7s3.json")
    geo = proto.LinkGeometry.of(net, 1, 16_125_000, 115_200, 512, 16384)
    assert (geo.addr_bits, geo.event_bytes, geo.rows) == (10, 2, (0, 1024))
    ok = [a for a in range(1 << 10) if not geo.load_address_bad(a)]
    assert len(ok) == 784 and max(ok) == 891
    core = CoreTwin(net, HardwareConfig(lanes=1, max_events=16384))
    assert proto.expected_checksum(net, core.param, core.geometry) == proto.expected_checksum(net)
