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


# A decay of exactly 1 per step written as a time constant: 1 - 1/NO_DECAY_TAU and
# NO_DECAY_TAU / NO_DECAY_TAU are exactly 1 in float64 (and float32), which CubaLIF needs where a
# spikegate current or membrane does not decay (its r and w_in equal the taus, for gain 1).
NO_DECAY_TAU = 2.0 ** 100


def _neuron_node(nir, i: int, layer):
    """The neuron node of layer ``i`` (without metadata), its name and its spikegate metadata."""
    n, tp = layer.n, layer.temporal
    full = lambda x: np.full(n, float(x))  # noqa: E731
    meta = {"layer": i, "name": layer.name, "weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
            "leak": layer.leak.to_dict(), "reset": layer.reset, "refractory": layer.refractory}
    if tp is not None:
        meta["temporal"] = {k: v for k, v in tp.to_dict().items() if k != "recurrent"}
        meta["temporal"]["recurrent"] = tp.recurrent is not None
    tau = _leak_tau(layer.leak)
    if tp is not None and tp.current is not None:
        tau_m = NO_DECAY_TAU if tau is None else tau
        tau_s = _leak_tau(tp.current)
        tau_s = NO_DECAY_TAU if tau_s is None else tau_s
        common = dict(tau_syn=full(tau_s), tau_mem=full(tau_m), r=full(tau_m), v_leak=full(0.0), w_in=full(tau_s))
        if layer.readout:
            return f"cubali{i}", nir.CubaLI(**common), meta
        return f"cubalif{i}", nir.CubaLIF(v_threshold=full(layer.threshold), v_reset=full(0.0), **common), meta
    if layer.readout:
        if tau is None:
            return f"i{i}", nir.I(r=full(1.0)), meta
        return f"li{i}", nir.LI(tau=full(tau), r=full(tau), v_leak=full(0.0)), meta
    if tau is None:
        return f"if{i}", nir.IF(r=full(1.0), v_threshold=full(layer.threshold), v_reset=full(0.0)), meta
    return f"lif{i}", nir.LIF(tau=full(tau), r=full(tau), v_leak=full(0.0), v_threshold=full(layer.threshold),
                              v_reset=full(0.0)), meta


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
        tp = layer.temporal
        neuron, node, meta = _neuron_node(nir, i, layer)
        md = {META_KEY: json.dumps(meta, sort_keys=True)}
        node.metadata = md
        if not layer.readout and layer.reset == "subtract":
            warnings.append(f"layers[{i}] ({neuron}): reset = 'subtract' has no NIR equivalent; the node "
                            "says v_reset = 0 and the subtract reset is carried in metadata['spikegate'], "
                            "which only spikegate reads")
        if layer.refractory:
            warnings.append(f"layers[{i}] ({neuron}): refractory = {layer.refractory} has no NIR equivalent; "
                            "it is carried in metadata['spikegate'], which only spikegate reads")
        W = layer.weights.T.astype(np.float64)
        b = layer.bias.astype(np.float64)
        # One path per distinct delay, its Delay before the Affine/Linear so that the bias (on the
        # first path) is never delayed; NIR adds the paths up in the neuron node.
        delays = tp.delays.T if tp is not None and tp.delays is not None else np.zeros(W.shape, np.int64)
        for g, d in enumerate(np.unique(delays)):
            syn = f"fc{i}" if g == 0 else f"fc{i}_d{d}"
            Wd = np.where(delays == d, W, 0.0)
            bd = b if g == 0 else np.zeros(n)
            nodes[syn] = nir.Linear(weight=Wd) if not bd.any() else nir.Affine(weight=Wd, bias=bd)
            if d:
                nodes[f"delay{i}_d{d}"] = nir.Delay(delay=np.full(layer.n_in, float(d)))
                edges += [(prev, f"delay{i}_d{d}"), (f"delay{i}_d{d}", syn)]
            else:
                edges.append((prev, syn))
            edges.append((syn, neuron))
        nodes[neuron] = node
        if tp is not None and tp.recurrent is not None:
            # NIR's convention for a cycle: the spikes fed back are those of the previous step.
            nodes[f"rec{i}"] = nir.Linear(weight=tp.recurrent.T.astype(np.float64))
            edges += [(neuron, f"rec{i}"), (f"rec{i}", neuron)]
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
