"""NIR interop: import NIR graphs as spikegate networks and export networks as NIR graphs.

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) describes networks in continuous
time with float parameters; spikegate runs integer arithmetic in discrete steps (model/lif.py).
docs/nir.md states the rules; in short:

Import (float graphs)
    Supported: one feed-forward chain ``Input -> [Flatten] -> (Affine|Linear -> LIF|IF) ... ->
    (Affine|Linear -> LIF|IF|LI|I) -> Output``; LI / I (non-spiking) only as the last neuron node,
    where they become a readout layer. Each neuron node is discretised with forward Euler and step
    ``dt``: ``v <- (1 - dt/tau) v + (dt r / tau) I`` (LIF, LI) or ``v <- v + dt r I`` (IF, I), with
    ``I = W s + b``. The per-neuron input gain (``dt r / tau``) is folded into the weights and bias;
    per-neuron thresholds are equalised by scaling each neuron's column (exact: with v_leak = 0 and
    v_reset = 0 a neuron's dynamics are linear in its membrane). Each layer is then quantised with
    one scale ``S`` (``W_int = rint(S W)``, ``b_int = rint(S b)``, ``theta_int = floor(S theta)``,
    which on integer membranes reproduces the strict ``v > theta`` exactly) chosen as the largest
    that fits the weights in ``weight_bits`` and bias and threshold in ``membrane_bits``. With
    calibration data, smaller scales (down to 1/16, in quarter octaves) are tried too and the one
    whose integer layer best reproduces the float layer on that data is kept. The decay
    ``beta = 1 - dt/tau`` becomes the nearest of ``shift k`` (``1 - 2^-k``) and ``multiply
    m / 2^F``; ties go to the shift, which needs no multiplier.

Export
    Every layer becomes ``Affine`` (``Linear`` when the bias is zero) with the integer weights and
    bias as floats, followed by ``LIF`` (``tau = 1 / (1 - beta)``, ``r = tau``), ``IF`` (``r = 1``),
    ``LI`` or ``I``, all with ``dt = 1`` so that forward Euler gives gain 1 and decay beta. What
    NIR's float semantics cannot carry (bit widths, the leak's kind and rounding, subtract reset,
    refractory period, names, the network's time steps and encoding) is stored as JSON in the
    nodes' and graph's ``metadata["spikegate"]``; the importer uses it to rebuild the network
    bit for bit, after checking that the float parameters are exactly what export writes.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .model.fileio import atomic_path
from .errors import UserError
from .model.network import ENCODINGS, Layer, Leak, Network, signed_range

__all__ = ["META_KEY", "META_FORMAT", "META_VERSION", "MIN_V_RESET_VERSION", "FloatLayer", "ImportResult",
           "ExportResult", "read_graph", "graph_to_float_layers", "simulate_float", "network_from_graph",
           "import_nir", "network_to_graph", "export_nir", "choose_leak", "load_calibration",
           "graph_input_count", "is_spikegate_export",
           "check_v_reset"]

META_KEY = "spikegate"
META_FORMAT = "spikegate-nir"
META_VERSION = 1
# NIR added v_reset to IF/LIF/CubaLIF in 1.0.6; before that, tools disagreed on what a spike
# resets the membrane to, so such a graph cannot be imported without guessing.
MIN_V_RESET_VERSION = (1, 0, 6)

_NEURON_TYPES = ("LIF", "IF", "LI", "I")
_SPIKING = ("LIF", "IF")
_UNSUPPORTED = {
    "Conv1d": "convolutions are not supported (spikegate layers are fully connected)",
    "Conv2d": "convolutions are not supported (spikegate layers are fully connected)",
    "SumPool2d": "pooling is not supported",
    "AvgPool2d": "pooling is not supported",
    "CubaLIF": "current-based (CubaLIF) neurons are not supported: spikegate neurons have no synaptic "
               "current state",
    "CubaLI": "current-based (CubaLI) neurons are not supported: spikegate neurons have no synaptic "
              "current state",
    "Delay": "delays are not supported",
    "Threshold": "a bare Threshold node is not supported (use IF or LIF neurons)",
    "Scale": "Scale nodes are not supported (fold the scale into the preceding Affine/Linear weights)",
    "NIRGraph": "nested subgraphs are not supported (exporters use them for recurrent layers; "
                "recurrence is not supported)",
}


def _nir():
    try:
        import nir
    except ImportError as e:  # pragma: no cover - nir is a dependency of spikegate
        raise UserError(f"the 'nir' package is needed for NIR import/export ({e}); pip install nir") from None
    return nir


def _version_tuple(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    m = re.match(r"^\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?", str(text))
    if not m:
        return None
    return tuple(int(g or 0) for g in m.groups())


# --- reading ------------------------------------------------------------------------------------

def read_graph(path: str | os.PathLike):
    """Read a NIR file; returns ``(graph, version, missing_v_reset)``.

    ``missing_v_reset`` lists the spiking nodes stored without a ``v_reset`` (``nir.read`` silently
    fills in zeros for them, so it has to be looked up in the HDF5 file itself).
    """
    nir = _nir()
    import h5py
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"NIR file {str(path)!r} does not exist")
    if path.is_dir():
        raise UserError(f"NIR file {str(path)!r} is a directory")
    try:
        with h5py.File(path, "r") as f:
            version = f["version"][()] if "version" in f else None
            if isinstance(version, bytes):
                version = version.decode("utf-8", "replace")
            if "node" not in f:
                raise UserError(f"{path} is an HDF5 file but not a NIR graph (no 'node' group)")
            missing = []

            def walk(group, prefix):
                if "nodes" not in group:
                    return
                for name, node in group["nodes"].items():
                    typ = node["type"][()] if "type" in node else b""
                    typ = typ.decode() if isinstance(typ, bytes) else str(typ)
                    if typ in ("LIF", "IF", "CubaLIF") and "v_reset" not in node:
                        missing.append(prefix + name)
                    if typ == "NIRGraph":
                        walk(node, prefix + name + ".")

            walk(f["node"], "")
    except OSError as e:
        raise UserError(f"{path} is not a NIR file (cannot read it as HDF5: {e})") from None
    try:
        graph = nir.read(str(path))
    except Exception as e:  # nir raises assorted errors (KeyError, AssertionError, ...) on bad files
        raise UserError(f"{path}: nir could not read the graph ({type(e).__name__}: {e})") from None
    return graph, (str(version) if version is not None else None), missing


# --- graph structure ----------------------------------------------------------------------------

def _type(node) -> str:
    return type(node).__name__


def _chain(graph) -> list[tuple[str, Any]]:
    """The nodes of a single input-to-output path, in order; anything else is an error."""
    nir = _nir()
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    for name, node in nodes.items():
        t = _type(node)
        if isinstance(node, nir.NIRGraph):
            t = "NIRGraph"
        if t in _UNSUPPORTED:
            raise UserError(f"NIR node {name!r} ({t}): {_UNSUPPORTED[t]}")
        if t not in _NEURON_TYPES + ("Input", "Output", "Flatten", "Affine", "Linear"):
            raise UserError(f"NIR node {name!r} ({t}): node type {t} is not supported; supported: Input, "
                            "Output, Flatten, Affine, Linear, LIF, IF, LI, I")
    inputs = [n for n, node in nodes.items() if _type(node) == "Input"]
    outputs = [n for n, node in nodes.items() if _type(node) == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"the NIR graph has {len(inputs)} Input and {len(outputs)} Output nodes "
                        f"({inputs + outputs}); exactly one of each is supported")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise UserError(f"NIR edge ({a!r}, {b!r}) names a node that is not in the graph")
        if a == b:
            raise UserError(f"NIR node {a!r} ({_type(nodes[a])}) feeds itself: recurrence is not supported")
        succ[a].append(b)
        pred[b].append(a)
    cycle = _find_cycle(succ)
    if cycle:
        raise UserError(f"NIR node {cycle[0]!r} ({_type(nodes[cycle[0]])}) is on a cycle "
                        f"({' -> '.join(cycle + [cycle[0]])}): recurrence is not supported")
    for n in nodes:
        if len(succ[n]) > 1:
            raise UserError(f"NIR node {n!r} ({_type(nodes[n])}) has {len(succ[n])} outgoing edges "
                            f"(to {succ[n]}): only a single feed-forward chain is supported")
        if len(pred[n]) > 1:
            raise UserError(f"NIR node {n!r} ({_type(nodes[n])}) has {len(pred[n])} incoming edges "
                            f"(from {pred[n]}): recurrence and merging branches are not supported")
    order, seen, cur = [], set(), inputs[0]
    while True:
        if cur in seen:
            raise UserError(f"NIR node {cur!r} ({_type(nodes[cur])}) is reached twice: recurrence is not "
                            "supported")
        seen.add(cur)
        order.append(cur)
        if cur == outputs[0]:
            break
        if not succ[cur]:
            raise UserError(f"NIR node {cur!r} ({_type(nodes[cur])}) has no outgoing edge: the path from "
                            f"the input never reaches the output {outputs[0]!r}")
        cur = succ[cur][0]
    stray = [n for n in nodes if n not in seen]
    if stray:
        raise UserError(f"NIR node(s) {stray} are not on the path from input {inputs[0]!r} to output "
                        f"{outputs[0]!r}: only a single feed-forward chain is supported")
    return [(n, nodes[n]) for n in order]


def _find_cycle(succ: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in succ:
        if state.get(root):
            continue
        path, stack = [], [(root, iter(succ[root]))]
        state[root] = 1
        path.append(root)
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(succ[nxt])))
    return None


def _arr(node_name: str, node, attr: str, n: int) -> np.ndarray:
    """A per-neuron parameter as float64 [n] (a scalar broadcasts)."""
    raw = getattr(node, attr)
    a = np.asarray(raw, dtype=np.float64)
    if a.size == 1:
        a = np.full(n, float(a.reshape(-1)[0]))
    a = a.reshape(-1)
    if a.size != n:
        raise UserError(f"NIR node {node_name!r} ({_type(node)}): {attr} has {a.size} values but the "
                        f"preceding weights have {n} outputs")
    if not np.isfinite(a).all():
        bad = a[~np.isfinite(a)][0]
        raise UserError(f"NIR node {node_name!r} ({_type(node)}): {attr} contains {bad}; it must be finite")
    return a


@dataclass
class _RawLayer:
    """One Affine/Linear + neuron pair as stored in the graph (NIR orientation, float64)."""
    synapse: str
    neuron: str
    kind: str            # LIF, IF, LI, I
    weight: np.ndarray   # [n, n_in] as in NIR
    bias: np.ndarray     # [n]
    node: Any            # the neuron node
    syn_meta: dict
    neuron_meta: dict


def _raw_layers(graph) -> tuple[int, list[_RawLayer]]:
    chain = _chain(graph)
    width = None  # element count of the signal flowing along the chain
    in_name, in_node = chain[0]
    shape = np.asarray(in_node.input_type.get("input", in_node.input_type.get(next(iter(in_node.input_type)))))
    if shape is None or shape.size == 0:
        raise UserError(f"NIR node {in_name!r} (Input) has no shape")
    width = int(np.prod(shape))
    n_inputs = width
    layers: list[_RawLayer] = []
    pending = None  # (name, weight, bias, meta) of an Affine/Linear awaiting its neuron node
    for name, node in chain[1:]:
        t = _type(node)
        if t == "Flatten":
            if pending is not None:
                raise UserError(f"NIR node {name!r} (Flatten) sits between {pending[0]!r} and its neuron "
                                "node; only Affine/Linear -> neuron pairs are supported")
            continue  # a row-major reshape: the element count, all that matters here, is unchanged
        if t in ("Affine", "Linear"):
            if pending is not None:
                raise UserError(f"NIR node {name!r} ({t}) follows {pending[0]!r} ({_type(graph.nodes[pending[0]])}) "
                                "directly; every Affine/Linear must be followed by a LIF, IF, LI or I node")
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2:
                raise UserError(f"NIR node {name!r} ({t}): weight has shape {w.shape}; only 2-D "
                                "(outputs x inputs) weights are supported")
            if w.shape[1] != width:
                raise UserError(f"NIR node {name!r} ({t}): weight has {w.shape[1]} inputs but receives "
                                f"{width} values")
            b = np.zeros(w.shape[0]) if t == "Linear" else np.asarray(node.bias, dtype=np.float64).reshape(-1)
            if b.size == 1 and w.shape[0] != 1:
                b = np.full(w.shape[0], float(b[0]))
            if b.shape != (w.shape[0],):
                raise UserError(f"NIR node {name!r} (Affine): bias has {b.size} values for {w.shape[0]} outputs")
            for what, a in (("weight", w), ("bias", b)):
                if not np.isfinite(a).all():
                    raise UserError(f"NIR node {name!r} ({t}): {what} contains non-finite values")
            pending = (name, w, b, dict(node.metadata or {}))
            continue
        if t in _NEURON_TYPES:
            if pending is None:
                raise UserError(f"NIR node {name!r} ({t}) is not preceded by an Affine or Linear node; "
                                "every neuron node must follow one")
            if layers and layers[-1].kind in ("LI", "I"):
                raise UserError(f"NIR node {layers[-1].neuron!r} ({layers[-1].kind}) is a non-spiking "
                                "readout but is followed by more layers; LI and I are supported only as "
                                "the last neuron node")
            sname, w, b, smeta = pending
            layers.append(_RawLayer(sname, name, t, w, b, node, smeta, dict(node.metadata or {})))
            width = w.shape[0]
            pending = None
            continue
        if t == "Output":
            if pending is not None:
                raise UserError(f"NIR node {pending[0]!r} feeds the Output directly; it must be followed by "
                                "a LIF, IF, LI or I node")
            if not layers:
                raise UserError("the NIR graph has no Affine/Linear -> neuron layer")
    return n_inputs, layers


# --- discretisation -----------------------------------------------------------------------------

@dataclass
class FloatLayer:
    """A layer after forward-Euler discretisation, still in floats.

    Per step: ``v <- beta v + (s @ weights + bias)``; a spiking layer fires where ``v > threshold``
    and resets those neurons to 0. ``threshold`` is one value for the layer (None for a readout).
    """
    weights: np.ndarray   # [n_in, n]
    bias: np.ndarray      # [n]
    beta: float
    threshold: float | None
    kind: str
    synapse: str
    neuron: str
    notes: list[str] = field(default_factory=list)

    @property
    def readout(self) -> bool:
        return self.threshold is None


def _discretise(raw: _RawLayer, dt: float) -> FloatLayer:
    node, name, t = raw.node, raw.neuron, raw.kind
    n = raw.weight.shape[0]
    notes = []
    where = f"NIR node {name!r} ({t})"
    r = _arr(name, node, "r", n)
    if t in ("LIF", "LI"):
        tau = _arr(name, node, "tau", n)
        v_leak = _arr(name, node, "v_leak", n)
        if np.any(v_leak != 0):
            raise UserError(f"{where}: v_leak = {v_leak[v_leak != 0][0]:g}; only v_leak = 0 is supported "
                            "(spikegate membranes decay towards 0)")
        if np.any(tau <= 0):
            raise UserError(f"{where}: tau = {tau[tau <= 0][0]:g}; tau must be > 0")
        alpha = dt / tau
        if np.any(alpha > 1):
            raise UserError(f"{where}: tau = {tau.min():g} is shorter than dt = {dt:g}: forward Euler would "
                            "give a negative decay 1 - dt/tau; use a smaller --dt")
        beta_n = 1.0 - alpha
        gain = dt * r / tau
    else:
        beta_n = np.ones(n)
        gain = dt * r
    if beta_n.max() - beta_n.min() > 1e-9 * max(1.0, abs(beta_n.max())):
        raise UserError(f"{where}: tau differs between neurons ({node.tau.min():g} .. {node.tau.max():g}); "
                        "spikegate has one leak per layer")
    beta = float(beta_n.mean())
    if not np.isfinite(gain).all():
        raise UserError(f"{where}: r / tau is not finite")
    if np.ptp(gain) != 0:
        notes.append("per-neuron input gain dt*r/tau folded into weights and bias")
    W = raw.weight.T * gain[None, :]
    b = raw.bias * gain
    theta = None
    if t in _SPIKING:
        thr = _arr(name, node, "v_threshold", n)
        v_reset = _arr(name, node, "v_reset", n)
        if np.any(v_reset != 0):
            raise UserError(f"{where}: v_reset = {v_reset[v_reset != 0][0]:g}; only v_reset = 0 is "
                            "supported (spikegate resets a neuron that fires to 0)")
        if np.any(thr < 0):
            raise UserError(f"{where}: v_threshold = {thr[thr < 0][0]:g}; thresholds must be >= 0")
        theta = float(thr.max())
        if np.any(thr != theta):
            if np.any(thr == 0):
                raise UserError(f"{where}: v_threshold mixes 0 and positive values; spikegate has one "
                                "threshold per layer and a zero threshold cannot be rescaled to match")
            # v_leak = 0 and v_reset = 0 make each neuron linear in v: scaling its inputs and its
            # threshold by the same factor leaves its spikes unchanged.
            c = theta / thr
            W = W * c[None, :]
            b = b * c
            notes.append("per-neuron thresholds equalised by scaling each neuron's weights and bias")
    return FloatLayer(weights=W, bias=b, beta=beta, threshold=theta, kind=t, synapse=raw.synapse,
                      neuron=name, notes=notes)


def graph_to_float_layers(graph, dt: float) -> tuple[int, list[FloatLayer]]:
    """Discretise a supported NIR graph with forward Euler; returns ``(n_inputs, layers)``."""
    dt = _check_dt(dt)
    n_in, raws = _raw_layers(graph)
    return n_in, [_discretise(r, dt) for r in raws]


def simulate_float(layers: list[FloatLayer], spikes: np.ndarray, batch: int = 256, record: bool = False):
    """Run the discretised float layers on spikes [N, T, n_in].

    Returns ``(scores, inputs, peaks)``: per sample the last layer's spike counts (or final
    membranes for a readout); with ``record`` each layer's input spikes bool [N, T, n_in_l] (else
    None); per layer the largest |v| reached after integrating (before any reset).
    """
    spikes = np.asarray(spikes, dtype=bool)
    N, T, _ = spikes.shape
    n_out = layers[-1].weights.shape[1]
    scores = np.zeros((N, n_out))
    inputs = [np.zeros((N, T, L.weights.shape[0]), dtype=bool) for L in layers] if record else None
    peaks = np.zeros(len(layers))
    for lo in range(0, N, batch):
        s_all = spikes[lo:lo + batch]
        v = [np.zeros((s_all.shape[0], L.weights.shape[1])) for L in layers]
        counts = np.zeros((s_all.shape[0], n_out))
        for t in range(T):
            s = s_all[:, t, :]
            for i, L in enumerate(layers):
                if record:
                    inputs[i][lo:lo + batch, t] = s
                v[i] = L.beta * v[i] + s.astype(np.float64) @ L.weights + L.bias
                peaks[i] = max(peaks[i], float(np.abs(v[i]).max(initial=0.0)))
                if L.readout:
                    s = None
                else:
                    s = v[i] > L.threshold
                    v[i] = np.where(s, 0.0, v[i])
            if s is not None:
                counts += s
        scores[lo:lo + batch] = v[-1] if layers[-1].readout else counts
    return scores, inputs, peaks


# --- quantisation -------------------------------------------------------------------------------

def choose_leak(beta: float, frac_bits: int, membrane_bits: int) -> Leak:
    """The integer leak nearest to decay ``beta`` per step: a shift or a multiply by m / 2^F.

    ``beta == 1`` is no leak. On a tie the shift wins (it needs no multiplier).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta = {beta} is out of range; valid: 0 <= beta <= 1")
    if beta == 1.0:
        return Leak.none()
    m = int(round(beta * (1 << frac_bits)))
    mult = Leak.none() if m == (1 << frac_bits) else Leak.multiply(m, frac_bits)
    k = int(round(-math.log2(1.0 - beta)))
    k = min(max(k, 1), membrane_bits)
    shift = Leak.shift(k)
    if abs(shift.factor - beta) <= abs(mult.factor - beta):
        return shift
    return mult


