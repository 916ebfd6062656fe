"""NIR interop of temporal layers: CubaLIF/CubaLI, Delay, recurrent edges and nested subgraphs.

``nir_float_run`` is the tests' own float run of a NIR graph, written from NIR's node equations
(forward Euler, edges of a cycle carry the previous step's value), independently of the importer.
"""
import json

import h5py
import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.cli import main
from spikegate.errors import UserError
from spikegate.model import Layer, Leak, Network, simulate
from spikegate.model.random import random_network, random_spikes
from spikegate.model.temporal import Temporal, random_temporal
from spikegate.nir import export_nir, import_nir, network_from_graph, network_to_graph

from test_nir_roundtrip import _edit  # noqa: E402  (rewrites one dataset of a NIR file)
from test_temporal import temporal_network  # noqa: E402  (the model tests' random temporal networks)


def nir_float_run(graph, dt, spikes):
    """Every node's output per step for input spikes [N, T, n_in]; returns (output [N, T, n], v of
    the last neuron node [N, n]). Nodes run in topological order of the edges that close no cycle;
    an edge that closes a cycle carries its source's previous step's output (NIR's convention)."""
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    inp = next(k for k, n in nodes.items() if isinstance(n, nir.Input))
    back, on_path, seen = set(), [], set()

    def dfs(a):  # an edge to a node on the current path closes a cycle: it carries the last step
        seen.add(a)
        on_path.append(a)
        for a2, b in edges:
            if a2 == a:
                if b in on_path:
                    back.add((a, b))
                elif b not in seen:
                    dfs(b)
        on_path.pop()

    dfs(inp)
    order = []
    while len(order) < len(seen):  # topological order of the edges that are not back edges
        order += [k for k in seen if k not in order
                  and all(a in order for a, b in edges if b == k and (a, b) not in back)][:1]
    N, T, _ = spikes.shape
    out_prev, state, hist, res, last_v = {}, {}, {}, [], None
    for t in range(T):
        out = {}
        for k in order:
            n = nodes[k]
            ins = [out_prev.get(a) if (a, b) in back else out[a] for a, b in edges if b == k]
            ins = [x for x in ins if x is not None]
            x = sum(ins) if ins else None
            if isinstance(n, nir.Input):
                y = spikes[:, t].astype(np.float64)
            elif x is None:
                y = None
            elif isinstance(n, nir.Affine):
                y = x @ n.weight.T + n.bias
            elif isinstance(n, nir.Linear):
                y = x @ n.weight.T
            elif isinstance(n, nir.Delay):
                h = hist.setdefault(k, [])
                h.append(x)
                steps = np.rint(np.asarray(n.delay) / dt).astype(int)
                y = np.stack([h[len(h) - 1 - s][:, i] if len(h) - 1 - s >= 0 else np.zeros(N)
                              for i, s in enumerate(steps)], axis=1)
            elif isinstance(n, (nir.CubaLIF, nir.CubaLI)):
                i_syn, v = state.get(k, (np.zeros_like(x), np.zeros_like(x)))
                i_syn = i_syn + dt / n.tau_syn * (-i_syn + n.w_in * x)
                v = v + dt / n.tau_mem * (n.v_leak - v + n.r * i_syn)
                if isinstance(n, nir.CubaLIF):
                    y = (v > n.v_threshold).astype(np.float64)
                    v = np.where(y > 0, n.v_reset, v)
                else:
                    y = v
                state[k] = (i_syn, v)
                last_v = v
            elif isinstance(n, (nir.LIF, nir.LI, nir.IF, nir.I)):
                v = state.get(k, np.zeros_like(x))
                v = v + (dt / n.tau * (n.v_leak - v + n.r * x) if isinstance(n, (nir.LIF, nir.LI)) else dt * n.r * x)
                if isinstance(n, (nir.LIF, nir.IF)):
                    y = (v > n.v_threshold).astype(np.float64)
                    v = np.where(y > 0, n.v_reset, v)
                else:
                    y = v
                state[k] = v
                last_v = v
            elif isinstance(n, nir.Output):
                y = x
                res.append(x)
            else:
                raise AssertionError(type(n).__name__)
            out[k] = y
        out_prev = out
    return np.stack(res, axis=1), last_v


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_random_temporal_networks_round_trip_exactly(tmp_path, seed):
    parts = [None, ("delays",), ("current",), ("recurrent",), ("delays", "current", "recurrent")][seed % 5]
    net = temporal_network(seed, parts)
    res = export_nir(net, tmp_path / "t.nir")          # checks the import itself, and refuses if it differs
    back = import_nir(tmp_path / "t.nir")
    assert back.exact and back.network == net and back.network.digest() == net.digest()
    assert res.path.exists()


