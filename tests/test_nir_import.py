"""NIR import: the discretisation and quantisation rules, and a clear error for everything outside
the supported subset (naming the node and the reason)."""

import h5py
import nir
import numpy as np
import pytest

from spikegate.errors import UserError
from spikegate.model import Leak
from spikegate.model.simulate import classify, simulate
from spikegate.nir import (choose_leak, graph_to_float_layers, import_nir, network_from_graph,
                               simulate_float)

Z = np.zeros


def lif(n, tau=4.0, r=None, thr=1.0, v_leak=0.0, v_reset=0.0):
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau if r is None else r), v_leak=np.full(n, v_leak),
                   v_threshold=np.full(n, thr), v_reset=np.full(n, v_reset))


def chain(*nodes):
    return nir.NIRGraph.from_list(*nodes)


# --- discretisation and quantisation ------------------------------------------------------------

@pytest.mark.parametrize("beta, frac_bits, expected", [
    (1.0, 8, Leak.none()),
    (0.5, 8, Leak.shift(1)),                  # exact shift
    (0.875, 8, Leak.shift(3)),
    (0.9, 8, Leak.multiply(230, 8)),          # 230/256 = 0.8984 is nearer than 1 - 2^-3 = 0.875
    (0.9375, 4, Leak.shift(4)),               # tie (both exact): the shift wins
    (0.0, 8, Leak.multiply(0, 8)),            # no shift reaches 0
    (0.2, 2, Leak.multiply(1, 2)),            # 0.25 beats shift 1 (0.5)
    (0.999, 8, Leak.shift(10)),               # 1 - 2^-10 (err 2.3e-5) beats m = 256/256 (err 1e-3)
    (0.9999, 4, Leak.shift(13)),
])
def test_choose_leak(beta, frac_bits, expected):
    assert choose_leak(beta, frac_bits, 16) == expected


def test_forward_euler_rule():
    """LIF: beta = 1 - dt/tau and gain dt r / tau; IF: gain dt r (values worked by hand)."""
    g = chain(nir.Affine(np.array([[2.0, -1.0]]), np.array([0.5])), lif(1, tau=0.004, r=8.0, thr=3.0),
              nir.Linear(np.array([[1.0], [4.0]])), nir.IF(r=np.full(2, 250.0), v_threshold=np.full(2, 2.0),
                                                           v_reset=Z(2)))
    _, layers = graph_to_float_layers(g, dt=0.001)
    assert layers[0].beta == pytest.approx(0.75)
    np.testing.assert_allclose(layers[0].weights, [[4.0], [-2.0]])     # gain 0.001 * 0.008 / 0.004 = 2
    np.testing.assert_allclose(layers[0].bias, [1.0])
    assert layers[0].threshold == 3.0
    assert layers[1].beta == 1.0
    np.testing.assert_allclose(layers[1].weights, [[0.25, 1.0]])       # gain 0.001 * 250
    res = network_from_graph(g, dt=0.001, weight_bits=8, membrane_bits=16)
    l0, l1 = res.network.layers
    assert l0.leak == Leak.shift(2)
    # Scale 127 / 4: weights [127, -63.5 -> -64 (ties to even)], bias 31.75 -> 32, threshold floor(95.25).
    np.testing.assert_array_equal(l0.weights, [[127], [-64]])
    np.testing.assert_array_equal(l0.bias, [32])
    assert l0.threshold == 95
    assert res.layers[0]["scale"] == pytest.approx(127 / 4) and res.layers[0]["scale_limited_by"] == "weights"
    assert res.layers[0]["params"]["weights"]["max_abs"] == pytest.approx(0.5 / (127 / 4))
    assert l1.leak == Leak.none() and l1.threshold == 254     # scale 127: floor(2 * 127)
    np.testing.assert_array_equal(l1.weights, [[32, 127]])    # 31.75 -> 32


def test_threshold_limits_scale():
    g = chain(nir.Linear(np.array([[1.0]])), nir.IF(r=np.ones(1), v_threshold=np.full(1, 1000.0), v_reset=Z(1)))
    res = network_from_graph(g, dt=1.0, weight_bits=8, membrane_bits=12)
    # 127 would put the threshold at 127000; the 12-bit membrane allows floor(S * 1000) <= 2046.
    assert res.layers[0]["scale_limited_by"] == "threshold"
    assert res.network.layers[0].threshold == 2046
    assert res.network.layers[0].weights[0, 0] == 2


