"""Conv and spike-pooling layers (README, "Convolutional layers"): hand-worked golden vectors, a
plain-loop transcription of the contract that the vectorised model must equal on random networks,
the file format and validation."""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, NetworkFormatError, simulate
from spikegate.model.conv import ConvSpec, fan_out, kernel_4d
from spikegate.model.conv_eval import conv2d_layer, pool_layer
from spikegate.model.hardware import HardwareConfig
from spikegate.model.simulate import simulate_steps

# README golden vector: one 3x3 input channel, spikes at (0,0), (0,2), (1,1), (2,2).
X3 = np.array([1, 0, 1, 0, 1, 0, 0, 0, 1], bool)
K2 = np.array([[[[1, 2], [3, 4]]]])


def test_golden_conv_valid():
    layer = conv2d_layer(K2, (1, 3, 3), bias=[-1], threshold=3)
    res = simulate(Network([layer], timesteps=1), X3[None, None])
    # sums 5, 5, 2, 5; drive = sum - 1 = 4, 4, 1, 4; v > 3 fires and resets to zero.
    assert res.spikes[0][0, 0].tolist() == [True, True, False, True]
    assert res.membranes[0][0].tolist() == [0, 0, 1, 0]


def test_golden_conv_padding_and_stride():
    layer = conv2d_layer(K2, (1, 3, 3), stride=2, padding=1, threshold=100, membrane_bits=10)
    res = simulate(Network([layer], timesteps=1), X3[None, None])
    assert layer.conv.out_shape == (1, 2, 2)
    assert res.membranes[0][0].tolist() == [4, 4, 0, 5]


def test_golden_sumpool_or_rule():
    x = np.zeros(16, bool)
    x[[0, 1, 15]] = True  # (0,0) and (0,1) share the top-left window; (3,3) is alone in its window
    res = simulate(Network([pool_layer("sumpool2d", (1, 4, 4), 2)], timesteps=1), x[None, None])
    assert res.spikes[0][0, 0].tolist() == [True, False, False, True]
    assert res.membranes[0][0].tolist() == [0, 0, 0, 0]


def test_golden_avgpool_integrate_and_fire():
    # Three steps with 3 of the 4 inputs spiking: v = 3 (no spike), 6 > 4 fires -> 2, 5 > 4 fires -> 1.
    layer = pool_layer("avgpool2d", (1, 2, 2), 2, threshold=4, reset="subtract")
    x = np.tile(np.array([1, 1, 1, 0], bool), (3, 1))
    res = simulate(Network([layer], timesteps=3), x[None])
    assert res.spikes[0][0, :, 0].tolist() == [False, True, True]
    assert res.membranes[0][0].tolist() == [1]


def test_golden_two_channels_flatten_into_dense():
    # Two output channels over the same input; a dense layer reads the 2x2x2 outputs in (c, y, x) order.
    conv = conv2d_layer(np.stack([K2[0], -K2[0]]), (1, 3, 3), bias=[-1, 6], threshold=3)
    dense = Layer(weights=np.array([[1, 0]] * 4 + [[0, 1]] * 4),
                  threshold=0)
    res = simulate(Network([conv, dense], timesteps=1), X3[None, None])
    # channel 1 drives: 6 - 5, 6 - 5, 6 - 2, 6 - 5 = 1, 1, 4, 1: only position (1,0) fires.
    assert res.spikes[0][0, 0].tolist() == [True, True, False, True, False, False, True, False]
    assert res.spikes[1][0, 0].tolist() == [True, True]


# --- the plain-loop transcription -------------------------------------------------------------

def scalar_sums(spec, kernel, x):
    """kernel [C_out, C_in, k_h, k_w] (pools: unit weights on their own channel); x flat."""
    C, H, W = spec.in_shape
    Co, Ho, Wo = spec.out_shape
    out = []
    for o in range(Co):
        for Y in range(Ho):
            for X in range(Wo):
                s = 0
                for c in range(C):
                    for dy in range(spec.kernel[0]):
                        for dx in range(spec.kernel[1]):
                            y = Y * spec.stride[0] + dy - spec.padding[0]
                            xx = X * spec.stride[1] + dx - spec.padding[1]
                            if 0 <= y < H and 0 <= xx < W and x[c * H * W + y * W + xx]:
                                if spec.pool:
                                    s += 1 if c == o else 0
                                else:
                                    s += int(kernel[o, c, dy, dx])
                out.append(s)
    return out


