"""ANN training and ANN-to-SNN conversion: accuracy, reproducibility of the shipped network,
and the properties the conversion promises (rates, quantisation, membrane widths)."""
import math
from pathlib import Path

import numpy as np
import pytest

from spikegate import datasets, default_network_path
from spikegate.ann import ANN, ann_from_network, train_ann
from spikegate.convert import convert
from spikegate.evaluation import evaluate
from spikegate.model import Network, classify, simulate
from spikegate.training import DEFAULT_CONFIG, TrainConfig, build

MNIST_SUBSET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist-subset"


@pytest.fixture(scope="module")
def default_build():
    return build(DEFAULT_CONFIG)


def test_default_conversion_reaches_the_target(default_build):
    net, report = default_build
    assert report["snn"]["accuracy"] >= 0.95
    assert report["ann_accuracy"] >= 0.95
    assert net.timesteps <= 32
    assert net.shape[0] == 64 and net.shape[-1] == 10 and all(n <= 64 for n in net.shape[1:-1])
    assert all(layer.weight_bits == 8 and layer.membrane_bits <= 16 for layer in net.layers)
    assert net.readout and all(layer.reset == "subtract" for layer in net.layers[:-1])


def test_retraining_reproduces_the_shipped_file_bit_exactly(default_build):
    net, _ = default_build
    shipped_text = Path(default_network_path()).read_text(encoding="utf-8")
    assert net.to_json() == shipped_text
    assert net == Network.load(default_network_path())


def test_shipped_provenance_and_ann(default_build):
    net = datasets.load_network()
    meta = net.meta
    assert meta["dataset"] == "digits" and meta["seed"] == 0
    assert meta["conversion"]["timesteps"] == net.timesteps
    # The float ANN travels in the file; its accuracy is recomputed here, not read back.
    ann = ann_from_network(net)
    x, y = datasets.load("digits", "test")
    assert ann.accuracy(x, y) == meta["ann_test_accuracy"]
    assert evaluate(net, x, y)["accuracy"] == meta["snn_test_accuracy"]


# --- the conversion rule, written out again element by element -------------------------------
# An independent transcription of the rule in spikegate/convert.py's docstring, in plain Python
# floats, so that the converted integers are checked against the rule rather than against a file
# produced by the same code.

def _percentile(values, p):
    """The p-th percentile: linear interpolation between order statistics at rank p/100 * (n - 1)."""
    s = sorted(values)
    rank = p / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (rank - lo)


def _reference_conversion(ann, x, weight_bits, percentile):
    """Per layer: integer weights [n_in][n], integer biases [n] and the threshold (None for the
    readout), before the biases and threshold are fitted to the membrane width."""
    wmax = 2 ** (weight_bits - 1) - 1
    acts = ann.activations(x)
    lam_prev = 1.0
    out = []
    for l, (W, b) in enumerate(zip(ann.weights, ann.biases)):
        W, b = W.tolist(), b.tolist()
        readout = l == len(ann.weights) - 1
        # hidden: a rate of 1 spike per step stands for activation lambda; the readout keeps logits
        lam = 1.0 if readout else _percentile(acts[l].ravel().tolist(), percentile)
        Wn = [[w * lam_prev / lam for w in row] for row in W]
        bn = [v / lam for v in b]
        peak = max(abs(w) for row in Wn for w in row)
        scale = wmax / peak
        Wq = [[max(-wmax, min(wmax, round(w * scale))) for w in row] for row in Wn]
        bq = [round(v * scale) for v in bn]
        out.append((Wq, bq, None if readout else max(round(scale), 1)))
        lam_prev = lam
    return out


def _assert_is_the_conversion(net, ann, x, weight_bits, percentile):
    ref = _reference_conversion(ann, x, weight_bits, percentile)
    assert len(net.layers) == len(ref)
    for l, (layer, (Wq, bq, theta)) in enumerate(zip(net.layers, ref)):
        lo, hi = -(2 ** (layer.membrane_bits - 1)), 2 ** (layer.membrane_bits - 1) - 1
        assert layer.weight_bits == weight_bits
        assert layer.weights.tolist() == Wq, f"layer {l}: weights"
        assert layer.bias.tolist() == [max(lo, min(hi, v)) for v in bq], f"layer {l}: bias"
        assert layer.readout == (theta is None)
        if theta is None:
            assert layer.threshold == 0 and layer.reset == "zero"
        else:
            assert layer.threshold == min(theta, hi - 1), f"layer {l}: threshold"
            assert layer.reset == "subtract"


def _assert_membranes_are_as_narrow_as_the_data_allows(net, x):
    """The auto width: the bits for the largest membrane on the data (or the threshold + 1) plus
    one bit of headroom, at least 4: no narrower width has that headroom."""
    wide = Network([Layer_wide(layer) for layer in net.layers], timesteps=net.timesteps, encoding=net.encoding)
    traces = simulate(wide, datasets.encode_for(net, x), traces=True).traces
    for l, layer in enumerate(net.layers):
        peak = max(int(np.abs(traces[l]).max()), layer.threshold + 1)
        bits = layer.membrane_bits
        assert peak < 2 ** (bits - 2), f"layer {l}: no headroom bit"
        assert bits == 4 or peak >= 2 ** (bits - 3), f"layer {l}: {bits} bits is wider than needed"