_PARTS = [("delays",), ("current",), ("recurrent",), ("delays", "current"), ("delays", "recurrent"),
          ("current", "recurrent"), ("delays", "current", "recurrent")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31), parts=st.lists(st.sampled_from([None] + _PARTS), min_size=3, max_size=3),
       max_delay=st.sampled_from([1, 4, 31, 255]), readout=st.booleans())
def test_every_temporal_feature_mix_round_trips_exactly(tmp_path, seed, parts, max_delay, readout):
    """Random networks whose layers each take a random mix of delays (up to 255 steps), CUBA
    currents and recurrence (a readout layer takes no recurrence): export, import, identical."""
    net = random_network(seed, readout=readout)
    rng = np.random.default_rng(seed)
    net = net.replace(layers=[lyr if p is None else random_temporal(rng, lyr, parts=p, max_delay=max_delay)
                              for lyr, p in zip(net.layers, parts)])
    export_nir(net, tmp_path / "h.nir")
    back = import_nir(tmp_path / "h.nir")
    assert back.exact and back.network == net and back.network.digest() == net.digest()
    again = network_from_graph(network_to_graph(back.network)[0])  # in memory, no file
    assert again.exact and again.network == net


def test_delays_of_zero_weights_and_all_zero_parts_round_trip(tmp_path):
    w = np.array([[0, 3], [2, 0]])
    net = Network([Layer(weights=w, threshold=4, temporal=Temporal(delays=[[5, 1], [2, 7]])),
                   Layer(weights=[[1], [1]], threshold=0,
                         temporal=Temporal(delays=np.zeros((2, 1), int), recurrent=[[0]], current=Leak.none()))])
    export_nir(net, tmp_path / "z.nir")
    assert import_nir(tmp_path / "z.nir").network == net


def test_export_uses_nir_semantics_exactly():
    """Without leaks and rails the float NIR run of an export is the integer model, spike for spike."""
    layers = [Layer(weights=np.array([[3, -2, 4], [1, 5, -1]]), bias=np.array([1, 0, 0]), threshold=6,
                    membrane_bits=24, temporal=Temporal(delays=[[0, 2, 1], [3, 0, 0]], recurrent=[[0, 2, -3],
                                                                                                [1, 0, 0], [0, 4, 0]])),
              Layer(weights=np.array([[2, 1], [-1, 3], [2, 2]]), bias=np.array([0, 1]), membrane_bits=24,
                    readout=True, temporal=Temporal(current=Leak.none(), delays=[[1, 0], [0, 2], [1, 1]]))]
    net = Network(layers, timesteps=20)
    graph, _ = network_to_graph(net)
    types = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert types == {"input": "Input", "fc0": "Affine", "delay0_d1": "Delay", "fc0_d1": "Linear",
                     "delay0_d2": "Delay", "fc0_d2": "Linear", "delay0_d3": "Delay", "fc0_d3": "Linear",
                     "if0": "IF", "rec0": "Linear", "fc1": "Affine", "delay1_d1": "Delay", "fc1_d1": "Linear",
                     "delay1_d2": "Delay", "fc1_d2": "Linear", "cubali1": "CubaLI", "output": "Output"}
    assert ("if0", "rec0") in graph.edges and ("rec0", "if0") in graph.edges
    x = random_spikes(3, 6, 20, 2, 0.4)
    res = simulate(net, x, traces=True)
    _, v = nir_float_run(graph, 1.0, x)
    np.testing.assert_array_equal(v, res.membranes[1])
    spk, _ = nir_float_run(nir.NIRGraph(nodes={k: n for k, n in graph.nodes.items() if k != "output"} |
                                         {"output": nir.Output(output_type={"output": np.array([3])})},
                                         edges=[e for e in graph.edges if e[1] != "output" and e[0] not in
                                                ("fc1", "fc1_d1", "fc1_d2", "delay1_d1", "delay1_d2", "cubali1")]
                                         + [("if0", "output")], type_check=False), 1.0, x)
    np.testing.assert_array_equal(spk.astype(bool), res.spikes[0])