def _check_dt(dt) -> float:
    if dt is None:
        raise UserError("--dt is required")
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise ValueError(f"dt = {dt!r} is not valid; valid: a number of seconds > 0") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt = {dt!r} is not valid; valid: a number of seconds > 0")
    return dt


def _err_stats(true: np.ndarray, approx: np.ndarray) -> dict:
    true = np.asarray(true, dtype=np.float64).reshape(-1)
    err = np.abs(np.asarray(approx, dtype=np.float64).reshape(-1) - true)
    ref = float(np.abs(true).max(initial=0.0))
    mx = float(err.max(initial=0.0))
    return {"max_abs": mx, "rms": float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0,
            "max_rel": (mx / ref) if ref > 0 else 0.0}


def _scale_limits(L: FloatLayer, weight_bits: int, membrane_bits: int) -> dict:
    """The largest scale each integer range allows."""
    wmax = signed_range(weight_bits)[1]
    vmax = signed_range(membrane_bits)[1]
    limits = {}
    w_abs = float(np.abs(L.weights).max(initial=0.0))
    b_abs = float(np.abs(L.bias).max(initial=0.0))
    if w_abs > 0:
        limits["weights"] = wmax / w_abs
    if b_abs > 0:
        limits["bias"] = vmax / b_abs
    if L.threshold is not None and L.threshold > 0:
        # floor(S theta) <= vmax - 1 keeps "v > theta" reachable by a saturated membrane.
        limits["threshold"] = (vmax - 1) / L.threshold
    if not limits:
        raise UserError(f"NIR node {L.synapse!r}: weights, bias and threshold are all zero; the layer "
                        "cannot do anything")
    return limits


