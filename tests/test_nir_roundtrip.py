"""NIR export: network -> NIR file -> network is the identical network, for every supported mode."""
import itertools
import json

import h5py
import nir
import numpy as np
import pytest

from spikegate import datasets
from spikegate.errors import UserError
from spikegate.model import Layer, Leak, Network
from spikegate.model.random import random_network
from spikegate.nir import META_KEY, export_nir, import_nir, network_to_graph

MODES = list(itertools.product(["none", "shift", "multiply"], ["zero", "subtract"], [False, True], [0, 3]))


def roundtrip(net, tmp_path, name="m.nir"):
    path = tmp_path / name
    export_nir(net, path)
    return import_nir(path)


@pytest.mark.parametrize("leak, reset, readout, refractory", MODES)
def test_roundtrip_every_mode(tmp_path, leak, reset, readout, refractory):
    for seed in range(4):
        net = random_network(1000 * seed + MODES.index((leak, reset, readout, refractory)), leak=leak,
                             reset=reset, readout=readout, refractory=refractory)
        net.meta = {"seed": seed, "nested": {"list": [1, 2.5, "x"]}}
        res = roundtrip(net, tmp_path)
        assert res.exact
        assert res.network == net
        assert res.network.digest() == net.digest()


@pytest.mark.parametrize("seed", range(24))
def test_roundtrip_random(tmp_path, seed):
    net = random_network(seed)
    assert roundtrip(net, tmp_path).network == net


@pytest.mark.parametrize("leak", [Leak.none(), Leak.shift(1), Leak.shift(32), Leak.multiply(0, 1), Leak.multiply(1, 1),
                                  Leak.multiply(2, 1), Leak.multiply(65535, 16), Leak.multiply(65536, 16),
                                  Leak.multiply(1, 16), Leak.multiply(3, 2)])
@pytest.mark.parametrize("readout", [False, True])
def test_roundtrip_leak_extremes(tmp_path, leak, readout):
    """Decays of exactly 0 and 1 and the finest multiply fractions survive the float encoding."""
    rng = np.random.default_rng(7)
    w = rng.integers(-(1 << 15), 1 << 15, size=(5, 4))
    layer = Layer(weights=w, bias=np.array([-(1 << 31), (1 << 31) - 1, 0, 5]), threshold=0 if readout else (1 << 31) - 2,
                  weight_bits=16, membrane_bits=32, leak=leak, readout=readout, name="extreme")
    net = Network(layers=[layer], timesteps=4096, encoding="latency", name="edge")
    assert roundtrip(net, tmp_path).network == net


def test_default_network_roundtrip(tmp_path):
    net = datasets.load_network(None)
    assert roundtrip(net, tmp_path).network == net


def test_export_graph_uses_nir_semantics():
    """The float parameters give the integer dynamics under NIR forward Euler with dt = 1."""
    layers = [
        Layer(weights=np.array([[3, -2]]), bias=np.array([1, 0]), threshold=9, leak=Leak.shift(2), reset="zero"),
        Layer(weights=np.array([[1], [2]]), threshold=4, leak=Leak.none()),
        Layer(weights=np.array([[5, 6]]), leak=Leak.multiply(3, 4), readout=True),
    ]
    graph, warnings = network_to_graph(Network(layers=layers))
    assert warnings == []
    types = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert types == {"input": "Input", "fc0": "Affine", "lif0": "LIF", "fc1": "Linear", "if1": "IF",
                     "fc2": "Linear", "li2": "LI", "output": "Output"}
    lif = graph.nodes["lif0"]
    np.testing.assert_array_equal(lif.tau, [4.0, 4.0])           # 1 - 1/4 = 1 - 2^-2
    np.testing.assert_array_equal(lif.r, [4.0, 4.0])             # gain dt r / tau = 1
    np.testing.assert_array_equal(lif.v_threshold, [9.0, 9.0])
    np.testing.assert_array_equal(lif.v_reset, [0.0, 0.0])
    np.testing.assert_array_equal(graph.nodes["fc0"].weight, [[3.0], [-2.0]])   # NIR is [out, in]
    np.testing.assert_array_equal(graph.nodes["fc0"].bias, [1.0, 0.0])
    np.testing.assert_array_equal(graph.nodes["if1"].r, [1.0])
    assert 1 - 1 / graph.nodes["li2"].tau[0] == 3 / 16