@pytest.mark.parametrize("seed", range(8))
def test_exports_of_random_leak_free_networks_run_exactly_in_float(seed):
    """Leak-free (decays of exactly 1) and far from the rails, NIR's float semantics of an export are
    the integer contract: the output spikes (or a readout's final membranes) are equal."""
    rng = np.random.default_rng(seed)
    net = random_network(seed, (5, 6, 4), leak="none", membrane_bits=24, weight_bits=6, refractory=0, reset="zero",
                         timesteps=15)
    layers = []
    for l in net.layers:
        cur = Leak.none() if rng.random() < 0.5 else None
        rec = None if l.readout else rng.integers(-20, 21, (l.n, l.n))
        layers.append(l.replace(threshold=0 if l.readout else int(rng.integers(1, 40)),
                                temporal=Temporal(delays=rng.integers(0, 4, (l.n_in, l.n)), current=cur, recurrent=rec)))
    net = net.replace(layers=layers)
    graph, _ = network_to_graph(net)
    x = random_spikes(seed, 5, 15, 5, 0.4)
    res = simulate(net, x)
    assert all(s.any() for s in res.spikes[:1 if net.readout else 2])
    spk, v = nir_float_run(graph, 1.0, x)
    if net.readout:
        np.testing.assert_array_equal(v, res.membranes[-1])
    else:
        np.testing.assert_array_equal(spk.astype(bool), res.spikes[-1])


def test_cuba_export_parameters():
    net = Network([Layer(weights=[[2]], threshold=3, leak=Leak.shift(2),
                         temporal=Temporal(current=Leak.multiply(3, 2)))])
    g, _ = network_to_graph(net)
    c = g.nodes["cubalif0"]
    assert 1 - 1 / c.tau_syn[0] == 0.75 and c.w_in[0] == c.tau_syn[0]   # alpha 3/4, gain 1
    assert 1 - 1 / c.tau_mem[0] == 0.75 and c.r[0] == c.tau_mem[0]
    meta = json.loads(c.metadata["spikegate"])
    assert meta["temporal"] == {"current": {"kind": "multiply", "m": 3, "frac_bits": 2}, "recurrent": False}


@pytest.mark.parametrize("node, attr, value, pattern", [
    ("delay0_d2", "delay", np.full(2, 3.0), r"NIR node 'delay0_d2' \(Delay\): delay does not match"),
    ("rec0", "weight", np.full((2, 2), 0.5), r"NIR node 'fc0': recurrent weight holds non-integer values"),
    ("cubalif0", "tau_syn", np.full(2, 3.0), r"NIR node 'cubalif0' \(CubaLIF\): tau_syn does not match"),
])
def test_edited_temporal_export_is_refused(tmp_path, node, attr, value, pattern):
    net = Network([Layer(weights=[[1, 2], [3, 4]], threshold=5, temporal=Temporal(
        delays=[[0, 2], [2, 0]], recurrent=[[0, 1], [-1, 0]], current=Leak.shift(1)))])
    path = tmp_path / "m.nir"
    export_nir(net, path)
    _edit(path, node, attr, value)
    with pytest.raises(UserError, match=pattern):
        import_nir(path)
    assert not import_nir(path, dt=1.0, ignore_metadata=True).exact


# --- float graphs --------------------------------------------------------------------------------

