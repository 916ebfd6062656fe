"""The graph as a flat node/edge list and the synapse paths that feed each neuron node.

NIR nests subgraphs (some exporters wrap a recurrent layer in one); they are inlined here with
dotted names, so the rest of the importer sees one flat graph. A *synapse path* is the run of
nodes between two neuron nodes (or the Input and a neuron node): ``[Flatten] [Delay] Affine|Linear
[Delay]``, each node with one predecessor and one successor. Its source is the neuron (or Input)
it starts from; a path whose source is its own target neuron is a recurrent edge.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .read import nir_package

__all__ = ["node_type", "flat_graph", "SynapsePath", "trace_path", "PASS_TYPES"]

PASS_TYPES = ("Flatten", "Delay")


def node_type(node) -> str:
    return type(node).__name__


def flat_graph(graph) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``(nodes, edges)`` with every nested NIRGraph inlined: edges into a subgraph go to the
    nodes its Input feeds, edges out of it leave from the nodes that feed its Output."""
    nir = nir_package()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []

    def inline(g, prefix: str, top: bool):
        ends: dict[str, tuple[list[str], list[str]] | None] = {}
        for name, node in g.nodes.items():
            full = prefix + name
            if isinstance(node, nir.NIRGraph):
                ends[name] = inline(node, full + ".", False)
            elif not top and node_type(node) in ("Input", "Output"):
                ends[name] = None  # the subgraph's own boundary: resolved through its edges
            else:
                nodes[full] = node
                ends[name] = ([full], [full])
        entries, exits = [], []
        for a, b in (tuple(e) for e in g.edges):
            for x in (a, b):
                if x not in ends:
                    raise UserError(f"NIR edge ({prefix + a!r}, {prefix + b!r}) names a node that is not in the graph")
            if ends[a] is None and ends[b] is None:
                raise UserError(f"NIR subgraph {prefix[:-1]!r} connects its input straight to its output; "
                                "an empty subgraph is not supported")
            if ends[a] is None:
                entries += ends[b][0]
            elif ends[b] is None:
                exits += ends[a][1]
            else:
                edges.extend((x, y) for x in ends[a][1] for y in ends[b][0])
        return entries, exits

    inline(graph, "", True)
    return nodes, edges


@dataclass
class SynapsePath:
    """One path into a neuron node, in forward order; ``source`` is a neuron node or the Input."""
    source: str
    target: str
    nodes: list[str]          # the path's own nodes, source and target excluded
    synapse: str              # its Affine/Linear (or other synapse) node
    delay_before: str | None  # a Delay node before the synapse (per input), or None
    delay_after: str | None   # a Delay node after it (per output), or None


def trace_path(target: str, first: str, nodes: dict, pred: dict, succ: dict, stops: set[str],
               synapse_types) -> SynapsePath:
    """The path that reaches ``target`` through its predecessor ``first``, walked back to a node in
    ``stops`` (the neuron nodes and the Input)."""
    back, cur = [], first
    while cur not in stops:
        t = node_type(nodes[cur])
        if t not in PASS_TYPES and t not in synapse_types:
            raise UserError(f"NIR node {cur!r} ({t}) sits between neuron nodes; supported there: "
                            f"{', '.join(list(synapse_types) + list(PASS_TYPES))}")
        if len(succ[cur]) != 1:
            raise UserError(f"NIR node {cur!r} ({t}) has {len(succ[cur])} outgoing edges (to {succ[cur]}); a "
                            "synapse path must not branch (give each branch its own Affine/Linear)")
        if len(pred[cur]) != 1:
            raise UserError(f"NIR node {cur!r} ({t}) has {len(pred[cur])} incoming edges "
                            f"({'from ' + str(pred[cur]) if pred[cur] else 'none'}); paths may only merge in "
                            "a neuron node")
        back.append(cur)
        cur = pred[cur][0]
    path = back[::-1]
    syn = [n for n in path if node_type(nodes[n]) in synapse_types]
    if not syn:
        raise UserError(f"NIR node {target!r} ({node_type(nodes[target])}) is not preceded by an Affine or Linear "
                        f"node (on its path from {cur!r}); every neuron node must follow one")
    if len(syn) > 1:
        raise UserError(f"NIR node {syn[1]!r} ({node_type(nodes[syn[1]])}) follows {syn[0]!r} "
                        f"({node_type(nodes[syn[0]])}) directly on the path into {target!r}; every path into a "
                        "neuron node needs exactly one Affine/Linear")
    k = path.index(syn[0])
    delays = {"before": [n for n in path[:k] if node_type(nodes[n]) == "Delay"],
              "after": [n for n in path[k + 1:] if node_type(nodes[n]) == "Delay"]}
    for side, ds in delays.items():
        if len(ds) > 1:
            raise UserError(f"NIR node {ds[1]!r} (Delay) follows another Delay {ds[0]!r} on the path into "
                            f"{target!r}; use one Delay node per side of the Affine/Linear")
    for n in path[k + 1:]:
        if node_type(nodes[n]) == "Flatten":
            raise UserError(f"NIR node {n!r} (Flatten) sits between {syn[0]!r} and its neuron node {target!r}; "
                            "Flatten is supported only before the Affine/Linear")
    return SynapsePath(source=cur, target=target, nodes=path, synapse=syn[0],
                       delay_before=(delays["before"] or [None])[0], delay_after=(delays["after"] or [None])[0])