def test_shipped_network_is_the_conversion_of_its_ann():
    net = datasets.load_network()
    ann = ann_from_network(net)
    x, _ = datasets.load("digits", "train")
    conv = net.meta["conversion"]
    assert conv["weight_bits"] == DEFAULT_CONFIG.weight_bits
    assert conv["normalisation"].startswith(f"layer-wise, {DEFAULT_CONFIG.percentile} percentile")
    _assert_is_the_conversion(net, ann, x, DEFAULT_CONFIG.weight_bits, DEFAULT_CONFIG.percentile)
    _assert_membranes_are_as_narrow_as_the_data_allows(net, x)


def _toy_ann_two_hidden(seed, n_in=12, hidden=(10, 7), n_out=4):
    """A toy ANN with two hidden layers, so that lambda_(l-1) enters a hidden layer's weights."""
    rng = np.random.Generator(np.random.PCG64(seed))
    sizes = (n_in, *hidden, n_out)
    ws = [rng.normal(0, 0.5, (a, b)) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.normal(0, 0.1, b) for b in sizes[1:]]
    return ANN(ws, bs), rng.random((150, n_in))


@pytest.mark.parametrize("weight_bits", [2, 4, 8, 12, 16])
@pytest.mark.parametrize("percentile", [90.0, 99.9, 100.0])
def test_conversion_follows_the_rule(weight_bits, percentile):
    ann, x = _toy_ann_two_hidden(weight_bits)
    net = convert(ann, x, timesteps=8, weight_bits=weight_bits, percentile=percentile)
    _assert_is_the_conversion(net, ann, x, weight_bits, percentile)
    _assert_membranes_are_as_narrow_as_the_data_allows(net, x)


def test_conversion_rule_with_a_narrow_fixed_membrane():
    # 6-bit membranes clip the biases and cap the threshold at the largest reachable value.
    ann, x = _toy_ann_two_hidden(7)
    net = convert(ann, x, weight_bits=8, membrane_bits=6)
    assert net.layers[0].threshold == 30
    _assert_is_the_conversion(net, ann, x, 8, 99.9)


def test_train_ann_is_deterministic_and_seeded():
    x, y = datasets.load("digits", "train")
    a = train_ann(x[:300], y[:300], (16,), seed=3, epochs=3)
    b = train_ann(x[:300], y[:300], (16,), seed=3, epochs=3)
    c = train_ann(x[:300], y[:300], (16,), seed=4, epochs=3)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.weights[0], c.weights[0])
    # parameters are float32 values (what the file stores)
    assert all(np.array_equal(w, w.astype(np.float32)) for w in a.weights + a.biases)


def test_ann_meta_round_trip_and_corruption():
    rng = np.random.Generator(np.random.PCG64(1))
    ann = ANN([rng.standard_normal((5, 3)).astype(np.float32).astype(np.float64),
               rng.standard_normal((3, 2)).astype(np.float32).astype(np.float64)],
              [np.zeros(3), np.ones(2)])
    back = ANN.from_meta(ann.to_meta())
    for u, v in zip(ann.weights + ann.biases, back.weights + back.biases):
        np.testing.assert_array_equal(u, v)
    bad = ann.to_meta()
    bad["shape"] = [5, 4, 2]
    with pytest.raises(ValueError, match="meta.ann"):
        ANN.from_meta(bad)
    bad = ann.to_meta()
    bad["weights"][0] = "not base64!"
    with pytest.raises(ValueError, match="meta.ann"):
        ANN.from_meta(bad)


def _toy_ann(seed, n_in=12, hidden=10, n_out=4):
    rng = np.random.Generator(np.random.PCG64(seed))
    w1 = rng.normal(0, 0.5, (n_in, hidden))
    b1 = rng.normal(0, 0.1, hidden)
    w2 = rng.normal(0, 0.5, (hidden, n_out))
    b2 = rng.normal(0, 0.1, n_out)
    return ANN([w1, w2], [b1, b2]), rng.random((200, n_in))


def test_hidden_rates_follow_normalised_activations():
    # Rate conversion's promise: a hidden neuron's spike rate is its ReLU activation divided by
    # lambda (the activation percentile), clipped to one spike per step.
    ann, x = _toy_ann(0)
    T = 64
    net = convert(ann, x, timesteps=T, weight_bits=12, percentile=99.0)
    lam = np.percentile(ann.activations(x)[0], 99.0)
    expected = np.clip(ann.activations(x)[0] / lam, 0, 1)
    res = simulate(net, datasets.encode_for(net, x))
    rate = res.spikes[0].mean(axis=1)
    assert np.abs(rate - expected).mean() < 0.03
    assert np.abs(rate - expected).max() < 0.15