def _cuba_recurrent_graph(nested=False):
    rng = np.random.default_rng(1)
    n = 6
    W1, R, W2 = rng.normal(0, 1, (n, 5)), rng.normal(0, 0.5, (n, n)), rng.normal(0, 1, (3, n))
    cuba = nir.CubaLIF(tau_syn=np.full(n, 4e-3), tau_mem=np.full(n, 8e-3), r=np.full(n, 8.0), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 1.0), v_reset=np.zeros(n), w_in=np.full(n, 4.0))
    li = nir.CubaLI(tau_syn=np.full(3, 2e-3), tau_mem=np.full(3, 1e-2), r=np.full(3, 10.0), v_leak=np.zeros(3),
                    w_in=np.full(3, 2.0))
    nodes = {"in": nir.Input(input_type={"input": np.array([5])}), "d": nir.Delay(np.array([0, 1, 2, 0, 3]) * 1e-3),
             "fc": nir.Affine(W1, rng.normal(0, 0.1, n)), "fc2": nir.Linear(W2), "li": li,
             "out": nir.Output(output_type={"output": np.array([3])})}
    if nested:
        sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": cuba,
                                  "w_rec": nir.Linear(R), "output": nir.Output(output_type={"output": np.array([n])})},
                           edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")],
                           type_check=False)
        nodes["rsyn"] = sub
        edges = [("in", "d"), ("d", "fc"), ("fc", "rsyn"), ("rsyn", "fc2"), ("fc2", "li"), ("li", "out")]
    else:
        nodes |= {"lif": cuba, "rec": nir.Linear(R)}
        edges = [("in", "d"), ("d", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "fc2"),
                 ("fc2", "li"), ("li", "out")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("nested", [False, True])
def test_float_cuba_recurrent_delayed_graph_imports_and_agrees(nested):
    g = _cuba_recurrent_graph(nested)
    x = random_spikes(5, 200, 24, 5, 0.3)
    res = network_from_graph(g, dt=1e-3, timesteps=24, membrane_bits=20, weight_bits=10, calibrate=x)
    L0, L1 = res.network.layers
    assert L0.temporal.current == Leak.shift(2) and L1.temporal.current == Leak.shift(1)   # 1 - 1/4, 1 - 1/2
    assert L0.leak == Leak.shift(3) and L1.leak == Leak.multiply(230, 8)                   # 1 - 1/8, 0.9
    assert L0.temporal.delays[:, 0].tolist() == [0, 1, 2, 0, 3] and L0.temporal.recurrent is not None
    if nested:
        assert L0.name == "rsyn.lif"
    # The tests' own float run of the same (flat) graph is the reference.
    ref = np.argmax(nir_float_run(_cuba_recurrent_graph(False), 1e-3, x)[1], axis=1)
    ipred = np.argmax(simulate(res.network, x).membranes[-1], axis=1)
    print(f"float/integer argmax agreement {np.mean(ipred == ref):.3f} (importer's float run: "
          f"{res.calibration['agreement']:.3f})")
    assert np.mean(ipred == ref) >= 0.95
    assert res.calibration["agreement"] >= 0.95
    report = res.layers[0]["params"]
    assert {"current_alpha", "recurrent", "delays"} <= set(report)


def test_import_cli_reports_the_v_reset_assumption(tmp_path, capsys):
    g = nir.NIRGraph.from_list(nir.Linear(np.ones((2, 3))),
                               nir.LIF(tau=np.full(2, 4.0), r=np.full(2, 4.0), v_leak=np.zeros(2),
                                       v_threshold=np.ones(2), v_reset=np.zeros(2)))
    path = tmp_path / "old.nir"
    nir.write(str(path), g)
    with h5py.File(path, "r+") as f:
        del f["node"]["nodes"]["lif"]["v_reset"]
        del f["version"]
        f.create_dataset("version", data="1.0.4", dtype=h5py.string_dtype())
    assert main(["import", str(path), "-o", str(tmp_path / "n.json"), "--dt", "1", "--v-reset", "subtract"]) == 0
    text = capsys.readouterr().out
    assert "assumed v_reset: ['lif'] (no v_reset stored: written by NIR 1.0.4, before 1.0.6) reset by subtracting" in text
    assert Network.load(tmp_path / "n.json").layers[0].reset == "subtract"
    assert main(["import", str(path), "-o", str(tmp_path / "z.json"), "--dt", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["v_reset_assumption"] == {"assumed": "zero", "nodes": ["lif"], "nir_version": "1.0.4"}