def test_per_neuron_thresholds_and_gains_are_folded_exactly():
    """Neurons with different thresholds and r spike exactly as the equalised float layer says."""
    rng = np.random.default_rng(1)
    W = rng.normal(size=(6, 5))
    thr = np.array([0.5, 1.0, 2.0, 1.5, 0.75, 3.0])
    r = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    node = nir.LIF(tau=np.full(6, 3.0), r=r * 3.0, v_leak=Z(6), v_threshold=thr, v_reset=Z(6))
    g = chain(nir.Linear(W), node)
    _, (L,) = graph_to_float_layers(g, dt=1.0)
    spikes = rng.random((50, 20, 5)) < 0.4
    # Direct per-neuron forward Euler of the node.
    v = np.zeros((50, 6))
    count = np.zeros((50, 6))
    for t in range(20):
        v = v + (1.0 / 3.0) * (-v + r * 3.0 * (spikes[:, t].astype(float) @ W.T))
        fired = v > thr
        v[fired] = 0.0
        count += fired
    # The equalised layer (one threshold) gives the same spike counts.
    scores, _, _ = simulate_float([L], spikes)
    np.testing.assert_array_equal(scores, count)
    assert L.threshold == 3.0 and len(L.notes) == 2


def test_calibration_avoids_readout_saturation():
    """Output 1 integrates 4 x 1.0 per step, output 0 4 x 0.5: float argmax 1 every sample. With
    8-bit membranes the range-limited scale (127) saturates both at 127 in the first step and the
    tie goes to output 0; calibration must go down to a scale at which 10 steps (40.0) fit."""
    W = np.array([[0.5, 0.5, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]])
    g = chain(nir.Linear(W), nir.I(r=np.ones(2)))
    spikes = np.ones((3, 10, 4), dtype=bool)
    uncal = network_from_graph(g, dt=1.0, weight_bits=8, membrane_bits=8)
    assert uncal.layers[0]["scale"] == 127
    assert (classify(uncal.network, simulate(uncal.network, spikes)) == 0).all()
    res = network_from_graph(g, dt=1.0, weight_bits=8, membrane_bits=8, calibrate=spikes)
    rep = res.layers[0]
    assert rep["scale_limited_by"] == "calibration"
    assert rep["calibration"]["peak"] == pytest.approx(40.0)
    assert rep["calibration"]["mismatch_uncalibrated"] == 1.0 and rep["calibration"]["mismatch"] == 0.0
    # Largest candidate 127 * 2^(-j/4) that separates them: j = 16 (7.94) gives weights 4 and 8,
    # both outputs reach 127 by step 10 and tie; j = 17 (6.67) gives 3 and 7: 120 < 127 (saturated).
    assert rep["scale"] == pytest.approx(127 * 2 ** -4.25)
    np.testing.assert_array_equal(res.network.layers[0].weights, [[3, 7]] * 4)
    assert (classify(res.network, simulate(res.network, spikes)) == 1).all()
    assert res.calibration["agreement"] == 1.0


def test_calibration_keeps_scale_when_nothing_saturates():
    g = chain(nir.Linear(np.array([[1.0, -1.0]])), nir.IF(r=np.ones(1), v_threshold=np.full(1, 1.5),
                                                          v_reset=Z(1)))
    spikes = np.random.default_rng(0).random((20, 8, 2)) < 0.5
    res = network_from_graph(g, dt=1.0, calibrate=spikes)
    assert res.layers[0]["scale_limited_by"] == "weights" and res.layers[0]["scale"] == 127
    assert res.layers[0]["calibration"]["candidates"] == 1


def test_calibration_shape_is_checked():
    g = chain(nir.Linear(np.ones((1, 4))), nir.I(r=np.ones(1)))
    with pytest.raises(ValueError, match=r"calibration spikes must have shape \[N, T, 4\], got \(2, 3, 5\)"):
        network_from_graph(g, dt=1.0, calibrate=np.zeros((2, 3, 5), dtype=bool))


