"""Temporal layers (delays, synaptic current, recurrence) against README's contract.

Golden vectors are worked by hand from README, "Temporal layers"; the property tests compare the
vectorised model with ``reference_run``, a plain-loop transcription of the same text written here.
"""
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model.hardware import HardwareConfig
from spikegate.model.network import NetworkFormatError
from spikegate.model.random import random_network, random_spikes
from spikegate.model.simulate import simulate_steps
from spikegate.model.temporal import MAX_DELAY, Temporal, random_temporal


def net_of(*layers, T=8):
    return Network(list(layers), timesteps=T)


def layer(weights, **kw):
    tp = {k: kw.pop(k) for k in ("delays", "current", "recurrent") if k in kw}
    return Layer(weights=np.array(weights, dtype=np.int64), temporal=Temporal(**tp) if tp else None, **kw)


def run(net, spikes):
    return simulate(net, np.array(spikes, dtype=bool)[None], traces=True)


def col(a, j=0):
    return a[0, :, j].astype(int).tolist()


# --- golden vectors, worked by hand ---------------------------------------------------------

def test_delay_shifts_arrival():
    # spikes at t0..t2 arrive at t2..t4: v 0, 0, 4, 8, 12 > 9 fires -> 0
    r = run(net_of(layer([[4]], threshold=9, delays=[[2]])), [[1], [1], [1], [0], [0]])
    assert col(r.spikes[0]) == [0, 0, 0, 0, 1]
    assert col(r.traces[0]) == [0, 0, 4, 8, 0]


def test_delay_per_synapse_and_past_the_end():
    # input 0 (w 3, d 0) and input 1 (w 5, d 1) both spike at t0: 3 at t0, 5 at t1; input 1's
    # spike at t2 would land at t3 = T and is never seen.
    r = run(net_of(layer([[3], [5]], threshold=100, delays=[[0], [1]])), [[1, 1], [0, 0], [0, 1]])
    assert col(r.traces[0]) == [3, 8, 8]


def test_current_decays_with_shift_rounding():
    # c: 8, 8-4=4, 4-2=2, 2-1=1, 1-0=1 (1 >>> 1 = 0); v integrates c: 8, 12, 14, 15, 16
    r = run(net_of(layer([[8]], threshold=100, current=Leak.shift(1))), [[1], [0], [0], [0], [0]])
    assert col(r.traces[0]) == [8, 12, 14, 15, 16]


def test_bias_feeds_the_current():
    # c: 2, 2-1+2=3, 3-1+2=4, 4-2+2=4; v: 2, 5, 9, 13
    r = run(net_of(layer([[0]], bias=[2], threshold=100, current=Leak.shift(1))), [[0]] * 4)
    assert col(r.traces[0]) == [2, 5, 9, 13]


def test_current_saturates_like_the_membrane():
    # 5-bit: [-16, 15]. c: 6, 12, 15 (18 saturated), 15-16 = -1; readout v: 6, 15 (18 sat), 15, 14.
    # An unsaturated current (18, then 2) would leave v at 15.
    L = layer([[6], [-16]], membrane_bits=5, weight_bits=6, readout=True, current=Leak.none())
    r = run(net_of(L), [[1, 0], [1, 0], [1, 0], [0, 1]])
    assert col(r.traces[0]) == [6, 15, 15, 14]


def test_current_evolves_while_refractory():
    # theta 12, R 2. c: 5, 10, 15 (t2: input during refractory), 15, 15; v: 5, 15 fires -> 0 (r 2),
    # frozen at t2, t3, then 15 fires at t4. A current frozen with the neuron would stay 10: no spike.
    L = layer([[5]], threshold=12, refractory=2, current=Leak.none())
    r = run(net_of(L), [[1], [1], [1], [0], [0]])
    assert col(r.spikes[0]) == [0, 1, 0, 0, 1]
    assert col(r.traces[0]) == [5, 0, 0, 0, 0]


def test_self_recurrence_uses_the_previous_step():
    # syn = 10 - 3 s(t-1): v 10 fires -> 0; 7; 14 fires -> 0; 7
    r = run(net_of(layer([[10]], threshold=9, recurrent=[[-3]])), [[1]] * 4)
    assert col(r.spikes[0]) == [1, 0, 1, 0]
    assert col(r.traces[0]) == [0, 7, 0, 7]


def test_cross_recurrence_and_next_layer_same_step():
    # neuron 0 fires at t0 from the input; neuron 1 gets 5 through Wr[0, 1] at t1 and fires; the next
    # (plain) layer copies neuron 1 in the same step.
    L0 = layer([[10, 0]], threshold=4, recurrent=[[0, 5], [0, 0]])
    L1 = Layer(weights=np.array([[0], [1]]), threshold=0)
    r = run(net_of(L0, L1), [[1], [0], [0]])
    assert col(r.spikes[0], 0) == [1, 0, 0]
    assert col(r.spikes[0], 1) == [0, 1, 0]
    assert col(r.spikes[1]) == [0, 1, 0]