def test_readout_tracks_the_ann_logits():
    ann, x = _toy_ann(1)
    net = convert(ann, x, timesteps=64, weight_bits=12, percentile=100.0)
    res = simulate(net, datasets.encode_for(net, x))
    agree = np.mean(classify(net, res) == ann.predict(x))
    assert agree >= 0.9
    corr = np.corrcoef(res.membranes[-1].ravel(), ann.activations(x)[-1].ravel())[0, 1]
    assert corr > 0.95


@pytest.mark.parametrize("weight_bits", [2, 4, 8, 12, 16])
def test_quantisation_uses_the_full_weight_range(weight_bits):
    ann, x = _toy_ann(2)
    net = convert(ann, x, timesteps=8, weight_bits=weight_bits)
    wmax = (1 << (weight_bits - 1)) - 1
    for layer in net.layers:
        assert layer.weight_bits == weight_bits
        assert np.abs(layer.weights).max() == wmax
    hidden = net.layers[0]
    # threshold = the integer value of "one spike's worth": the layer's weight scale
    lam = np.percentile(ann.activations(x)[0], 99.9)
    scale = wmax / np.abs(ann.weights[0] / lam).max()
    assert hidden.threshold == max(round(scale), 1)
    np.testing.assert_array_equal(hidden.weights, np.rint(ann.weights[0] / lam * scale))


@pytest.mark.parametrize("weight_bits, T", [(4, 8), (8, 32), (16, 16)])
def test_auto_membrane_width_never_saturates_on_calibration_data(weight_bits, T):
    ann, x = _toy_ann(3)
    net = convert(ann, x, timesteps=T, weight_bits=weight_bits)
    wide = Network([Layer_wide(layer) for layer in net.layers], timesteps=T)
    s = datasets.encode_for(net, x)
    a, b = simulate(net, s, traces=True), simulate(wide, s, traces=True)
    for l in range(len(net.layers)):
        np.testing.assert_array_equal(a.traces[l], b.traces[l])
        # and one bit of headroom: the largest membrane fits in half the range
        assert np.abs(a.traces[l]).max() < (1 << (net.layers[l].membrane_bits - 2))


def Layer_wide(layer):
    from spikegate.model import Layer
    return Layer(weights=layer.weights, bias=layer.bias, threshold=layer.threshold, weight_bits=layer.weight_bits,
                 membrane_bits=32, leak=layer.leak, reset=layer.reset, refractory=layer.refractory,
                 readout=layer.readout)


def test_two_hidden_layers_convert():
    x, y = datasets.load("digits", "train")
    xt, yt = datasets.load("digits", "test")
    ann = train_ann(x, y, (32, 24), seed=1, epochs=40)
    net = convert(ann, x, timesteps=16)
    assert net.shape == (64, 32, 24, 10)
    assert evaluate(net, xt, yt)["accuracy"] >= ann.accuracy(xt, yt) - 0.05


def test_fixed_membrane_bits_and_silent_layer_error():
    ann, x = _toy_ann(4)
    net = convert(ann, x, membrane_bits=20)
    assert [layer.membrane_bits for layer in net.layers] == [20, 20]
    dead = ANN([np.full((12, 10), -1.0), ann.weights[1]], [np.full(10, -1.0), ann.biases[1]])
    with pytest.raises(ValueError, match="silent"):
        convert(dead, x)


@pytest.mark.parametrize("field, value, word", [
    ("data", "cifar", "data"), ("hidden", (), "hidden"), ("hidden", (0,), "hidden"),
    ("timesteps", 0, "timesteps"), ("weight_bits", 1, "weight_bits"), ("weight_bits", 17, "weight_bits"),
    ("membrane_bits", 40, "membrane_bits"), ("percentile", 20.0, "percentile"), ("seed", -1, "seed"),
    ("epochs", 0, "epochs"), ("encoding", "latency", "encoding"), ("learning_rate", 0, "learning_rate")])
def test_config_errors_name_the_parameter(field, value, word):
    with pytest.raises(ValueError, match=word) as e:
        TrainConfig(**{field: value}).check()
    assert repr(value) in str(e.value) or str(value) in str(e.value)


def test_mnist_subset_conversion():
    """A short MNIST run on the shared subset (fewer than the official 60,000 training images, so
    not comparable with published full-MNIST accuracies)."""
    net, report = build(TrainConfig(data="mnist", hidden=(32,), epochs=2, timesteps=8), data_dir=MNIST_SUBSET)
    assert net.shape == (784, 32, 10)
    assert report["ann_accuracy"] > 0.85
    assert report["snn"]["accuracy"] > report["ann_accuracy"] - 0.03
    assert net.meta["dataset"] == "mnist" and net.meta["train_samples"] == 6000


def test_poisson_evaluation_does_not_depend_on_the_batch_size():
    ann, x = _toy_ann(5)
    net = convert(ann, x, timesteps=6, encoding="poisson")
    y = ann.predict(x)
    a = evaluate(net, x, y, seed=3, batch_size=7)
    b = evaluate(net, x, y, seed=3, batch_size=500)
    assert a == b
    spikes = datasets.encode_for(net, x, 3)
    assert a["input_spikes_per_sample"] == spikes.sum() / len(x)
    assert a["accuracy"] == np.mean(classify(net, simulate(net, spikes)) == y)