def scalar_neuron(v, r, drive, layer):
    lo, hi = -(1 << (layer.membrane_bits - 1)), (1 << (layer.membrane_bits - 1)) - 1
    if r > 0:
        return v, r - 1, False
    lk = layer.leak
    if lk.kind == "shift":
        v = v - (v >> lk.k)
    elif lk.kind == "multiply":
        v = (v * lk.m) >> lk.frac_bits
    v = min(max(v + drive, lo), hi)
    if layer.readout:
        return v, 0, False
    if v > layer.threshold:
        return (0 if layer.reset == "zero" else v - layer.threshold), layer.refractory, True
    return v, 0, False


def scalar_run(net, spikes):
    """Spikes per layer [T][n] and final membranes for one sample [T, n_in]."""
    T = spikes.shape[0]
    vs = [[0] * layer.n for layer in net.layers]
    rs = [[0] * layer.n for layer in net.layers]
    out = [[] for _ in net.layers]
    for t in range(T):
        s = [bool(b) for b in spikes[t]]
        for l, layer in enumerate(net.layers):
            if layer.conv is None:
                syn = [sum(int(layer.weights[i, j]) for i in range(layer.n_in) if s[i]) for j in range(layer.n)]
                bias = [int(b) for b in layer.bias]
            else:
                k = None if layer.conv.pool else kernel_4d(layer)
                syn = scalar_sums(layer.conv, k, s)
                per = layer.n // layer.conv.out_channels
                bias = [int(layer.bias[j // per]) for j in range(layer.n)]
            new = []
            for j in range(layer.n):
                vs[l][j], rs[l][j], f = scalar_neuron(vs[l][j], rs[l][j], bias[j] + syn[j], layer)
                new.append(f)
            out[l].append(new)
            s = new
    return out, vs


def neuron_kwargs(draw, bits):
    leak = draw(st.sampled_from([Leak.none(), Leak.shift(2), Leak.multiply(3, 2)]))
    return dict(membrane_bits=bits, threshold=draw(st.integers(0, (1 << (bits - 1)) - 2)), leak=leak,
                reset=draw(st.sampled_from(["zero", "subtract"])), refractory=draw(st.integers(0, 2)))


@st.composite
def conv_networks(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    C, H, W = draw(st.integers(1, 3)), draw(st.integers(2, 7)), draw(st.integers(2, 7))
    kh, kw = draw(st.integers(1, min(H, 4))), draw(st.integers(1, min(W, 4)))
    ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    co, wb = draw(st.integers(1, 3)), draw(st.integers(2, 6))
    bits = draw(st.integers(4, 10))
    whi = (1 << (wb - 1)) - 1
    conv = conv2d_layer(rng.integers(-whi - 1, whi + 1, (co, C, kh, kw)), (C, H, W), stride=(sh, sw),
                        padding=(ph, pw), bias=rng.integers(-3, 4, co), weight_bits=wb, **neuron_kwargs(draw, bits))
    layers = [conv]
    shape = conv.conv.out_shape
    if draw(st.booleans()) and min(shape[1:]) >= 2:
        kind = draw(st.sampled_from(["sumpool2d", "avgpool2d"]))
        pk = draw(st.integers(1, 2))
        layers.append(pool_layer(kind, shape, pk, stride=draw(st.integers(1, 2)), **neuron_kwargs(draw, 6)))
    n = layers[-1].n
    layers.append(Layer(weights=rng.integers(-4, 5, (n, 3)), bias=rng.integers(-2, 3, 3), weight_bits=4,
                        readout=draw(st.booleans())))
    return Network(layers, timesteps=draw(st.integers(1, 5)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=conv_networks(), seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.2, 0.5, 0.9]))
def test_model_equals_scalar_transcription(net, seed, p):
    spikes = np.random.default_rng(seed).random((2, net.timesteps, net.n_inputs)) < p
    fast, steps = simulate(net, spikes), simulate_steps(net, spikes)
    for b in range(2):
        ref_spikes, ref_v = scalar_run(net, spikes[b])
        for l in range(len(net.layers)):
            assert fast.spikes[l][b].tolist() == ref_spikes[l]
            assert fast.membranes[l][b].tolist() == ref_v[l]
            assert np.array_equal(steps.spikes[l][b], fast.spikes[l][b])
            assert np.array_equal(steps.membranes[l][b], fast.membranes[l][b])


@settings(max_examples=30, deadline=None)
@given(net=conv_networks())
def test_fan_out_counts_the_windows_that_hold_each_input(net):
    layer = net.layers[0]
    k = kernel_4d(layer)
    for i in range(layer.n_in):
        x = np.zeros(layer.n_in, bool)
        x[i] = True
        ones = conv2d_layer(np.ones_like(k), layer.conv.in_shape, stride=layer.conv.stride,
                            padding=layer.conv.padding)
        assert fan_out(layer)[i] == sum(scalar_sums(ones.conv, np.ones_like(k), x))


# --- file format and validation ----------------------------------------------------------------

def small_net():
    conv = conv2d_layer(K2, (1, 3, 3), bias=[-1], threshold=3, name="c")
    pool = pool_layer("sumpool2d", (1, 2, 2), 2, name="p")
    return Network([conv, pool, Layer(weights=[[1, -1]], readout=True)], timesteps=4)


def test_file_round_trip_is_version_2_and_keeps_the_digest(tmp_path):
    net = small_net()
    path = net.save(tmp_path / "c.json")
    d = json.loads(path.read_text())
    assert d["version"] == 2
    assert [layer.get("kind") for layer in d["layers"]] == ["conv2d", "sumpool2d", None]
    assert "weights" not in d["layers"][1] and "bias" not in d["layers"][1]
    back = Network.load(path)
    assert back == net and back.digest() == net.digest()


def test_dense_files_stay_version_1_and_an_explicit_dense_kind_loads():
    net = Network([Layer(weights=[[1, 2]], threshold=1)])
    d = net.to_dict()
    assert d["version"] == 1 and "kind" not in d["layers"][0]
    d["layers"][0]["kind"] = "dense"
    assert Network.from_dict(d) == net


@pytest.mark.parametrize("change, message", [
    ({"kind": "conv3d"}, r"kind = 'conv3d' is not valid; valid: dense, conv2d"),
    ({"kernel": [4, 4]}, r"kernel = \[4, 4\] is larger than the padded input"),
    ({"padding": [2, 0]}, r"padding = \[2, 0\] is not valid for kernel = \[2, 2\]"),
    ({"n": 5}, r"n = 5 does not match the conv2d shape"),
    ({"stride": [0, 1]}, r"stride\[0\] = 0 is out of range"),
    ({"weights": [[1]]}, r"kernel matrix of shape \(4, 1\)"),
    ({"readout": False}, r"a conv2d layer is never a readout"),
    ({"in_shape": [1, 3]}, r"in_shape = \[1, 3\] is not valid"),
])
def test_bad_conv_fields_are_refused_naming_them(change, message):
    d = small_net().to_dict()
    d["layers"][0].update(change)
    with pytest.raises(NetworkFormatError, match=message):
        Network.from_dict(d)


def test_pool_fields_that_are_fixed_are_refused():
    d = small_net().to_dict()
    d["layers"][1]["weights"] = [[1]]
    with pytest.raises(NetworkFormatError, match=r"fixed unit weights.*remove field\(s\) \['weights'\]"):
        Network.from_dict(d)


def test_shapes_that_do_not_chain():
    conv = conv2d_layer(np.ones((2, 1, 3, 3), np.int64), (1, 6, 6))  # -> 2 x 4 x 4
    with pytest.raises(ValueError, match=r"takes in_shape \[1, 8, 4\] but layers\[0\] \(conv2d\) outputs "
                                         r"\[2, 4, 4\]: shapes do not chain"):
        Network([conv, pool_layer("sumpool2d", (1, 8, 4), 2)])
    with pytest.raises(ValueError, match="n_in = 36 inputs but layers.0. has n = 32"):
        Network([conv, pool_layer("sumpool2d", (1, 6, 6), 2)])
    with pytest.raises(ValueError, match="cannot be a readout"):
        Layer(weights=np.ones((9, 1), np.int64), readout=True, conv=ConvSpec("conv2d", (1, 3, 3), 1, 3))


def test_pool_keeps_its_channels_and_unit_weights():
    with pytest.raises(ValueError, match="out_channels = 2 must equal in_shape.0. = 1"):
        ConvSpec("sumpool2d", (1, 4, 4), 2, 2)
    spec = ConvSpec("avgpool2d", (1, 4, 4), 1, 2, 2)
    with pytest.raises(ValueError, match="fixed unit weights and no bias"):
        Layer(weights=np.full((4, 1), 2), weight_bits=4, conv=spec)


def test_geometry_accepts_conv2d_and_pooling():
    # conv2d has gateware (hdl/conv_layer.py, tests/test_conv_hdl.py); spike pooling runs on the same core
    # as its conv2d equivalent (model.conv_layer.pool_as_conv).
    pool_geo = HardwareConfig().geometry(small_net())[1]
    assert pool_geo.conv is not None and pool_geo.conv.spec.kind == "conv2d"
    conv_dense = Network([small_net().layers[0], Layer(weights=np.ones((4, 2), np.int64), readout=True)])
    assert HardwareConfig().geometry(conv_dense)[0].conv is not None
