"""The conv layer's twin (model/conv_layer.py) against the contract (model/conv.py's runner via
simulate) and the documented cycle formula (conftest.cycle_formula, a scalar transcription)."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import cycle_formula
from spikegate.model.conv_eval import conv2d_layer, pool_layer
from spikegate.model.conv_layer import ConvLayerCore, input_fields, pack, pool_as_conv, unpack
from spikegate.model.core import NetworkCore, RunResult, batch_cycles
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import Layer, Network
from spikegate.model.simulate import simulate


def test_cycles_worked_by_hand():
    # README's golden vector: 1 x 3 x 3 input, spikes at (0,0), (0,2), (1,1), (2,2); kernel [[1, 2], [3, 4]],
    # stride 1, bias -1, theta 3 -> spikes at outputs (0,0), (0,1), (1,1). One lane, so Gc = 1.
    # Positions each event reaches: (0,0) -> 1, (0,2) -> 1, (1,1) -> 4, (2,2) -> 1: 7 cycles; the sweep 4;
    # +8. The dense readout after it: 3 events x 1 group + 1 + 8 = 12. Run, sequential schedule:
    # 1 + (1 + 19 + 12) = 33; inflight (wave 0 the conv layer alone, wave 1 the readout alone):
    # 1 + (1 + 19) + (1 + 12) = 34.
    conv = conv2d_layer([[[[1, 2], [3, 4]]]], (1, 3, 3), bias=[-1], threshold=3, weight_bits=4)
    net = Network([conv, Layer(weights=np.ones((4, 1), np.int64), readout=True)], timesteps=1)
    spikes = np.zeros((1, 9), bool)
    spikes[0, [0, 2, 4, 8]] = True
    for schedule, cycles in (("sequential", 33), ("inflight", 34)):
        r = NetworkCore(net, HardwareConfig(lanes=1, schedule=schedule)).run(spikes)
        assert r.spikes[0].astype(int).tolist() == [[1, 1, 0, 1]]
        assert r.cycles == cycle_formula(net, 1, spikes, schedule=schedule) == cycles
    # Two lanes, three output channels: Gc = 2, so every reach costs twice, and the sweep 4 * 2.
    conv3 = conv2d_layer(np.ones((3, 1, 2, 2), np.int64), (1, 3, 3), threshold=3)
    net3 = Network([conv3, Layer(weights=np.ones((12, 1), np.int64), readout=True)], timesteps=1)
    r3 = NetworkCore(net3, HardwareConfig(lanes=2, schedule="sequential")).run(spikes)
    dense = int(r3.spikes[0].sum()) + 1 + 8
    assert r3.cycles == 1 + 1 + (14 + 8 + 8) + dense == cycle_formula(net3, 2, spikes, schedule="sequential")
    r3 = NetworkCore(net3, HardwareConfig(lanes=2)).run(spikes)
    assert r3.cycles == 1 + (1 + 14 + 8 + 8) + (1 + dense) == cycle_formula(net3, 2, spikes)


def test_an_event_the_stride_skips_costs_one_cycle():
    # 1x1 kernel, stride 2 on 3 x 3: inputs in odd rows or columns reach no output.
    conv = conv2d_layer(np.ones((1, 1, 1, 1), np.int64), (1, 3, 3), stride=2)
    geo = HardwareConfig(lanes=1).geometry(Network([conv], timesteps=1))[0]
    assert geo.conv.event_cost().reshape(3, 3).tolist() == [[1, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert geo.cycles([1, 4]) == 1 + 1 + 4 + 8
    wide = conv2d_layer(np.ones((4, 1, 3, 3), np.int64), (1, 5, 5), stride=2, padding=1)
    g4 = HardwareConfig(lanes=2).geometry(Network([wide], timesteps=1))[0]
    # 3 outputs a row, windows over padded coordinates [0, 3), [2, 5), [4, 7): rows 0..4 (padded 1..5)
    # reach 1, 2, 1, 2, 1 of them, column 2 (padded 3) reaches 1; times Gc = 2.
    assert g4.conv.event_cost().reshape(5, 5)[:, 2].tolist() == [2, 4, 2, 4, 2]
    assert g4.conv.event_cost().reshape(5, 5)[1, 1] == 2 * 2 * 2


def test_packed_addresses():
    fields = input_fields((3, 5, 7))
    assert fields == (2, 3, 3)
    assert pack(fields, 2, 4, 6) == (4 << 5) | (6 << 2) | 2
    assert unpack(fields, pack(fields, 2, 4, 6)) == (2, 4, 6)


def _random_pool(rng, shape):
    """A sumpool2d/avgpool2d layer on a C x H x W map: OR rule, integrate-and-fire or another neuron."""
    k = [int(rng.integers(1, min(3, s) + 1)) for s in shape[1:]]
    p = [int(rng.integers(0, kk)) for kk in k]
    s = [int(rng.integers(1, 3)) for _ in k]
    kind = str(rng.choice(["sumpool2d", "avgpool2d"]))
    theta = int(rng.integers(0, k[0] * k[1] + 2))
    return pool_layer(kind, shape, k, stride=s, padding=p, threshold=theta, membrane_bits=int(rng.integers(5, 9)),
                      reset=str(rng.choice(["zero", "subtract"])), refractory=int(rng.integers(0, 2)))


def _random_conv_net(seed: int) -> Network:
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9))
    layers, shape = [], (c, h, w)
    for _ in range(int(rng.integers(1, 3))):
        k = [int(rng.integers(1, min(4, s) + 1)) for s in shape[1:]]
        p = [int(rng.integers(0, kk)) for kk in k]
        s = [int(rng.integers(1, 4)) for _ in k]
        co, wb = int(rng.integers(1, 7)), int(rng.integers(2, 7))
        hi, V = 1 << (wb - 1), int(rng.integers(wb + 1, 14))
        layer = conv2d_layer(rng.integers(-hi, hi, (co, shape[0], *k)), shape, stride=s, padding=p,
                             bias=rng.integers(-3, 4, co), threshold=int(rng.integers(0, min(2 * hi, (1 << (V - 1)) - 1))),
                             weight_bits=wb, membrane_bits=V, reset=str(rng.choice(["zero", "subtract"])),
                             refractory=int(rng.integers(0, 3)))
        layers.append(layer)
        shape = layer.conv.out_shape
        if rng.random() < 0.5:  # spike pooling after it (the gateware runs it as a conv2d, pool_as_conv)
            pool = _random_pool(rng, shape)
            layers.append(pool)
            shape = pool.conv.out_shape
        if min(shape[1:]) < 2:
            break
    n = layers[-1].n
    layers.append(Layer(weights=rng.integers(-8, 8, (n, int(rng.integers(1, 5)))), weight_bits=4,
                        membrane_bits=12, readout=True))
    return Network(layers, timesteps=int(rng.integers(1, 5)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), lanes_exp=st.integers(0, 3), p=st.floats(0.05, 0.9))
def test_twin_is_the_contract_on_random_conv_networks(seed, lanes_exp, p):
    net = _random_conv_net(seed)
    spikes = np.random.default_rng(seed ^ 0xC0).random((2, net.timesteps, net.n_inputs)) < p
    ref = simulate(net, spikes)
    P = 1 << lanes_exp
    twin = NetworkCore(net, HardwareConfig(lanes=P))
    for b in range(2):
        r = twin.run(spikes[b])
        assert (m := RunResult.from_simulation(net, ref, b).mismatch(r)) is None, m
        assert r.cycles == cycle_formula(net, P, spikes[b])
        # mon words of a conv layer: packed (position, channel group) words whose lanes are channels.
        for l, geo in enumerate(twin.geometry):
            if geo.conv is None:
                continue
            for t in range(net.timesteps):
                got = sorted(int(j) for (ll, tt, base, w) in r.mon if (ll, tt) == (l, t)
                             for j in geo.conv.flat_outputs([base + k for k in range(P) if (w >> k) & 1]))
                assert got == np.flatnonzero(ref.spikes[l][b, t]).tolist()
    assert batch_cycles(net, P, spikes, ref).tolist() == [twin.run(s).cycles for s in spikes]


def test_the_twin_counts_its_own_integration_cycles():
    net = _random_conv_net(7)
    twin = NetworkCore(net, HardwareConfig(lanes=2))
    core = twin.layers[0]
    assert isinstance(core, ConvLayerCore)
    flat = np.arange(0, net.n_inputs, 3)
    fields = core.cg.in_fields
    c, h, w = net.layers[0].conv.in_shape
    addrs = [pack(fields, i // (h * w), (i // w) % h, i % w) for i in flat]
    core.step(addrs)
    assert core.integration_cycles + core.geo.groups + 8 == core.geo.cycles(flat)


def test_geometry_refuses_what_has_no_gateware_naming_layer_and_feature():
    conv = conv2d_layer(np.ones((2, 1, 3, 3), np.int64), (1, 4, 4), threshold=2, name="c")
    pool = pool_layer("sumpool2d", (2, 2, 2), 2, name="p")
    # Pooling runs on the conv core as its conv2d equivalent: a diagonal kernel of 2 x 2 x 2 rows.
    g = HardwareConfig(lanes=2).geometry(Network([conv, pool]))[1]
    assert g.conv.spec.kind == "conv2d" and g.conv.spec.kernel_rows == 8 and g.conv.groups == 1
    assert pool_as_conv(pool).weights[:, 0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    with pytest.raises(ValueError, match=r"layer 1 \(p2\) is a avgpool2d layer after a dense layer"):
        HardwareConfig().geometry(Network([Layer(weights=np.ones((3, 16), np.int64)),
                                           pool_layer("avgpool2d", (1, 4, 4), 2, threshold=4, name="p2")]))
    after_dense = conv2d_layer(np.ones((1, 1, 2, 2), np.int64), (1, 4, 4), name="c2")
    with pytest.raises(ValueError, match=r"layer 1 \(c2\) is a conv2d layer after a dense layer"):
        HardwareConfig().geometry(Network([Layer(weights=np.ones((3, 16), np.int64)), after_dense]))
    with pytest.raises(ValueError, match=r"layer 0 \(c\) is a conv2d layer: its kernels live in block RAM"):
        HardwareConfig(weight_ram="spram").geometry(Network([conv]))
    readout = Layer(weights=np.ones((8, 4), np.int64), weight_bits=8, readout=True, name="d")
    # a dense layer after a conv layer may keep its weights in SPRAM, at the packed rows: the 2 x 2 x 2 map's
    # highest address at P = 4 (2 channel bits, 1 column bit) is (1 << 3) | (1 << 2) | 1 = 13; 4 lanes of
    # 8 bits are two SPRAM tiles wide
    g = HardwareConfig(weight_ram=("block", "spram")).geometry(Network([conv, readout]))[1]
    assert (g.weight_ram, g.n_in, g.spram_tiles) == ("spram", 14, 2)


def test_memory_bits_of_the_mnist_conv_network():
    c1 = conv2d_layer(np.zeros((16, 1, 5, 5), np.int64), (1, 28, 28), stride=2, padding=2, weight_bits=8,
                      membrane_bits=16, threshold=1)
    c2 = conv2d_layer(np.zeros((32, 16, 5, 5), np.int64), (16, 14, 14), stride=2, padding=2, weight_bits=8,
                      membrane_bits=18, threshold=1)
    d = Layer(weights=np.zeros((1568, 10), np.int64), weight_bits=8, membrane_bits=18, readout=True)
    geos = HardwareConfig(lanes=4).geometry(Network([c1, c2, d], timesteps=32))
    assert [g.memory_bits()["weights"] for g in geos[:2]] == [25 * 16 * 8, 400 * 32 * 8]
    assert [g.groups for g in geos] == [14 * 14 * 4, 7 * 7 * 8, 3]
    # The dense layer's rows sit at the packed addresses (y << 8) | (x << 5) | c of the 32 x 7 x 7 map.
    assert geos[2].n_in == (6 << 8 | 6 << 5 | 31) + 1 == 1760


def test_precheck_of_the_mnist_conv_network_on_the_icebreaker():
    # tests/data/mnist-conv-8-16.json at P = 1: block-RAM memories of the conv layers (no bias memory: a
    # conv layer's Gc bias words are a logic table), and the pre-check's refusal before any tool runs.
    from pathlib import Path
    from spikegate.boards.fit import ResourceError, estimate, precheck
    from spikegate.boards.targets import BOARDS
    net = Network.load(Path(__file__).parent / "data" / "mnist-conv-8-16.json")
    board, hw = BOARDS["icebreaker"], HardwareConfig(lanes=1, max_events=4096)
    rows = {r["memory"]: (r["width"], r["depth"], r["blocks"]) for r in estimate(board, net, hw)["memories"]}
    assert "layer 0 bias" not in rows and "layer 1 bias" not in rows and "layer 2 bias" in rows
    assert rows["layer 0 accumulators"] == (8 + 5, 14 * 14 * 8, 7)   # 8-bit weights + log2(25 + 1)
    assert rows["layer 0 membranes"] == (17 + 1, 14 * 14 * 8, 9)      # + the epoch bit
    assert rows["layer 1 weights"] == (8, 8 * 25 * 16, 7)
    assert rows["layer 2 weights"] == (8, 880 * 10, 18)               # rows at packed (y, x, c) addresses
    # the inflight schedule's queues hold two steps: the conv layers' spike-word queues double
    with pytest.raises(ResourceError, match=r"block RAM needs 87 blocks but the device has 30"):
        precheck(board, net, hw)
    with pytest.raises(ResourceError, match=r"block RAM needs 78 blocks but the device has 30"):
        precheck(board, net, replace(hw, schedule="sequential"))