def test_flatten_and_snntorch_style_scalars():
    """Input of shape (1, 2, 2) flattened; scalar parameters broadcast (as snnTorch writes them)."""
    W = np.arange(12, dtype=float).reshape(3, 4) - 5
    node = nir.LIF(tau=np.array(1e-3), r=np.array(10.0), v_leak=np.array(0.0), v_threshold=np.array(1.0),
                   v_reset=np.array(0.0))
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([1, 2, 2])}),
                            "flat": nir.Flatten(input_type={"input": np.array([1, 2, 2])}, start_dim=0),
                            "fc": nir.Linear(W), "lif": node, "out": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("in", "flat"), ("flat", "fc"), ("fc", "lif"), ("lif", "out")], type_check=False)
    res = network_from_graph(g, dt=1e-4)
    assert res.network.shape == (4, 3)
    assert res.network.layers[0].leak == Leak.multiply(230, 8)   # beta = 0.9


# --- everything outside the subset is a clear error --------------------------------------------

def g_nodes(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


IN3 = nir.Input(input_type={"input": np.array([3])})


def out(n):
    return nir.Output(output_type={"output": np.array([n])})


def unsupported_graph(kind):
    fc = nir.Affine(np.ones((2, 3)), Z(2))
    if kind == "conv":
        mid = nir.Conv1d(input_shape=3, weight=np.ones((2, 1, 1)), stride=1, padding=0, dilation=1, groups=1,
                         bias=Z(2))
        return g_nodes({"in": IN3, "conv": mid, "out": out(2)}, [("in", "conv"), ("conv", "out")])
    if kind == "pool":
        mid = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        return g_nodes({"in": IN3, "pool": mid, "out": out(2)}, [("in", "pool"), ("pool", "out")])
    if kind == "delay":
        return g_nodes({"in": IN3, "d": nir.Delay(np.ones(3)), "out": out(3)}, [("in", "d"), ("d", "out")])
    if kind == "recurrent_delay":
        rec, d = nir.Linear(np.eye(2)), nir.Delay(np.ones(2))
        return g_nodes({"in": IN3, "fc": fc, "lif": lif(2), "rec": rec, "d": d, "out": out(2)},
                       [("in", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "d"), ("d", "lif"), ("lif", "out")])
    if kind == "self":
        return g_nodes({"in": IN3, "fc": fc, "lif": lif(2), "out": out(2)},
                       [("in", "fc"), ("fc", "lif"), ("lif", "lif"), ("lif", "out")])
    if kind == "skip":
        nodes = {"in": IN3, "fc": fc, "lif": lif(2), "fc2": nir.Linear(np.ones((2, 2))), "lif2": lif(2),
                 "fc3": nir.Linear(np.ones((2, 3))), "out": out(2)}
        return g_nodes(nodes, [("in", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "lif2"), ("in", "fc3"),
                               ("fc3", "lif2"), ("lif2", "out")])
    if kind == "merge_delays":
        nodes = {"in": IN3, "fc": fc, "d": nir.Delay(np.full(3, 2.0)), "fc_b": nir.Linear(np.ones((2, 3))),
                 "lif": lif(2), "out": out(2)}
        return g_nodes(nodes, [("in", "fc"), ("in", "d"), ("d", "fc_b"), ("fc", "lif"), ("fc_b", "lif"),
                               ("lif", "out")])
    if kind == "branch":
        return g_nodes({"in": IN3, "fc": fc, "lif": lif(2), "lif_b": lif(2), "out": out(2)},
                       [("in", "fc"), ("fc", "lif"), ("fc", "lif_b"), ("lif", "out")])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, pattern", [
    ("conv", r"NIR node 'conv' \(Conv1d\): convolutions are not supported"),
    ("pool", r"NIR node 'pool' \(SumPool2d\) receives a flat vector of 3 values; it needs a feature map"),
    ("delay", r"the NIR graph has no Affine/Linear -> neuron layer"),
    ("recurrent_delay", r"NIR node 'd' \(Delay\) is on the recurrent path 'lif' -> 'rec' -> 'lif'; recurrent spikes "
                        r"arrive one step later"),
    ("self", r"NIR node 'lif' \(LIF\) feeds itself directly; a recurrent edge needs an Affine/Linear node"),
    ("skip", r"NIR node 'lif2' \(LIF\) is fed from 2 layers \(\['in', 'lif'\]\); only a chain of layers"),
    ("merge_delays", r"NIR nodes 'fc' and 'fc_b' both connect input 0 to neuron 0 of 'lif', with delays 0 and 2: "
                     r"spikegate has one delay per synapse"),
    ("branch", r"NIR node 'fc' \(Affine\) has 2 outgoing edges \(to \['lif', 'lif_b'\]\)"),
])
def test_unsupported_structure(kind, pattern):
    with pytest.raises(UserError, match=pattern):
        network_from_graph(unsupported_graph(kind), dt=1.0)


