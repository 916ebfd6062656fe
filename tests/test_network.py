"""Network description: validation messages and the file format."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, NetworkFormatError
from spikegate.model.random import random_network


def layer(**kw):
    kw.setdefault("weights", np.zeros((3, 2), dtype=np.int64))
    return Layer(**kw)


# --- validation: every message names the field, the value and what is valid -----------------

@pytest.mark.parametrize("kw, exc, pattern", [
    (dict(weights=np.array([[128]])), ValueError, r"weights contain 128, outside the 8-bit signed range \[-128, 127\]"),
    (dict(weights=np.array([[-9]]), weight_bits=4), ValueError, r"weights contain -9, outside the 4-bit signed range \[-8, 7\]"),
    (dict(weights=np.array([[0.5]])), TypeError, r"weights must be an integer array, got dtype float64"),
    (dict(weights=np.array([1, 2])), ValueError, r"weights must be 2-dimensional, got shape \(2,\)"),
    (dict(weights=np.zeros((0, 3), dtype=int)), ValueError, r"at least one input and one neuron"),
    (dict(weight_bits=1), ValueError, r"weight_bits = 1 is out of range; valid: 2 <= weight_bits <= 16"),
    (dict(weight_bits=17), ValueError, r"weight_bits = 17 is out of range"),
    (dict(weight_bits=8.0), TypeError, r"weight_bits must be an integer, got 8.0"),
    (dict(membrane_bits=33), ValueError, r"membrane_bits = 33 is out of range; valid: 2 <= membrane_bits <= 32"),
    (dict(threshold=-1), ValueError, r"threshold = -1 is out of range; valid: 0 <= threshold <= 32766"),
    (dict(threshold=32767), ValueError, r"threshold = 32767 is out of range; valid: 0 <= threshold <= 32766"),
    (dict(threshold=7, membrane_bits=4), ValueError, r"threshold = 7 is out of range; valid: 0 <= threshold <= 6"),
    (dict(threshold=True), TypeError, r"threshold must be an integer, got True"),
    (dict(bias=np.array([1, 2, 3])), ValueError, r"bias must have shape \(2,\) to match weights \(3, 2\), got \(3,\)"),
    (dict(bias=np.array([0, 40000])), ValueError, r"bias contains 40000, outside the 16-bit membrane range \[-32768, 32767\]"),
    (dict(reset="half"), ValueError, r"reset = 'half' is not valid; valid: zero, subtract"),
    (dict(refractory=-1), ValueError, r"refractory = -1 is out of range; valid: 0 <= refractory <= 255"),
    (dict(refractory=256), ValueError, r"refractory = 256 is out of range"),
    (dict(leak="shift"), TypeError, r"leak must be a Leak, got 'shift'"),
    (dict(readout=1), TypeError, r"readout must be True or False, got 1"),
    (dict(readout=True, threshold=5), ValueError, r"a readout layer never fires: leave threshold = 0"),
    (dict(readout=True, refractory=2), ValueError, r"refractory = 2"),
])
def test_layer_validation(kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        layer(**kw)


@pytest.mark.parametrize("make, pattern", [
    (lambda: Leak("decay"), r"leak.kind = 'decay' is not valid; valid: none, shift, multiply"),
    (lambda: Leak.shift(0), r"leak.k = 0 is out of range; valid: 1 <= leak.k <= 32"),
    (lambda: Leak.multiply(5, 2), r"leak.m = 5 is out of range; valid: 0 <= leak.m <= 4"),
    (lambda: Leak.multiply(1, 0), r"leak.frac_bits = 0 is out of range; valid: 1 <= leak.frac_bits <= 16"),
    (lambda: Leak.multiply(-1, 3), r"leak.m = -1 is out of range"),
    (lambda: Leak("none", k=2), r"leak.k = 2 is only used by the 'shift' leak"),
    (lambda: Leak("shift", k=1, m=1), r"only used by the 'multiply' leak"),
])
def test_leak_validation(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_network_validation():
    a = layer(weights=np.zeros((3, 4), dtype=int))
    b = layer(weights=np.zeros((5, 2), dtype=int))
    with pytest.raises(ValueError, match=r"layers\[1\] has n_in = 5 inputs but layers\[0\] has n = 4 neurons: shapes do not chain"):
        Network([a, b])
    ro = layer(weights=np.zeros((3, 3), dtype=int), readout=True)
    with pytest.raises(ValueError, match=r"layers\[0\] is a readout layer but is not the last layer"):
        Network([ro, layer()])
    with pytest.raises(ValueError, match=r"layers must be a non-empty list"):
        Network([])
    with pytest.raises(TypeError, match=r"layers\[0\] must be a Layer, got dict"):
        Network([{}])
    with pytest.raises(ValueError, match=r"timesteps = 0 is out of range; valid: 1 <= timesteps <= 4096"):
        Network([layer()], timesteps=0)
    with pytest.raises(ValueError, match=r"encoding = 'morse' is not valid; valid: rate, poisson, latency"):
        Network([layer()], encoding="morse")


# --- file format ----------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_round_trip_random_networks(seed, tmp_path_factory):
    net = random_network(seed)
    net.meta = {"seed": seed, "note": "round trip", "acc": [0.5, 1.0]}
    path = tmp_path_factory.mktemp("rt") / "net.json"
    net.save(path)
    back = Network.load(path)
    assert back == net
    assert back.digest() == net.digest()
    assert all(l.weights.dtype == np.int64 for l in back.layers)


def test_round_trip_every_mode(tmp_path):
    leaks = [Leak.none(), Leak.shift(3), Leak.multiply(7, 3)]
    for i, lk in enumerate(leaks):
        for reset in ("zero", "subtract"):
            net = Network([layer(weights=np.array([[1, -2], [3, -4], [127, -128]]), bias=[5, -6], threshold=9,
                                 leak=lk, reset=reset, refractory=i, name="hidden"),
                           Layer(weights=np.array([[1], [-1]]), readout=True, leak=lk)],
                          timesteps=7, encoding="latency", name="modes")
            p = net.save(tmp_path / f"{i}{reset}.json")
            assert Network.load(p) == net


def test_digest_ignores_names_and_meta_only():
    a = random_network(11)
    b = random_network(11)
    b.name, b.meta = "other", {"x": 1}
    assert a.digest() == b.digest()
    w = b.layers[0].weights.copy()
    w[0, 0] ^= 1
    b.layers[0] = b.layers[0].replace(weights=w)
    assert a.digest() != b.digest()


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "net.json"
    random_network(1).save(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        random_network(2).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["net.json"]


def write(tmp_path, text, name="bad.json"):
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def good_dict():
    return json.loads(random_network(5, (3, 2)).to_json())


@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: "not json at all {", r"not a spikegate network file: not valid JSON"),
    (lambda d: b"\x89PNG\r\n\x1a\n\x00\x00", r"not a spikegate network file: not valid JSON"),
    (lambda d: json.dumps([1, 2, 3]), r"is not a spikegate network file \(expected \"format\": \"spikegate-network\"\)"),
    (lambda d: json.dumps({**d, "format": "onnx"}), r"is not a spikegate network file"),
    (lambda d: json.dumps({**d, "version": 99}), r"has format version 99; this spikegate reads versions 1, 2"),
    (lambda d: json.dumps({**d, "extra": 1}), r"unknown field\(s\) \['extra'\]"),
    (lambda d: json.dumps({**d, "layers": []}), r"\"layers\" must be a non-empty list"),
    (lambda d: json.dumps({**d, "layers": [1]}), r"layers\[0\] must be an object"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "weights": [[1, 2], [3]]}]}),
     r"layers\[0\]: weights/bias are not integer arrays"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "weights": [[1.5, 2], [3, 4], [5, 6]]}]}),
     r"layers\[0\]: weights must be an integer array, got values of type float64"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "bias": [1, 2**70]}]}),
     r"layers\[0\]: bias must be an integer array, got values of type object"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "n": 7}]}),
     r"layers\[0\]: n = 7 does not match the weights' shape \(3, 2\)"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "threshold": -4}]}),
     r"layers\[0\]: threshold = -4 is out of range"),
    (lambda d: json.dumps({**d, "layers": [{k: v for k, v in d["layers"][0].items() if k != "weights"}]}),
     r"layers\[0\]: missing field\(s\) \['weights'\]"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "leak": {"kind": "shift"}}]}),
     r"layers\[0\]: leak.k = 0 is out of range"),
    (lambda d: json.dumps({**d, "layers": [{**d["layers"][0], "leak": {"kind": "shift", "tau": 3}}]}),
     r"layers\[0\]: .*tau"),
    (lambda d: json.dumps({**d, "timesteps": "many"}), r"timesteps must be an integer, got 'many'"),
])
def test_corrupt_or_foreign_files(tmp_path, mutate, pattern):
    with pytest.raises(NetworkFormatError, match=pattern):
        Network.load(write(tmp_path, mutate(good_dict())))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"network file '.*nope.json' does not exist"):
        Network.load(tmp_path / "nope.json")
    with pytest.raises(NetworkFormatError, match="is a directory"):
        Network.load(tmp_path)


# --- immutability and the one value-range rule ------------------------------------------------

def test_layer_is_immutable_and_replace_revalidates():
    import dataclasses
    w = np.array([[1, -2], [3, -4]])
    L = layer(weights=w, bias=[5, -6], threshold=9)
    w[0, 0] = 100  # the caller's array is copied, not shared
    assert L.weights[0, 0] == 1
    for arr in (L.weights, L.bias):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        L.threshold = 3
    M = L.replace(threshold=10, name="changed")
    assert (M.threshold, M.name, L.threshold, L.name) == (10, "changed", 9, "")
    assert np.array_equal(M.weights, L.weights) and not M.weights.flags.writeable
    with pytest.raises(ValueError, match=r"threshold = 32767 is out of range; valid: 0 <= threshold <= 32766"):
        L.replace(threshold=32767)
    with pytest.raises(ValueError, match="weights contain 128"):
        L.replace(weights=np.array([[128, 0], [0, 0]]))
    net = Network([L])
    assert net.replace(layers=[M]).layers[0] is M and net.layers[0] is L


@pytest.mark.parametrize("wb, vb", [(2, 2), (8, 16), (16, 32)])
def test_value_range_is_the_rule_layers_validate(wb, vb):
    from spikegate.model.protocol import CfgTarget, value_range
    L = layer(weight_bits=wb, membrane_bits=vb)
    half_w, half_v = 1 << (wb - 1), 1 << (vb - 1)
    assert value_range(L, CfgTarget.WEIGHT) == (-half_w, half_w - 1)
    assert value_range(L, CfgTarget.BIAS) == (-half_v, half_v - 1) == (L.v_min, L.v_max)
    # v_min / v_max are kept once asked: a copy with other membranes has its own
    other = L.replace(membrane_bits=vb + 1 if vb < 32 else vb - 1)
    assert (other.v_min, other.v_max) == value_range(other, CfgTarget.BIAS) != (L.v_min, L.v_max)
    assert (L.v_min, L.v_max) == (-half_v, half_v - 1)
    assert value_range(L, CfgTarget.THRESHOLD) == (0, half_v - 2)
    for target, kw in ((CfgTarget.WEIGHT, lambda v: dict(weights=np.full((3, 2), v))),
                       (CfgTarget.BIAS, lambda v: dict(bias=[v, 0])),
                       (CfgTarget.THRESHOLD, lambda v: dict(threshold=v))):
        lo, hi = value_range(L, target)
        for v in (lo, hi):
            L.replace(**kw(v))
        for v in (lo - 1, hi + 1):
            with pytest.raises(ValueError):
                L.replace(**kw(v))