# --- an independent scalar transcription of README's temporal contract ----------------------

def asr(x, k):
    return x // (1 << k)


def leak_of(x, lk):
    if lk.kind == "shift":
        return x - asr(x, lk.k)
    if lk.kind == "multiply":
        return asr(x * lk.m, lk.frac_bits)
    return x


def reference_run(net, spikes):
    """One sample [T, n_in] -> (per-layer spikes [T][n], final v, final r), plain Python ints."""
    T = spikes.shape[0]
    L = net.layers
    v = [[0] * l.n for l in L]
    r = [[0] * l.n for l in L]
    c = [[0] * l.n for l in L]
    out = [[[0] * l.n for _ in range(T)] for l in L]
    ins = [[[0] * l.n_in for _ in range(T)] for l in L]  # every layer's input spikes so far
    for t in range(T):
        s = [int(x) for x in spikes[t]]
        for li, layer in enumerate(L):
            tp = layer.temporal
            ins[li][t] = s
            lo, hi = -(1 << (layer.membrane_bits - 1)), (1 << (layer.membrane_bits - 1)) - 1
            nxt = [0] * layer.n
            for j in range(layer.n):
                syn = 0
                for i in range(layer.n_in):
                    d = int(tp.delays[i, j]) if tp is not None and tp.delays is not None else 0
                    if t - d >= 0 and ins[li][t - d][i]:
                        syn += int(layer.weights[i, j])
                if tp is not None and tp.recurrent is not None and t > 0:
                    syn += sum(int(tp.recurrent[k, j]) for k in range(layer.n) if out[li][t - 1][k])
                if tp is not None and tp.current is not None:
                    c[li][j] = min(max(leak_of(c[li][j], tp.current) + int(layer.bias[j]) + syn, lo), hi)
                    drive = c[li][j]
                else:
                    drive = int(layer.bias[j]) + syn
                if not layer.readout and r[li][j] > 0:
                    r[li][j] -= 1
                    continue
                x = min(max(leak_of(v[li][j], layer.leak) + drive, lo), hi)
                if not layer.readout and x > layer.threshold:
                    nxt[j] = 1
                    x = 0 if layer.reset == "zero" else x - layer.threshold
                    r[li][j] = layer.refractory
                v[li][j] = x
            out[li][t] = nxt
            s = nxt
    return out, v, r


def temporal_network(seed, parts=None, sizes=None, max_delay=6, **kw):
    net = random_network(seed, sizes, **kw)
    rng = np.random.Generator(np.random.PCG64(seed ^ 0x5EED))
    layers = [random_temporal(rng, l, parts=parts, max_delay=max_delay) if rng.random() < 0.8 else l
              for l in net.layers]
    return net.replace(layers=layers)


def assert_matches_reference(net, spikes):
    res = simulate(net, spikes)
    for b in range(spikes.shape[0]):
        out, v, r = reference_run(net, spikes[b])
        for li in range(len(net.layers)):
            assert res.spikes[li][b].astype(int).tolist() == out[li], f"sample {b} layer {li} spikes"
            assert res.membranes[li][b].tolist() == v[li], f"sample {b} layer {li} membranes"
            assert res.refractory[li][b].tolist() == r[li], f"sample {b} layer {li} refractory"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), p=st.sampled_from([0.05, 0.3, 0.7, 1.0]),
       parts=st.sampled_from([None, ("delays",), ("current",), ("recurrent",), ("delays", "current", "recurrent")]))
def test_model_matches_contract_on_random_temporal_networks(seed, p, parts):
    net = temporal_network(seed, parts, sizes=None)
    assert_matches_reference(net, random_spikes(seed, 3, net.timesteps, net.n_inputs, p))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(3, 6))
def test_model_matches_contract_at_the_rails(seed, bits):
    # Narrow membranes and full-scale weights: the current and the membrane both hit their rails.
    net = temporal_network(seed, ("delays", "current", "recurrent"), sizes=(6, 5, 4), weight_bits=bits,
                           membrane_bits=bits, max_delay=3, readout=False)
    assert_matches_reference(net, random_spikes(seed, 2, net.timesteps, 6, 0.6))


def test_long_delays_and_many_steps_match():
    net = temporal_network(7, ("delays", "recurrent"), sizes=(5, 4), max_delay=MAX_DELAY, timesteps=300)
    assert_matches_reference(net, random_spikes(7, 1, 300, 5, 0.3))


# --- the plain path stays as it was ----------------------------------------------------------

def test_zero_delays_and_zero_recurrence_equal_the_plain_layer():
    net = random_network(11, (9, 7, 5), readout=False)
    x = random_spikes(11, 4, net.timesteps, 9, 0.4)
    tnet = net.replace(layers=[l.replace(temporal=Temporal(delays=np.zeros((l.n_in, l.n), int),
                                                           recurrent=np.zeros((l.n, l.n), int)))
                               for l in net.layers])
    a, b = simulate(net, x, traces=True), simulate(tnet, x, traces=True)
    for l in range(2):
        assert np.array_equal(a.spikes[l], b.spikes[l]) and np.array_equal(a.traces[l], b.traces[l])


