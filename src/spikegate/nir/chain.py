"""The supported shape of a NIR graph: one feed-forward chain of Affine/Linear -> neuron pairs.

Everything here works on the graph as stored (NIR orientation, float64); nothing is discretised yet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UserError
from .read import nir_package

__all__ = ["RawLayer", "raw_layers", "graph_input_count", "NEURON_TYPES", "SPIKING"]

NEURON_TYPES = ("LIF", "IF", "LI", "I")
SPIKING = ("LIF", "IF")
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


def node_type(node) -> str:
    return type(node).__name__


def _chain(graph) -> list[tuple[str, Any]]:
    """The nodes of a single input-to-output path, in order; anything else is an error."""
    nir = nir_package()
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    for name, node in nodes.items():
        t = node_type(node)
        if isinstance(node, nir.NIRGraph):
            t = "NIRGraph"
        if t in _UNSUPPORTED:
            raise UserError(f"NIR node {name!r} ({t}): {_UNSUPPORTED[t]}")
        if t not in NEURON_TYPES + ("Input", "Output", "Flatten", "Affine", "Linear"):
            raise UserError(f"NIR node {name!r} ({t}): node type {t} is not supported; supported: Input, "
                            "Output, Flatten, Affine, Linear, LIF, IF, LI, I")
    inputs = [n for n, node in nodes.items() if node_type(node) == "Input"]
    outputs = [n for n, node in nodes.items() if node_type(node) == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"the NIR graph has {len(inputs)} Input and {len(outputs)} Output nodes "
                        f"({inputs + outputs}); exactly one of each is supported")
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    pred: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise UserError(f"NIR edge ({a!r}, {b!r}) names a node that is not in the graph")
        if a == b:
            raise UserError(f"NIR node {a!r} ({node_type(nodes[a])}) feeds itself: recurrence is not supported")
        succ[a].append(b)
        pred[b].append(a)
    cycle = _find_cycle(succ)
    if cycle:
        raise UserError(f"NIR node {cycle[0]!r} ({node_type(nodes[cycle[0]])}) is on a cycle "
                        f"({' -> '.join(cycle + [cycle[0]])}): recurrence is not supported")
    for n in nodes:
        if len(succ[n]) > 1:
            raise UserError(f"NIR node {n!r} ({node_type(nodes[n])}) has {len(succ[n])} outgoing edges "
                            f"(to {succ[n]}): only a single feed-forward chain is supported")
        if len(pred[n]) > 1:
            raise UserError(f"NIR node {n!r} ({node_type(nodes[n])}) has {len(pred[n])} incoming edges "
                            f"(from {pred[n]}): recurrence and merging branches are not supported")
    order, seen, cur = [], set(), inputs[0]
    while True:
        if cur in seen:
            raise UserError(f"NIR node {cur!r} ({node_type(nodes[cur])}) is reached twice: recurrence is not "
                            "supported")
        seen.add(cur)
        order.append(cur)
        if cur == outputs[0]:
            break
        if not succ[cur]:
            raise UserError(f"NIR node {cur!r} ({node_type(nodes[cur])}) has no outgoing edge: the path from "
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


def per_neuron(node_name: str, node, attr: str, n: int) -> np.ndarray:
    """A per-neuron parameter as float64 [n] (a scalar broadcasts)."""
    raw = getattr(node, attr)
    a = np.asarray(raw, dtype=np.float64)
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
    """One Affine/Linear + neuron pair as stored in the graph (NIR orientation, float64)."""
    synapse: str
    neuron: str
    kind: str            # LIF, IF, LI, I
    weight: np.ndarray   # [n, n_in] as in NIR
    bias: np.ndarray     # [n]
    node: Any            # the neuron node
    syn_meta: dict
    neuron_meta: dict


def raw_layers(graph) -> tuple[int, list[RawLayer]]:
    """Check that the graph is a supported chain; returns ``(n_inputs, layers)`` in chain order."""
    chain = _chain(graph)
    width = None  # element count of the signal flowing along the chain
    in_name, in_node = chain[0]
    shape = np.asarray(in_node.input_type.get("input", in_node.input_type.get(next(iter(in_node.input_type)))))
    if shape is None or shape.size == 0:
        raise UserError(f"NIR node {in_name!r} (Input) has no shape")
    width = int(np.prod(shape))
    if width < 1:
        raise UserError(f"NIR node {in_name!r} (Input) has shape {shape.tolist()}: no inputs; valid: at least one")
    n_inputs = width
    layers: list[RawLayer] = []
    pending = None  # (name, weight, bias, meta) of an Affine/Linear awaiting its neuron node
    for name, node in chain[1:]:
        t = node_type(node)
        if t == "Flatten":
            if pending is not None:
                raise UserError(f"NIR node {name!r} (Flatten) sits between {pending[0]!r} and its neuron "
                                "node; only Affine/Linear -> neuron pairs are supported")
            continue  # a row-major reshape: the element count, all that matters here, is unchanged
        if t in ("Affine", "Linear"):
            if pending is not None:
                raise UserError(f"NIR node {name!r} ({t}) follows {pending[0]!r} ({node_type(graph.nodes[pending[0]])}) "
                                "directly; every Affine/Linear must be followed by a LIF, IF, LI or I node")
            w = np.asarray(node.weight, dtype=np.float64)
            if w.ndim != 2:
                raise UserError(f"NIR node {name!r} ({t}): weight has shape {w.shape}; only 2-D "
                                "(outputs x inputs) weights are supported")
            if 0 in w.shape:
                raise UserError(f"NIR node {name!r} ({t}): weight has shape {w.shape} (outputs x inputs); a layer "
                                "needs at least one input and one neuron")
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
        if t in NEURON_TYPES:
            if pending is None:
                raise UserError(f"NIR node {name!r} ({t}) is not preceded by an Affine or Linear node; "
                                "every neuron node must follow one")
            if layers and layers[-1].kind in ("LI", "I"):
                raise UserError(f"NIR node {layers[-1].neuron!r} ({layers[-1].kind}) is a non-spiking "
                                "readout but is followed by more layers; LI and I are supported only as "
                                "the last neuron node")
            sname, w, b, smeta = pending
            layers.append(RawLayer(sname, name, t, w, b, node, smeta, dict(node.metadata or {})))
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


def graph_input_count(graph) -> int:
    """Number of input values of a supported graph (checks the whole chain)."""
    return raw_layers(graph)[0]