def _quantise_layer(L: FloatLayer, index: int, weight_bits: int, membrane_bits: int, frac_bits: int,
                    S: float, limited_by: str) -> tuple[Layer, dict]:
    wmax = signed_range(weight_bits)[1]
    vmax = signed_range(membrane_bits)[1]
    W = np.clip(np.rint(L.weights * S), -wmax - 1, wmax).astype(np.int64)
    b = np.clip(np.rint(L.bias * S), -vmax - 1, vmax).astype(np.int64)
    leak = choose_leak(L.beta, frac_bits, membrane_bits)
    if L.readout:
        theta_i = 0
    else:
        x = L.threshold * S
        # S often comes from this very threshold; don't let one ulp of rounding cost a whole step.
        if abs(x - round(x)) <= 1e-9 * max(1.0, abs(x)):
            x = float(round(x))
        theta_i = int(min(math.floor(x), vmax - 1))
    layer = Layer(weights=W, bias=b, threshold=theta_i, weight_bits=weight_bits, membrane_bits=membrane_bits,
                  leak=leak, reset="zero", refractory=0, readout=L.readout, name=L.neuron)
    params = {
        "weights": _err_stats(L.weights, W / S),
        "bias": _err_stats(L.bias, b / S),
        "leak_beta": {"float": L.beta, "int": leak.factor, "max_abs": abs(leak.factor - L.beta),
                      "leak": leak.to_dict()},
    }
    if not L.readout:
        params["threshold"] = {"float": L.threshold, "int": theta_i, "represented": theta_i / S,
                               "max_abs": abs(L.threshold - theta_i / S)}
    report = {"layer": index, "synapse": L.synapse, "neuron": L.neuron, "kind": L.kind, "scale": S,
              "scale_limited_by": limited_by, "params": params, "notes": list(L.notes)}
    return layer, report


