"""The supported shape of a NIR graph: a chain of layers, each a neuron node fed by synapse paths.

A layer is one neuron node (LIF, IF, LI, I, CubaLIF, CubaLI) and the synapse paths into it
(:mod:`.paths`): feed-forward paths all from the previous layer's neuron node (the Input for the
first layer), whose weights add up, each optionally delayed by a Delay node before (per input) or
after (per neuron) its Affine/Linear; and recurrent paths from the neuron node back to itself
(NIR's convention: the spikes fed back are those of the previous step). Nested subgraphs are
inlined first. Everything here works on the graph as stored (NIR orientation, float64, delays in
seconds); nothing is discretised yet.

``SYNAPSE_READERS`` maps a synapse node type to the function that reads its dense weights and bias
(``reader(name, node, width) -> (weight [n, width], bias [n])``); other synapse kinds plug in there.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import UserError
from .paths import PASS_TYPES, SynapsePath, flat_graph, node_type, trace_path

__all__ = ["RawLayer", "raw_layers", "graph_input_count", "NEURON_TYPES", "SPIKING", "READOUT", "CUBA",
           "SYNAPSE_READERS", "node_type", "per_neuron"]

NEURON_TYPES = ("LIF", "IF", "LI", "I", "CubaLIF", "CubaLI")
SPIKING = ("LIF", "IF", "CubaLIF")
READOUT = ("LI", "I", "CubaLI")
CUBA = ("CubaLIF", "CubaLI")
_UNSUPPORTED = {
    "Conv1d": "convolutions are not supported (spikegate layers are fully connected)",
    "Conv2d": "convolutions are not supported (spikegate layers are fully connected)",
    "SumPool2d": "pooling is not supported",
    "AvgPool2d": "pooling is not supported",
    "Threshold": "a bare Threshold node is not supported (use IF or LIF neurons)",
    "Scale": "Scale nodes are not supported (fold the scale into the preceding Affine/Linear weights)",
}


def read_dense(name: str, node, width: int) -> tuple[np.ndarray, np.ndarray]:
    """An Affine/Linear node's weight [n, width] and bias [n] as float64."""
    t = node_type(node)
    w = np.asarray(node.weight, dtype=np.float64)
    if w.ndim != 2:
        raise UserError(f"NIR node {name!r} ({t}): weight has shape {w.shape}; only 2-D (outputs x inputs) "
                        "weights are supported")
    if 0 in w.shape:
        raise UserError(f"NIR node {name!r} ({t}): weight has shape {w.shape} (outputs x inputs); a layer needs "
                        "at least one input and one neuron")
    if w.shape[1] != width:
        raise UserError(f"NIR node {name!r} ({t}): weight has {w.shape[1]} inputs but receives {width} values")
    b = np.zeros(w.shape[0]) if t == "Linear" else np.asarray(node.bias, dtype=np.float64).reshape(-1)
    if b.size == 1 and w.shape[0] != 1:
        b = np.full(w.shape[0], float(b[0]))
    if b.shape != (w.shape[0],):
        raise UserError(f"NIR node {name!r} (Affine): bias has {b.size} values for {w.shape[0]} outputs")
    for what, a in (("weight", w), ("bias", b)):
        if not np.isfinite(a).all():
            raise UserError(f"NIR node {name!r} ({t}): {what} contains non-finite values")
    return w, b


SYNAPSE_READERS = {"Affine": read_dense, "Linear": read_dense}


def per_neuron(node_name: str, node, attr: str, n: int) -> np.ndarray:
    """A per-neuron parameter as float64 [n] (a scalar broadcasts)."""
    a = np.asarray(getattr(node, attr), dtype=np.float64)
    if a.size == 1:
        a = np.full(n, float(a.reshape(-1)[0]))
    a = a.reshape(-1)
    if a.size != n:
        raise UserError(f"NIR node {node_name!r} ({node_type(node)}): {attr} has {a.size} values but the "
                        f"preceding weights have {n} outputs")
    if not np.isfinite(a).all():
        bad = a[~np.isfinite(a)][0]
        raise UserError(f"NIR node {node_name!r} ({node_type(node)}): {attr} contains {bad}; it must be finite")
    return a


