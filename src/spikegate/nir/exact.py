"""Exact import: a graph spikegate exported is rebuilt bit for bit from its metadata.

The float parameters must be exactly what export writes for the network the metadata describes;
anything else means the graph was edited after export, and it is refused rather than guessed at.
"""
from __future__ import annotations

import numpy as np

from ..errors import UserError
from ..model.network import Layer, Leak, Network
from ..model.temporal import Temporal
from .chain import READOUT, SPIKING, RawLayer, raw_layers
from .paths import flat_graph, node_type
from .export import network_to_graph
from .read import META_FORMAT, META_KEY, META_VERSION, meta_json

__all__ = ["exact_import"]


def exact_import(graph, gmeta: dict, n_inputs: int, raws: list[RawLayer]) -> tuple[Network, list[dict]]:
    """Rebuild the network from spikegate metadata, then require that export gives back the graph."""
    if gmeta.get("format") != META_FORMAT or gmeta.get("version") != META_VERSION:
        raise UserError(f"graph metadata[{META_KEY!r}] has format {gmeta.get('format')!r} version "
                        f"{gmeta.get('version')!r}; this spikegate reads {META_FORMAT!r} version {META_VERSION}")
    layers = []
    for i, raw in enumerate(raws):
        where = f"NIR node {raw.neuron!r} ({raw.kind})"
        m = meta_json(where, raw.neuron_meta)
        if m is None:
            raise UserError(f"{where} has no metadata[{META_KEY!r}] although the graph was exported by "
                            "spikegate; the graph was edited after export. Use --ignore-metadata to import "
                            "it as a float graph")
        for what, a in (("weight", raw.weight), ("bias", raw.bias), ("recurrent weight", raw.recurrent)):
            if a is None:
                continue
            if not np.array_equal(a, np.rint(a)):
                raise UserError(f"NIR node {raw.synapse!r}: {what} holds non-integer values, which a "
                                "spikegate export never writes; the graph was edited after export. Use "
                                "--ignore-metadata to import it as a float graph")
        thr = 0
        if raw.kind in SPIKING:
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
                          refractory=m.get("refractory", 0), readout=raw.kind in READOUT,
                          name=m.get("name", ""), temporal=_temporal(where, m, raw))
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
    _, ref_raws = raw_layers(ref)
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
    _same_graph(graph, ref)
    reports = []
    for i, (raw, layer) in enumerate(zip(raws, net.layers)):
        zero = {"max_abs": 0.0, "rms": 0.0, "max_rel": 0.0}
        params = {"weights": dict(zero), "bias": dict(zero),
                  "leak_beta": {"float": layer.leak.factor, "int": layer.leak.factor, "max_abs": 0.0,
                                "leak": layer.leak.to_dict()}}
        tp = layer.temporal
        if tp is not None and tp.recurrent is not None:
            params["recurrent"] = dict(zero)
        if tp is not None and tp.current is not None:
            params["current_alpha"] = {"float": tp.current.factor, "int": tp.current.factor, "max_abs": 0.0,
                                       "leak": tp.current.to_dict()}
        if tp is not None and tp.delays is not None:
            params["delays"] = {"max": tp.max_delay, "distinct": int(np.unique(tp.delays).size)}
        if not layer.readout:
            params["threshold"] = {"float": float(layer.threshold), "int": layer.threshold,
                                   "represented": float(layer.threshold), "max_abs": 0.0}
        reports.append({"layer": i, "synapse": raw.synapse, "neuron": raw.neuron, "kind": raw.kind,
                        "scale": 1.0, "scale_limited_by": "exact", "params": params, "notes": []})
    return net, reports


def _temporal(where: str, m: dict, raw: RawLayer) -> Temporal | None:
    """The layer's temporal parts: delays and the current's leak from the metadata (a delay of a
    zero weight leaves no trace in the graph), the recurrent weights from the graph."""
    t = m.get("temporal")
    if t is None:
        if raw.recurrent is not None or raw.delay is not None or raw.kind in ("CubaLIF", "CubaLI"):
            raise UserError(f"{where} has delays, a recurrent path or a synaptic current but its spikegate metadata "
                            "describes a plain layer; the graph was edited after export. Use --ignore-metadata to "
                            "import it as a float graph")
        return None
    if not isinstance(t, dict) or bool(t.get("recurrent")) != (raw.recurrent is not None):
        raise UserError(f"{where}: its spikegate metadata and its recurrent path disagree; the graph was edited after "
                        "export. Use --ignore-metadata to import it as a float graph")
    d = {k: v for k, v in t.items() if k != "recurrent"}
    base = Temporal.from_dict(d) if d else None
    return Temporal(delays=base.delays if base else None, current=base.current if base else None,
                    recurrent=None if raw.recurrent is None else raw.recurrent.T.astype(np.int64))


_ARRAYS = ("weight", "bias", "delay", "tau", "tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold", "v_reset")


def _same_graph(graph, ref) -> None:
    """Refuse a graph that is not exactly what exporting its metadata's network writes."""
    nodes, edges = flat_graph(graph)
    rnodes, redges = flat_graph(ref)
    edited = "; the graph was edited after export. Use --ignore-metadata to import it as a float graph"
    if set(nodes) != set(rnodes):
        diff = sorted(set(nodes) ^ set(rnodes))
        raise UserError(f"NIR node(s) {diff} differ from what spikegate exports for the network in the metadata{edited}")
    for name, node in nodes.items():
        rn = rnodes[name]
        if node_type(node) != node_type(rn):
            raise UserError(f"NIR node {name!r} is a {node_type(node)} node but spikegate exports a "
                            f"{node_type(rn)} there{edited}")
        for attr in _ARRAYS:
            if hasattr(rn, attr):
                a = np.asarray(getattr(node, attr), dtype=np.float64)
                b = np.asarray(getattr(rn, attr), dtype=np.float64)
                if a.shape != b.shape or not np.array_equal(a, b):
                    raise UserError(f"NIR node {name!r} ({node_type(node)}): {attr} does not match its spikegate "
                                    f"metadata{edited}")
    if sorted(set(edges)) != sorted(set(redges)):
        raise UserError(f"the NIR graph's edges differ from what spikegate exports for the network in its metadata "
                        f"({sorted(set(edges) ^ set(redges))}){edited}")