# --- import -------------------------------------------------------------------------------------

@dataclass
class ImportResult:
    network: Network
    exact: bool                       # rebuilt bit for bit from spikegate metadata
    dt: float
    layers: list[dict]                # per-layer quantisation report
    version: str | None = None        # NIR version the file was written with
    calibration: dict | None = None   # samples, float/int agreement when calibrated

    def to_json(self) -> dict:
        return {"exact": self.exact, "dt": self.dt, "nir_version": self.version, "layers": self.layers,
                "calibration": self.calibration, "shape": list(self.network.shape),
                "readout": self.network.readout, "timesteps": self.network.timesteps,
                "encoding": self.network.encoding, "digest": self.network.digest()}


def _meta_json(where: str, meta: dict) -> dict | None:
    raw = (meta or {}).get(META_KEY)
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        d = json.loads(raw) if isinstance(raw, str) else None
    except json.JSONDecodeError as e:
        raise UserError(f"{where}: metadata[{META_KEY!r}] is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise UserError(f"{where}: metadata[{META_KEY!r}] must be a JSON object")
    return d


def _exact_import(graph, gmeta: dict, n_inputs: int, raws: list[_RawLayer]) -> tuple[Network, list[dict]]:
    """Rebuild the network from spikegate metadata, then require that export gives back the graph."""
    if gmeta.get("format") != META_FORMAT or gmeta.get("version") != META_VERSION:
        raise UserError(f"graph metadata[{META_KEY!r}] has format {gmeta.get('format')!r} version "
                        f"{gmeta.get('version')!r}; this spikegate reads {META_FORMAT!r} version {META_VERSION}")
    layers = []
    for i, raw in enumerate(raws):
        where = f"NIR node {raw.neuron!r} ({raw.kind})"
        m = _meta_json(where, raw.neuron_meta)
        if m is None:
            raise UserError(f"{where} has no metadata[{META_KEY!r}] although the graph was exported by "
                            "spikegate; the graph was edited after export. Use --ignore-metadata to import "
                            "it as a float graph")
        for what, a in (("weight", raw.weight), ("bias", raw.bias)):
            if not np.array_equal(a, np.rint(a)):
                raise UserError(f"NIR node {raw.synapse!r}: {what} holds non-integer values, which a "
                                "spikegate export never writes; the graph was edited after export. Use "
                                "--ignore-metadata to import it as a float graph")
        thr = 0
        if raw.kind in _SPIKING:
            t = np.asarray(raw.node.v_threshold, dtype=np.float64).reshape(-1)
            if t.size == 0 or not np.all(t == t[0]) or t[0] != np.rint(t[0]):
                raise UserError(f"{where}: v_threshold is not one integer for all neurons, which a spikegate "
                                "export never writes; the graph was edited after export. Use "
                                "--ignore-metadata to import it as a float graph")
            thr = int(t[0])
        try:
            layer = Layer(weights=raw.weight.T.astype(np.int64), bias=raw.bias.astype(np.int64), threshold=thr,
                          weight_bits=m.get("weight_bits"), membrane_bits=m.get("membrane_bits"),
                          leak=Leak.from_dict(m.get("leak", {"kind": "none"})), reset=m.get("reset", "zero"),
                          refractory=m.get("refractory", 0), readout=raw.kind in ("LI", "I"),
                          name=m.get("name", ""))
        except (TypeError, ValueError) as e:
            raise UserError(f"{where}: its spikegate metadata does not describe a valid layer: {e}") from None
        layers.append(layer)
    nd = gmeta.get("network", {})
    meta = nd.get("meta", {})
    try:
        net = Network(layers=layers, timesteps=nd.get("timesteps", 32), encoding=nd.get("encoding", "rate"),
                      name=nd.get("name", ""), meta=meta)
    except (TypeError, ValueError) as e:
        raise UserError(f"graph metadata[{META_KEY!r}] does not describe a valid network: {e}") from None
    if net.n_inputs != n_inputs:
        raise UserError(f"the graph's Input has {n_inputs} values but the first layer {net.n_inputs} inputs")
    # The metadata must describe exactly this graph: export the rebuilt network and compare.
    ref, _ = network_to_graph(net)
    _, ref_raws = _raw_layers(ref)
    for raw, rr in zip(raws, ref_raws):
        if raw.kind != rr.kind:
            raise UserError(f"NIR node {raw.neuron!r} is a {raw.kind} node but its spikegate metadata "
                            f"describes a {rr.kind} layer; the graph was edited after export. Use "
                            "--ignore-metadata to import it as a float graph")
        for attr in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
            if hasattr(rr.node, attr):
                a = np.asarray(getattr(raw.node, attr), dtype=np.float64).reshape(-1)
                b = np.asarray(getattr(rr.node, attr), dtype=np.float64).reshape(-1)
                if a.shape != b.shape or not np.array_equal(a, b):
                    raise UserError(f"NIR node {raw.neuron!r} ({raw.kind}): {attr} does not match its "
                                    f"spikegate metadata (expected {b.reshape(-1)[:1].tolist()} for every "
                                    "neuron); the graph was edited after export. Use --ignore-metadata to "
                                    "import it as a float graph")
    reports = []
    for i, (raw, layer) in enumerate(zip(raws, net.layers)):
        zero = {"max_abs": 0.0, "rms": 0.0, "max_rel": 0.0}
        params = {"weights": dict(zero), "bias": dict(zero),
                  "leak_beta": {"float": layer.leak.factor, "int": layer.leak.factor, "max_abs": 0.0,
                                "leak": layer.leak.to_dict()}}
        if not layer.readout:
            params["threshold"] = {"float": float(layer.threshold), "int": layer.threshold,
                                   "represented": float(layer.threshold), "max_abs": 0.0}
        reports.append({"layer": i, "synapse": raw.synapse, "neuron": raw.neuron, "kind": raw.kind,
                        "scale": 1.0, "scale_limited_by": "exact", "params": params, "notes": []})
    return net, reports


def check_v_reset(version: str | None, missing_v_reset) -> None:
    """Refuse spiking nodes without v_reset from files older than NIR 1.0.6 (see read_graph)."""
    v = _version_tuple(version)
    if missing_v_reset and (v is None or v < MIN_V_RESET_VERSION):
        raise UserError(f"NIR node {missing_v_reset[0]!r} has no v_reset: the file was written by NIR "
                        f"{version or '(no version recorded)'}, older than "
                        f"{'.'.join(map(str, MIN_V_RESET_VERSION))}, when tools disagreed on what a spike "
                        "resets the membrane to; re-export the model with nir >= 1.0.6")


def network_from_graph(graph, *, dt: float | None = None, weight_bits: int = 8, membrane_bits: int = 16,
                       leak_frac_bits: int = 8, timesteps: int = 32, encoding: str = "rate",
                       calibrate: np.ndarray | None = None, ignore_metadata: bool = False,
                       version: str | None = None, missing_v_reset: list[str] | tuple = (),
                       name: str = "", progress: Callable[[str], None] | None = None) -> ImportResult:
    """Convert an in-memory NIR graph into a spikegate network (see the module docstring).

    ``calibrate``: input spikes bool [N, T, n_in]; each layer's scale is then chosen on them (see
    :func:`_calibrate`) and the float/integer classification agreement on them is reported.
    """
    check_v_reset(version, missing_v_reset)
    n_inputs, raws = _raw_layers(graph)
    gmeta = None if ignore_metadata else _meta_json("the NIR graph", getattr(graph, "metadata", {}) or {})
    if gmeta is not None:
        net, reports = _exact_import(graph, gmeta, n_inputs, raws)
        return ImportResult(network=net, exact=True, dt=float(gmeta.get("dt", 1.0)), layers=reports,
                            version=version)
    if dt is None:
        hint = _dt_hint(raws)
        raise UserError("--dt is required for this graph: NIR is continuous-time and does not record the "
                        "step a model was trained with" + (f" (its LIF nodes have r / tau = 1 / {hint:g}, "
                                                           f"which suggests --dt {hint:g})" if hint else ""))
    dt = _check_dt(dt)
    for nm, val, lo, hi in (("weight_bits", weight_bits, 2, 16), ("membrane_bits", membrane_bits, 2, 32),
                            ("leak_frac_bits", leak_frac_bits, 1, 16), ("timesteps", timesteps, 1, 4096)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or not lo <= val <= hi:
            raise ValueError(f"{nm} = {val!r} is not valid; valid: an integer {lo}..{hi}")
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding = {encoding!r} is not valid; valid: {', '.join(ENCODINGS)}")
    floats = [_discretise(r, dt) for r in raws]
    layers, reports = [], []
    for i, L in enumerate(floats):
        limits = _scale_limits(L, weight_bits, membrane_bits)
        by = min(limits, key=limits.get)
        layer, rep = _quantise_layer(L, i, weight_bits, membrane_bits, leak_frac_bits, limits[by], by)
        layers.append(layer)
        reports.append(rep)
    cal = None
    if calibrate is not None:
        spikes = np.asarray(calibrate)
        if spikes.ndim != 3 or spikes.shape[2] != n_inputs:
            raise ValueError(f"calibration spikes must have shape [N, T, {n_inputs}], got {spikes.shape}")
        cal = _calibrate(floats, layers, reports, spikes.astype(bool), weight_bits, membrane_bits,
                         leak_frac_bits, progress)
    net = Network(layers=layers, timesteps=timesteps, encoding=encoding, name=name,
                  meta={"source": "nir", "dt": dt, "nir_version": version,
                        "calibrated": calibrate is not None})
    if calibrate is not None:
        from .model.simulate import classify, simulate
        if progress:
            progress("comparing float and integer classifications on the calibration data")
        ipred = classify(net, simulate(net, spikes))
        cal["agreement"] = float(np.mean(ipred == cal.pop("float_pred")))
    return ImportResult(network=net, exact=False, dt=dt, layers=reports, version=version, calibration=cal)


# Calibration tries the range-limited scale and smaller ones in quarter octaves, down to the scale
# at which the layer's largest float membrane on the data fits (below that, nothing more fits).
CALIBRATION_MAX_CANDIDATES = 64


def _layer_mismatch(layer: Layer, L: FloatLayer, x: np.ndarray, want: np.ndarray) -> float:
    """How badly the integer layer reproduces the float layer on its float-network inputs ``x``:
    the fraction of differing spikes, or for a readout of differing final-membrane argmaxes."""
    from .model.simulate import simulate
    res = simulate(Network(layers=[layer], timesteps=x.shape[1]), x)
    if L.readout:
        return float(np.mean(np.argmax(res.membranes[0], axis=1) != want))
    return float(np.mean(res.spikes[0] != want))


def _calibrate(floats, layers, reports, spikes, weight_bits, membrane_bits, frac_bits, progress) -> dict:
    """Pick each layer's scale on data: the candidate whose integer layer best matches the float layer.

    A smaller scale coarsens weights but keeps membranes off the rails; which costs less depends on
    the data, so it is measured rather than guessed. Every layer is judged on the spikes the float
    network feeds it, so the layers are calibrated independently; ties keep the larger scale.
    """
    N, T, _ = spikes.shape
    vmax = signed_range(membrane_bits)[1]
    if progress:
        progress(f"calibrating on {N} samples x {T} steps: float simulation")
    fscores, inputs, peaks = simulate_float(floats, spikes, record=True)
    for i, L in enumerate(floats):
        x = inputs[i]
        if L.readout:
            want = np.argmax(simulate_float([L], x)[0], axis=1)
        else:
            want = inputs[i + 1] if i + 1 < len(floats) else _spikes_of(L, x)
        S0, by0 = reports[i]["scale"], reports[i]["scale_limited_by"]
        S_fit = vmax / peaks[i] if peaks[i] > 0 else S0
        n_cand = 1
        while n_cand < CALIBRATION_MAX_CANDIDATES and S0 * 2.0 ** (-(n_cand - 1) / 4) > S_fit:
            n_cand += 1
        if progress:
            progress(f"calibrating layer {i} ({L.neuron}): {n_cand} candidate scale(s)")
        best = err0 = None
        for j in range(n_cand):
            S = max(S0 * 2.0 ** (-j / 4), S_fit) if j else S0
            layer, rep = _quantise_layer(L, i, weight_bits, membrane_bits, frac_bits, S,
                                         by0 if j == 0 else "calibration")
            err = _layer_mismatch(layer, L, x, want)
            if j == 0:
                err0 = err
            if best is None or err < best[0]:
                best = (err, layer, rep)
        err, layers[i], reports[i] = best
        reports[i]["calibration"] = {"mismatch": err, "mismatch_uncalibrated": err0, "candidates": n_cand,
                                     "peak": float(peaks[i]),
                                     "measure": "argmax" if L.readout else "spikes"}
    return {"samples": int(N), "timesteps": int(T), "float_pred": np.argmax(fscores, axis=1)}


def _spikes_of(L: FloatLayer, x: np.ndarray) -> np.ndarray:
    """The float layer's output spikes bool [N, T, n] for inputs ``x``."""
    N, T, _ = x.shape
    v = np.zeros((N, L.weights.shape[1]))
    out = np.zeros((N, T, L.weights.shape[1]), dtype=bool)
    for t in range(T):
        v = L.beta * v + x[:, t].astype(np.float64) @ L.weights + L.bias
        out[:, t] = v > L.threshold
        v = np.where(out[:, t], 0.0, v)
    return out


def _dt_hint(raws: list[_RawLayer]) -> float | None:
    """snnTorch-style exports set r = tau / dt so that the input gain is 1; recover that dt."""
    vals = []
    for raw in raws:
        if raw.kind in ("LIF", "LI"):
            r = np.asarray(raw.node.r, dtype=np.float64).reshape(-1)
            tau = np.asarray(raw.node.tau, dtype=np.float64).reshape(-1)
            if r.size and np.all(r > 0) and np.all(tau > 0):
                vals.extend((tau / r).tolist())
    if not vals:
        return None
    vals = np.asarray(vals)
    if np.ptp(vals) > 1e-6 * abs(vals.mean()):
        return None
    return float(vals.mean())


def import_nir(path: str | os.PathLike, **kwargs) -> ImportResult:
    """Read a NIR file and convert it (keyword arguments as :func:`network_from_graph`)."""
    graph, version, missing = read_graph(path)
    kwargs.setdefault("name", Path(path).stem)
    return network_from_graph(graph, version=version, missing_v_reset=missing, **kwargs)


# --- export -------------------------------------------------------------------------------------

def _leak_tau(leak: Leak) -> float | None:
    """NIR tau (with dt = 1) whose forward-Euler decay 1 - 1/tau is the leak's factor; None = no decay."""
    beta = leak.factor
    if beta == 1.0:
        return None
    if leak.kind == "shift":
        return float(1 << leak.k)
    return (1 << leak.frac_bits) / ((1 << leak.frac_bits) - leak.m)


@dataclass
class ExportResult:
    path: Path
    nodes: list[str]
    warnings: list[str]
    nir_version: str

    def to_json(self) -> dict:
        return {"path": str(self.path), "nodes": self.nodes, "warnings": self.warnings,
                "nir_version": self.nir_version}


def network_to_graph(net: Network):
    """The NIR graph of ``net`` (dt = 1) and the list of what only spikegate readers will see."""
    nir = _nir()
    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network, got {type(net).__name__}")
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([net.n_inputs])})}
    edges = []
    prev = "input"
    warnings = []
    for i, layer in enumerate(net.layers):
        n = layer.n
        W = layer.weights.T.astype(np.float64)
        b = layer.bias.astype(np.float64)
        syn = f"fc{i}"
        nodes[syn] = nir.Linear(weight=W) if not b.any() else nir.Affine(weight=W, bias=b)
        tau = _leak_tau(layer.leak)
        meta = {"layer": i, "name": layer.name, "weight_bits": layer.weight_bits,
                "membrane_bits": layer.membrane_bits, "leak": layer.leak.to_dict(), "reset": layer.reset,
                "refractory": layer.refractory}
        md = {META_KEY: json.dumps(meta, sort_keys=True)}
        full = lambda x: np.full(n, float(x))  # noqa: E731
        if layer.readout:
            if tau is None:
                neuron, node = f"i{i}", nir.I(r=full(1.0), metadata=md)
            else:
                neuron, node = f"li{i}", nir.LI(tau=full(tau), r=full(tau), v_leak=full(0.0), metadata=md)
        elif tau is None:
            neuron, node = f"if{i}", nir.IF(r=full(1.0), v_threshold=full(layer.threshold), v_reset=full(0.0),
                                            metadata=md)
        else:
            neuron, node = f"lif{i}", nir.LIF(tau=full(tau), r=full(tau), v_leak=full(0.0),
                                              v_threshold=full(layer.threshold), v_reset=full(0.0), metadata=md)
        if not layer.readout and layer.reset == "subtract":
            warnings.append(f"layers[{i}] ({neuron}): reset = 'subtract' has no NIR equivalent; the node "
                            "says v_reset = 0 and the subtract reset is carried in metadata['spikegate'], "
                            "which only spikegate reads")
        if layer.refractory:
            warnings.append(f"layers[{i}] ({neuron}): refractory = {layer.refractory} has no NIR equivalent; "
                            "it is carried in metadata['spikegate'], which only spikegate reads")
        nodes[neuron] = node
        edges += [(prev, syn), (syn, neuron)]
        prev = neuron
    nodes["output"] = nir.Output(output_type={"output": np.array([net.n_outputs])})
    edges.append((prev, "output"))
    gmeta = {"format": META_FORMAT, "version": META_VERSION, "dt": 1.0,
             "network": {"name": net.name, "timesteps": net.timesteps, "encoding": net.encoding,
                         "meta": net.meta}}
    try:
        text = json.dumps(gmeta, sort_keys=True)
    except (TypeError, ValueError) as e:
        raise ValueError(f"network meta cannot be stored in NIR metadata: it is not JSON-serialisable ({e})") from None
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={META_KEY: text})
    return graph, warnings


