"""Export: a spikegate network as a NIR graph.

Every layer becomes ``Affine`` (``Linear`` when the bias is zero) with the integer weights and bias
as floats, followed by ``LIF`` (``tau = 1 / (1 - beta)``, ``r = tau``), ``IF`` (``r = 1``), ``LI`` or
``I``, all with ``dt = 1`` so that forward Euler gives gain 1 and decay beta. What NIR cannot carry
goes into ``metadata["spikegate"]`` as JSON (see the package docstring).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..model.conv import refuse_conv
from ..model.fileio import atomic_path
from ..model.network import Leak, Network
from .read import META_FORMAT, META_KEY, META_VERSION, nir_package

__all__ = ["ExportResult", "network_to_graph", "export_nir"]


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
    nir = nir_package()
    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network, got {type(net).__name__}")
    refuse_conv(net.layers, "NIR export")
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
    # Imported here: the importer itself rebuilds graphs with network_to_graph to check them.
    from .importer import import_nir
    nir = nir_package()
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