@pytest.mark.parametrize("nodes, pattern", [
    ([nir.Linear(np.ones((2, 3))), lif(2, v_leak=0.5)],
     r"NIR node 'lif' \(LIF\): v_leak = 0.5; only v_leak = 0 is supported"),
    ([nir.Linear(np.ones((2, 3))), lif(2, v_reset=-1.0)],
     r"NIR node 'lif' \(LIF\): v_reset = -1; only v_reset = 0 is supported"),
    ([nir.Linear(np.ones((2, 3))), lif(2, tau=0.5)],
     r"NIR node 'lif' \(LIF\): tau = 0.5 is shorter than dt = 1: .* use a smaller --dt"),
    ([nir.Linear(np.ones((2, 3))), lif(2, thr=-1.0)], r"NIR node 'lif' \(LIF\): v_threshold = -1; thresholds must be >= 0"),
    ([nir.Linear(np.ones((2, 3))), nir.LIF(tau=np.array([2.0, 3.0]), r=np.ones(2), v_leak=Z(2),
                                            v_threshold=np.ones(2), v_reset=Z(2))],
     r"NIR node 'lif' \(LIF\): tau differs between neurons \(2 .. 3\)"),
    ([nir.Linear(np.ones((2, 3))), nir.LI(tau=np.full(2, 2.0), r=np.ones(2), v_leak=Z(2)),
      nir.Linear(np.ones((1, 2))), lif(1)],
     r"NIR node 'li' \(LI\) is a non-spiking readout but is followed by more layers"),
    ([nir.Linear(np.ones((2, 3))), nir.CubaLIF(tau_syn=np.full(2, 2.0), tau_mem=np.full(2, 4.0), r=np.ones(2),
                                                v_leak=np.full(2, 0.5), v_threshold=np.ones(2), v_reset=Z(2))],
     r"NIR node 'cubalif' \(CubaLIF\): v_leak = 0.5; only v_leak = 0 is supported"),
    ([nir.Linear(np.ones((2, 3))), nir.CubaLIF(tau_syn=np.full(2, 0.5), tau_mem=np.full(2, 4.0), r=np.ones(2),
                                                v_leak=Z(2), v_threshold=np.ones(2), v_reset=Z(2))],
     r"NIR node 'cubalif' \(CubaLIF\): tau_syn = 0.5 is shorter than dt = 1"),
    ([nir.Linear(np.ones((2, 3))), nir.CubaLI(tau_syn=np.array([2.0, 3.0]), tau_mem=np.full(2, 4.0), r=np.ones(2),
                                               v_leak=Z(2))],
     r"NIR node 'cubali' \(CubaLI\): tau_syn differs between neurons \(2 .. 3\)"),
    ([nir.Delay(np.full(3, 1.5)), nir.Linear(np.ones((2, 3))), lif(2)],
     r"NIR layer 'lif': the delay from input 0 to neuron 0 is 1.5 s, not a whole number of steps of dt = 1 s"),
    ([nir.Delay(np.full(3, 256.0)), nir.Linear(np.ones((2, 3))), lif(2)],
     r"NIR layer 'lif': a delay of 256 steps \(dt = 1 s\) is longer than the 255 steps spikegate supports"),
    ([nir.Affine(np.ones((2, 3)), np.ones(2)), nir.Delay(np.full(2, 1.0)), lif(2)],
     r"NIR node 'delay' \(Delay\) delays the bias of 'affine'"),
    ([nir.Linear(np.ones((2, 3))), nir.Linear(np.ones((2, 2))), lif(2)],
     r"NIR node 'linear_1' \(Linear\) follows 'linear' \(Linear\) directly"),
    ([lif(3)], r"NIR node 'lif' \(LIF\) is not preceded by an Affine or Linear node"),
    ([nir.Linear(np.ones((2, 3))), nir.Scale(np.ones(2))], r"NIR node 'scale' \(Scale\): Scale nodes are not supported"),
    ([nir.Linear(np.ones((2, 3))), nir.IF(r=np.ones(2), v_threshold=np.array([0.0, 1.0]), v_reset=Z(2))],
     r"NIR node 'if' \(IF\): v_threshold mixes 0 and positive values"),
])
def test_unsupported_parameters(nodes, pattern):
    with pytest.raises(UserError, match=pattern):
        network_from_graph(chain(*nodes), dt=1.0)