def export_nir(net: Network, path: str | os.PathLike) -> ExportResult:
    """Write ``net`` as a NIR file atomically, after checking that it imports back identically."""
    nir = _nir()
    path = Path(path)
    graph, warnings = network_to_graph(net)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"output directory {str(parent)!r} does not exist")
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
        back = import_nir(tmp).network
        if back != net:
            raise RuntimeError("internal error: the exported NIR graph does not import back to the same "
                               "network; please report this")
    return ExportResult(path=path, nodes=list(graph.nodes), warnings=warnings, nir_version=str(nir.version))


def load_calibration(spec: str, *, n_inputs: int, timesteps: int, encoding: str,
                     data_dir: str | os.PathLike | None = None, limit: int | None = 2000,
                     seed: int = 0) -> tuple[np.ndarray, str]:
    """Calibration spikes bool [N, T, n_inputs] from a data set name or a ``.npy`` file.

    ``spec`` is ``digits`` / ``mnist`` (the training split, encoded with ``encoding`` and
    ``timesteps``), or a ``.npy`` file holding intensities float [N, n_inputs] in [0, 1] (encoded
    likewise) or spikes bool/0-1 integer [N, T, n_inputs] (used as they are). At most ``limit``
    samples are used (the first ones). Returns the spikes and a one-line description.
    """
    from .model.encode import encode
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise ValueError(f"calibration sample limit = {limit!r} is not valid; valid: an integer >= 1")
    path = Path(spec)
    if path.suffix == ".npy" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {spec!r} does not exist")
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise UserError(f"calibration file {spec!r} is not a .npy array ({e})") from None
        arr = arr[:limit] if limit else arr
        if arr.ndim == 3:
            if arr.shape[2] != n_inputs:
                raise ValueError(f"calibration spikes in {spec!r} have shape {arr.shape}; expected "
                                 f"[N, T, {n_inputs}]")
            if arr.dtype != bool:
                if not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() > 1)):
                    raise ValueError(f"calibration spikes in {spec!r} must be bool or 0/1 integers, got "
                                     f"dtype {arr.dtype}")
                arr = arr.astype(bool)
            return arr, f"{spec}: {arr.shape[0]} spike trains of {arr.shape[1]} steps"
        if arr.ndim == 2:
            if arr.shape[1] != n_inputs:
                raise ValueError(f"calibration intensities in {spec!r} have shape {arr.shape}; expected "
                                 f"[N, {n_inputs}]")
            try:
                spikes = encode(arr, encoding, timesteps, seed)
            except ValueError as e:
                raise ValueError(f"calibration intensities in {spec!r}: {e}") from None
            return spikes, f"{spec}: {arr.shape[0]} samples, {encoding} encoded over {timesteps} steps"
        raise ValueError(f"calibration array in {spec!r} has shape {arr.shape}; expected intensities [N, "
                         f"{n_inputs}] or spikes [N, T, {n_inputs}]")
    from . import datasets
    if spec not in datasets.DATASETS:
        raise ValueError(f"--calibrate {spec!r} is neither a data set ({', '.join(datasets.DATASETS)}) nor an "
                         "existing .npy file")
    x, _ = datasets.load(spec, "train", data_dir)
    x = x[:limit] if limit else x
    if x.shape[1] != n_inputs:
        raise ValueError(f"data set {spec!r} has {x.shape[1]} inputs but the NIR graph expects {n_inputs}")
    return encode(x, encoding, timesteps, seed), (f"{spec} train split, first {x.shape[0]} samples, "
                                                  f"{encoding} encoded over {timesteps} steps")


def graph_input_count(graph) -> int:
    """Number of input values of a supported graph (checks the whole chain)."""
    return _raw_layers(graph)[0]


def is_spikegate_export(graph) -> bool:
    """True when the graph carries spikegate metadata (it then imports exactly, without options)."""
    return META_KEY in (getattr(graph, "metadata", None) or {})