def test_plain_networks_stay_version_1():
    net = random_network(3, (4, 3, 2))
    assert net.to_dict()["version"] == 1 and "temporal" not in net.to_json()


# --- file format, validation, hardware refusal -----------------------------------------------

def test_file_round_trip_writes_only_what_is_set(tmp_path):
    net = temporal_network(5, ("delays", "current", "recurrent"), sizes=(4, 3, 2), readout=False)
    p = net.save(tmp_path / "t.json")
    d = json.loads(p.read_text())
    assert d["version"] == 2
    assert set(d["layers"][0]["temporal"]) == {"delays", "current", "recurrent"}
    back = Network.load(p)
    assert back == net and back.digest() == net.digest()
    only = net.replace(layers=[net.layers[0].replace(temporal=Temporal(current=Leak.shift(3))), net.layers[1]])
    assert set(only.to_dict()["layers"][0]["temporal"]) == {"current"}
    assert only.digest() != net.digest()


@pytest.mark.parametrize("temporal, match", [
    ({"delays": [[1.5]]}, r"temporal.delays must be a list of equal-length integer rows"),
    ({"delays": [[256]]}, r"temporal.delays contains 256; valid: 0 <= delay <= 255"),
    ({"delays": [[1, 2]]}, r"temporal.delays must have the weights' shape \(1, 1\)"),
    ({"recurrent": [[200]]}, r"temporal.recurrent contains 200, outside the 8-bit signed range"),
    ({"recurrent": [[1, 1]]}, r"temporal.recurrent must have shape \(1, 1\)"),
    ({"current": {"kind": "shift"}}, r"leak.k = 0 is out of range"),
    ({}, r"at least one of delays, current, recurrent"),
    ({"bogus": 1}, r"temporal has unknown field\(s\) \['bogus'\]"),
])
def test_bad_temporal_fields_are_refused_naming_the_field(temporal, match):
    d = Network([Layer(weights=[[1]], threshold=1)]).to_dict()
    d["version"] = 2
    d["layers"][0]["temporal"] = temporal
    with pytest.raises(NetworkFormatError, match=match):
        Network.from_dict(d)


def test_readout_cannot_be_recurrent():
    with pytest.raises(ValueError, match="readout layer never spikes"):
        layer([[1]], readout=True, recurrent=[[1]])


def test_hardware_takes_temporal_layers_and_refuses_them_in_spram():
    # Delays, synaptic currents and recurrence all have gateware (tests/test_temporal_core.py,
    # tests/test_delay_core.py); a delayed layer cannot keep its weights in SPRAM (delays are fixed).
    net = net_of(Layer(weights=[[1]], threshold=1), layer([[1]], threshold=1, delays=[[2]], name="late"))
    assert HardwareConfig().geometry(net)[1].delay_slots == 3
    with pytest.raises(ValueError, match=r"layer 1 \(late\): weight_ram = 'spram' is not valid for a delayed"):
        HardwareConfig(weight_ram="spram", lanes=4).geometry(net)
    HardwareConfig().geometry(net_of(layer([[1]], threshold=1, current=Leak.shift(2), recurrent=[[1]])))


def test_simulate_steps_refuses_temporal_layers():
    with pytest.raises(ValueError, match="layer 0 is a temporal layer"):
        simulate_steps(net_of(layer([[1]], threshold=1, delays=[[1]])), np.zeros((1, 2, 1), bool))


def test_info_describes_a_temporal_network(tmp_path, capsys):
    from spikegate.cli import main
    from spikegate.model.random import random_network
    from spikegate.model.temporal import random_temporal
    rng = np.random.default_rng(5)
    net = random_network(5, (6, 5, 3), timesteps=4)
    net = net.replace(layers=[random_temporal(rng, net.layers[0], parts=("delays", "recurrent"), max_delay=3),
                              net.layers[1]])
    path = net.save(tmp_path / "t.json")
    assert main(["info", "--net", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["layers"][0]["features"] == list(net.layers[0].temporal.features()) and d["layers"][1]["features"] == []
    # The recurrent synapses (5 x 5) count with the feed-forward ones (6 x 5, 5 x 3).
    assert d["layers"][0]["recurrent_synapses"] == 25 and d["layers"][0]["synapses"] == 30 + 25
    assert d["layers"][0]["nonzero_recurrent_weights"] == int((net.layers[0].temporal.recurrent != 0).sum())
    assert d["synapses"] == 30 + 25 + 15 and d["layers"][0]["max_delay"] == net.layers[0].temporal.max_delay
    assert d["memory_bits"]["delays"] > 0 and d["layers"][0]["memory_bits"]["delays"] == d["memory_bits"]["delays"]
    assert main(["info", "--net", str(path)]) == 0
    text = capsys.readouterr().out
    assert "70 synapses" in text and "recurrent nonzero" in text and f"delays <= {d['layers'][0]['max_delay']}" in text