def test_delay_of_the_wrong_width():
    g = g_nodes({"in": IN3, "d": nir.Delay(np.ones(2)), "fc": nir.Linear(np.ones((2, 3))), "lif": lif(2),
                 "out": out(2)}, [("in", "d"), ("d", "fc"), ("fc", "lif"), ("lif", "out")])
    with pytest.raises(UserError, match=r"NIR node 'd' \(Delay\): delay has 2 values but sits before an "
                                        r"Affine/Linear of 3 values"):
        network_from_graph(g, dt=1.0)


def test_dt_is_required_with_hint():
    g = chain(nir.Linear(np.ones((2, 3))), lif(2, tau=5e-3, r=50.0))
    with pytest.raises(UserError, match=r"--dt is required .* which suggests --dt 0.0001"):
        network_from_graph(g)


def _write_old(tmp_path, version):
    """A NIR file as nir < 1.0.6 wrote it: a LIF node without v_reset."""
    path = tmp_path / "old.nir"
    nir.write(str(path), chain(nir.Linear(np.ones((2, 3))), lif(2)))
    with h5py.File(path, "r+") as f:
        del f["node"]["nodes"]["lif"]["v_reset"]
        del f["version"]
        if version is not None:
            f.create_dataset("version", data=version, dtype=h5py.string_dtype())
    return path


@pytest.mark.parametrize("version", ["1.0.4", "0.2.0", None])
@pytest.mark.parametrize("assume", [None, "zero", "subtract"])
def test_old_graph_without_v_reset_imports_under_a_reported_assumption(tmp_path, version, assume):
    """Before NIR 1.0.6 tools disagreed on the reset; the default is what nir.read fills in (0)."""
    path = _write_old(tmp_path, version)
    res = import_nir(path, dt=1.0, **({} if assume is None else {"v_reset": assume}))
    assert res.network.layers[0].reset == (assume or "zero")
    assert res.v_reset == {"assumed": assume or "zero", "nodes": ["lif"], "nir_version": version}
    assert res.to_json()["v_reset_assumption"] == res.v_reset
    with pytest.raises(ValueError, match=r"v_reset assumption = 'keep' is not valid; valid: zero, subtract"):
        import_nir(path, dt=1.0, v_reset="keep")


def test_new_graph_without_v_reset_means_zero(tmp_path):
    """From NIR 1.0.7 on v_reset is optional and defaults to 0."""
    res = import_nir(_write_old(tmp_path, "1.0.7"), dt=1.0, v_reset="subtract")
    assert res.network.layers[0].reset == "zero" and res.v_reset is None


def test_not_a_nir_file(tmp_path):
    p = tmp_path / "x.nir"
    p.write_text("hello")
    with pytest.raises(UserError, match=r"x.nir is not a NIR file \(cannot read it as HDF5"):
        import_nir(p, dt=1.0)
    with pytest.raises(FileNotFoundError, match="NIR file .* does not exist"):
        import_nir(tmp_path / "none.nir", dt=1.0)


@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(dt=0.0), ValueError, r"dt = 0.0 is not valid; valid: a number of seconds > 0"),
    (dict(dt=1.0, weight_bits=17), ValueError, r"weight_bits = 17 is not valid; valid: an integer 2..16"),
    (dict(dt=1.0, membrane_bits=1), ValueError, r"membrane_bits = 1 is not valid; valid: an integer 2..32"),
    (dict(dt=1.0, leak_frac_bits=0), ValueError, r"leak_frac_bits = 0 is not valid"),
    (dict(dt=1.0, encoding="morse"), ValueError, r"encoding = 'morse' is not valid; valid: rate, poisson, latency"),
])
def test_bad_options(kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        network_from_graph(chain(nir.Linear(np.ones((2, 3))), lif(2)), **kw)