@dataclass
class RawLayer:
    """One layer as stored in the graph (NIR orientation, float64)."""
    synapse: str         # the first feed-forward synapse node (names the layer's weights in messages)
    neuron: str
    kind: str            # one of NEURON_TYPES
    weight: np.ndarray   # [n, n_in], every feed-forward path added up
    bias: np.ndarray     # [n], every path's bias added up
    node: Any            # the neuron node
    syn_meta: dict
    neuron_meta: dict
    delay: np.ndarray | None = None      # [n, n_in] seconds per synapse; None: no Delay node
    recurrent: np.ndarray | None = None  # [n, n] (to x from); None: no recurrent path
    synapses: list[str] = field(default_factory=list)  # every synapse node of the layer


def _check_types(nodes: dict) -> None:
    known = NEURON_TYPES + PASS_TYPES + tuple(SYNAPSE_READERS) + ("Input", "Output")
    for name, node in nodes.items():
        t = node_type(node)
        if t in _UNSUPPORTED:
            raise UserError(f"NIR node {name!r} ({t}): {_UNSUPPORTED[t]}")
        if t not in known:
            raise UserError(f"NIR node {name!r} ({t}): node type {t} is not supported; supported: "
                            f"{', '.join(known)}")


def _delay_vector(name: str | None, nodes: dict, size: int, where: str) -> np.ndarray:
    if name is None:
        return np.zeros(size)
    d = np.asarray(nodes[name].delay, dtype=np.float64).reshape(-1)
    if d.size == 1:
        d = np.full(size, float(d[0]))
    if d.size != size:
        raise UserError(f"NIR node {name!r} (Delay): delay has {d.size} values but sits {where} {size} values")
    if not np.isfinite(d).all() or (d < 0).any():
        raise UserError(f"NIR node {name!r} (Delay): delay contains {d[~(np.isfinite(d) & (d >= 0))][0]}; delays "
                        "must be finite and >= 0")
    return d


def _layer(target: str, paths: list[SynapsePath], nodes: dict, width: int) -> RawLayer:
    """Add up the paths into one neuron node: per-synapse weights, delays and the recurrent matrix."""
    ff = [p for p in paths if p.source != target]
    rec = [p for p in paths if p.source == target]
    W = b = D = None
    owner = None  # which synapse node set each synapse's delay
    for p in ff:
        w, bias = SYNAPSE_READERS[node_type(nodes[p.synapse])](p.synapse, nodes[p.synapse], width)
        n = w.shape[0]
        if W is None:
            W, b, D, owner = np.zeros_like(w), np.zeros(n), np.zeros_like(w), np.full(w.shape, "", dtype=object)
        elif w.shape != W.shape:
            raise UserError(f"NIR node {p.synapse!r} has weight shape {w.shape} but {ff[0].synapse!r}, which feeds "
                            f"the same neuron node {target!r}, has {W.shape}")
        d_in = _delay_vector(p.delay_before, nodes, width, "before an Affine/Linear of")
        d_out = _delay_vector(p.delay_after, nodes, n, "after an Affine/Linear of")
        if p.delay_after is not None and d_out.any() and bias.any():
            raise UserError(f"NIR node {p.delay_after!r} (Delay) delays the bias of {p.synapse!r}, which would then "
                            "be missing for the first steps; spikegate's bias acts from step 0 (put the Delay before "
                            "the Affine, or use a Linear)")
        Dp = d_out[:, None] + d_in[None, :]
        nz = w != 0
        clash = nz & (owner != "") & (D != Dp)
        if clash.any():
            j, i = np.argwhere(clash)[0]
            raise UserError(f"NIR nodes {owner[j, i]!r} and {p.synapse!r} both connect input {i} to neuron {j} of "
                            f"{target!r}, with delays {D[j, i]:g} and {Dp[j, i]:g}: spikegate has one delay per synapse")
        W += w
        b += bias
        D = np.where(nz, Dp, D)
        owner = np.where(nz, p.synapse, owner)
    R = None
    for p in rec:
        if p.delay_before is not None or p.delay_after is not None:
            raise UserError(f"NIR node {p.delay_before or p.delay_after!r} (Delay) is on the recurrent path "
                            f"{target!r} -> {p.synapse!r} -> {target!r}; recurrent spikes arrive one step later, "
                            "with no other delay")
        w, bias = SYNAPSE_READERS[node_type(nodes[p.synapse])](p.synapse, nodes[p.synapse], W.shape[0])
        if w.shape != (W.shape[0], W.shape[0]):
            raise UserError(f"NIR node {p.synapse!r} feeds {target!r} back to itself but has weight shape {w.shape}; "
                            f"expected ({W.shape[0]}, {W.shape[0]})")
        R = w if R is None else R + w
        b = b + bias  # a bias is constant, whichever path adds it
    has_delay = any(p.delay_before or p.delay_after for p in ff)
    node = nodes[target]
    return RawLayer(synapse=ff[0].synapse, neuron=target, kind=node_type(node), weight=W, bias=b, node=node,
                    syn_meta=dict(nodes[ff[0].synapse].metadata or {}), neuron_meta=dict(node.metadata or {}),
                    delay=D if has_delay else None, recurrent=R, synapses=[p.synapse for p in paths])