def test_export_warns_about_what_nir_cannot_express():
    layers = [Layer(weights=np.array([[1]]), threshold=1, reset="subtract", refractory=2)]
    _, warnings = network_to_graph(Network(layers=layers))
    assert len(warnings) == 2
    assert "reset = 'subtract' has no NIR equivalent" in warnings[0]
    assert "refractory = 2 has no NIR equivalent" in warnings[1]


def test_export_is_atomic(tmp_path):
    net = random_network(3)
    with pytest.raises(FileNotFoundError, match="output directory .* does not exist"):
        export_nir(net, tmp_path / "missing" / "m.nir")
    net.meta = {"bad": object()}
    with pytest.raises(ValueError, match="not JSON-serialisable"):
        export_nir(net, tmp_path / "m.nir")
    assert list(tmp_path.iterdir()) == []


def _edit(path, node, attr, value):
    with h5py.File(path, "r+") as f:
        del f["node"]["nodes"][node][attr]
        f["node"]["nodes"][node].create_dataset(attr, data=value)


@pytest.mark.parametrize("node, attr, value, pattern", [
    ("lif0", "tau", np.full(3, 5.0), r"NIR node 'lif0' \(LIF\): tau does not match its spikegate metadata"),
    ("lif0", "v_threshold", np.full(3, 7.5), r"NIR node 'lif0' \(LIF\): v_threshold is not one integer"),
    ("fc0", "weight", np.full((3, 2), 0.25), r"NIR node 'fc0': weight holds non-integer values"),
])
def test_edited_export_is_refused(tmp_path, node, attr, value, pattern):
    net = Network(layers=[Layer(weights=np.ones((2, 3), dtype=np.int64), bias=np.array([1, 2, 3]), threshold=5,
                                leak=Leak.shift(3))])
    path = tmp_path / "m.nir"
    export_nir(net, path)
    _edit(path, node, attr, value)
    with pytest.raises(UserError, match=pattern) as e:
        import_nir(path)
    assert "--ignore-metadata" in str(e.value)
    # As a float graph it still imports.
    assert not import_nir(path, dt=1.0, ignore_metadata=True).exact


def test_ignore_metadata_reimports_as_float(tmp_path):
    """--ignore-metadata quantises an export like any float graph: the leak maps back to the same
    shift, and the -128 weight limits the scale to 127/128 (expected values worked by hand)."""
    w = np.array([[127, -128, 5], [0, 3, -7]])
    net = Network(layers=[Layer(weights=w, bias=np.array([1, -2, 3]), threshold=50, leak=Leak.shift(3)),
                          Layer(weights=np.array([[127], [-128], [1]]), leak=Leak.none(), readout=True)],
                  timesteps=16)
    path = tmp_path / "m.nir"
    export_nir(net, path)
    res = import_nir(path, dt=1.0, ignore_metadata=True, timesteps=16)
    assert not res.exact
    got = res.network
    assert [l.leak for l in got.layers] == [Leak.shift(3), Leak.none()]
    # Scale: 127 / 128 from the -128 weight; rint brings the weights back, the threshold floors once.
    np.testing.assert_array_equal(got.layers[0].weights, [[126, -127, 5], [0, 3, -7]])
    assert got.layers[0].threshold == 49  # floor(50 * 127 / 128) = floor(49.6)


def test_metadata_is_json_in_graph_and_nodes(tmp_path):
    net = random_network(11, readout=False)
    path = tmp_path / "m.nir"
    export_nir(net, path)
    g = nir.read(str(path))
    gm = json.loads(g.metadata[META_KEY])
    assert gm["format"] == "spikegate-nir" and gm["dt"] == 1.0
    assert gm["network"]["timesteps"] == net.timesteps
    for i, layer in enumerate(net.layers):
        node = [n for k, n in g.nodes.items() if k.endswith(str(i)) and not k.startswith("fc")][0]
        m = json.loads(node.metadata[META_KEY])
        assert m["weight_bits"] == layer.weight_bits and m["membrane_bits"] == layer.membrane_bits
        assert m["reset"] == layer.reset and m["refractory"] == layer.refractory