def raw_layers(graph) -> tuple[int, list[RawLayer]]:
    """Check that the graph is a supported chain of layers; returns ``(n_inputs, layers)`` in order."""
    nodes, edges = flat_graph(graph)
    _check_types(nodes)
    inputs = [n for n, node in nodes.items() if node_type(node) == "Input"]
    outputs = [n for n, node in nodes.items() if node_type(node) == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"the NIR graph has {len(inputs)} Input and {len(outputs)} Output nodes "
                        f"({inputs + outputs}); exactly one of each is supported")
    inp, out = inputs[0], outputs[0]
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a == b:
            raise UserError(f"NIR node {a!r} ({node_type(nodes[a])}) feeds itself directly; a recurrent edge needs "
                            "an Affine/Linear node in between")
        succ[a].append(b)
        pred[b].append(a)
    neurons = [n for n, node in nodes.items() if node_type(node) in NEURON_TYPES]
    stops = set(neurons) | {inp}
    paths = {}
    for N in neurons:
        if not pred[N]:
            raise UserError(f"NIR node {N!r} ({node_type(nodes[N])}) is not preceded by an Affine or Linear node; "
                            "every neuron node must follow one")
        paths[N] = [trace_path(N, p, nodes, pred, succ, stops, SYNAPSE_READERS) for p in pred[N]]
    source = {}
    for N in neurons:
        srcs = sorted({p.source for p in paths[N] if p.source != N})
        if not srcs:
            raise UserError(f"NIR node {N!r} ({node_type(nodes[N])}) has only recurrent inputs; every layer needs "
                            "a feed-forward input")
        if len(srcs) > 1:
            raise UserError(f"NIR node {N!r} ({node_type(nodes[N])}) is fed from {len(srcs)} layers ({srcs}); only a "
                            "chain of layers is supported (no skip connections)")
        source[N] = srcs[0]
    order, cur = [], inp
    while True:
        nxt = [N for N in neurons if source[N] == cur]
        if len(nxt) > 1:
            raise UserError(f"NIR node {cur!r} ({node_type(nodes[cur])}) feeds {len(nxt)} layers ({nxt}); only a "
                            "single chain of layers is supported")
        if not nxt:
            break
        if order and node_type(nodes[order[-1]]) in READOUT:
            raise UserError(f"NIR node {order[-1]!r} ({node_type(nodes[order[-1]])}) is a non-spiking readout but "
                            "is followed by more layers; LI, I and CubaLI are supported only as the last neuron node")
        order.append(nxt[0])
        cur = nxt[0]
    if not order:
        raise UserError("the NIR graph has no Affine/Linear -> neuron layer")
    if pred[out] != [order[-1]]:
        raise UserError(f"NIR node {out!r} (Output) is fed by {pred[out]}; it must be fed by the last neuron node "
                        f"{order[-1]!r} alone")
    on_chain = {inp, out, *order, *(n for N in order for p in paths[N] for n in p.nodes)}
    stray = [n for n in nodes if n not in on_chain]
    if stray:
        raise UserError(f"NIR node(s) {stray} are not on the chain of layers from input {inp!r} to output "
                        f"{out!r}: only a single chain of layers is supported")
    shape = np.asarray(nodes[inp].input_type.get("input", nodes[inp].input_type.get(next(iter(nodes[inp].input_type)))))
    if shape is None or shape.size == 0:
        raise UserError(f"NIR node {inp!r} (Input) has no shape")
    width = n_inputs = int(np.prod(shape))
    if width < 1:
        raise UserError(f"NIR node {inp!r} (Input) has shape {shape.tolist()}: no inputs; valid: at least one")
    layers = []
    for N in order:
        layer = _layer(N, paths[N], nodes, width)
        if layer.recurrent is not None and layer.kind in READOUT:
            raise UserError(f"NIR node {N!r} ({layer.kind}) is a non-spiking readout with a recurrent path "
                            f"({layer.synapses}); it never spikes, so recurrence is not supported there")
        layers.append(layer)
        width = layer.weight.shape[0]
    return n_inputs, layers


def graph_input_count(graph) -> int:
    """Number of input values of a supported graph (checks the whole chain)."""
    return raw_layers(graph)[0]
