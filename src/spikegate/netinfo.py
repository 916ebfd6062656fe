"""What a network file holds: shape, per-layer parameters, digest, provenance, and the memory bits
of the accelerator the generator makes for it.

The memory figures are the generator's own: the per-layer geometry comes from
:meth:`spikegate.model.hardware.HardwareConfig.geometry`, each layer's memories from
:meth:`spikegate.model.layer.LayerGeometry.memory_bits` and the total from
:meth:`~spikegate.model.hardware.HardwareConfig.memory_bits`, the functions ``spikegate export`` and
``spikegate build`` report with, so ``spikegate info --lanes P --max-events N`` prints the same
total as ``spikegate export --lanes P --max-events N``.
"""
from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass

from .model.conv import fan_out
from .model.hardware import HardwareConfig
from .model.network import Network

__all__ = ["network_summary", "NetworkInfo", "network_info", "DEFAULT_LANES", "DEFAULT_MAX_EVENTS"]

# The generator's defaults (``hdl.export.export_verilog``), which ``spikegate export`` and
# ``spikegate info`` use too.
DEFAULT_LANES = 4
DEFAULT_MAX_EVENTS = 4096
_RECORDED = ("dataset", "generated_by", "split", "train_samples", "test_samples", "seed",
             "ann_test_accuracy", "snn_test_accuracy")


def network_summary(net: Network, path: str | os.PathLike | None) -> dict:
    """The few facts every report starts with; ``path`` None is the built-in network."""
    return {"file": "built-in" if path is None else str(path), "name": net.name, "shape": list(net.shape),
            "timesteps": net.timesteps, "encoding": net.encoding, "readout": net.readout,
            "digest": net.digest()}


@dataclass
class NetworkInfo:
    file: str
    name: str
    shape: list
    timesteps: int
    encoding: str
    readout: bool
    digest: str
    layers: list            # per layer: parameters, weight statistics, memory_bits of its memories
    synapses: int
    hardware: dict          # the lanes and max_events the memory bits are for, or {"unsupported": why}
    memory_bits: dict | None  # per memory kind summed over the layers, input_buffer, total
    has_float_ann: bool
    recorded: dict          # provenance recorded in the file's meta

    def to_dict(self) -> dict:
        return asdict(self)


def _features(layer) -> list[str]:
    """The wave-2 features a layer uses, as the file names them."""
    out = []
    if layer.conv is not None:
        out.append(layer.conv.kind)
    if layer.temporal is not None:
        out.extend(layer.temporal.features())
    if layer.plasticity is not None:
        out.append("plasticity")
    return out


def _layer_info(layer, index: int, geo) -> dict:
    mem = geo.memory_bits() if geo is not None else None
    tp = layer.temporal
    rec = tp.recurrent if tp is not None and tp.recurrent is not None else None
    feed = int(fan_out(layer).sum())
    return {
        "index": index, "name": layer.name, "n_in": layer.n_in, "n": layer.n, "readout": layer.readout,
        "weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
        "threshold": layer.threshold, "leak": layer.leak.to_dict(), "reset": layer.reset,
        "refractory": layer.refractory,
        "features": _features(layer),
        # Feed-forward plus recurrent (neuron k to neuron j: n * n) synapses.
        "synapses": feed + (int(rec.size) if rec is not None else 0),
        "recurrent_synapses": int(rec.size) if rec is not None else 0,
        "nonzero_recurrent_weights": int((rec != 0).sum()) if rec is not None else 0,
        "max_delay": tp.max_delay if tp is not None else 0,
        "weights": int(layer.weights.size),
        "nonzero_weights": int((layer.weights != 0).sum()),
        "weight_range": [int(layer.weights.min()), int(layer.weights.max())],
        "bias_range": [int(layer.bias.min()), int(layer.bias.max())],
        "lanes": geo.lanes if geo is not None else None, "groups": geo.groups if geo is not None else None,
        "memory_bits": {**mem, "total": sum(mem.values())} if mem is not None else None,
    }


def network_info(net: Network, path: str | os.PathLike | None = None, lanes=DEFAULT_LANES,
                 max_events: int = DEFAULT_MAX_EVENTS) -> NetworkInfo:
    """Describe ``net``; memory bits for an accelerator with ``lanes`` (one, or one per layer) and
    an input buffer of ``max_events`` words. Raises ValueError/TypeError on impossible values."""
    # No memory budget: info describes any network, also one too big for every board.
    hw = HardwareConfig(lanes=lanes, max_events=max_events, memory_budget=sys.maxsize)
    try:
        geos = hw.geometry(net)
    except ValueError as e:
        if not any(_features(layer) for layer in net.layers):
            raise
        # Features without gateware yet: the network is described, the accelerator is not.
        layers = [_layer_info(layer, i, None) for i, layer in enumerate(net.layers)]
        return NetworkInfo(
            **network_summary(net, path), layers=layers, synapses=sum(l["synapses"] for l in layers),
            hardware={"unsupported": str(e)}, memory_bits=None, has_float_ann="ann" in (net.meta or {}),
            recorded=_recorded(net))
    layers = [_layer_info(layer, i, g) for i, (layer, g) in enumerate(zip(net.layers, geos))]
    kinds: dict[str, int] = {}
    for l in layers:
        for k, v in l["memory_bits"].items():
            if k != "total":
                kinds[k] = kinds.get(k, 0) + v
    input_buffer = hw.input_buffer_bits(geos)
    total = hw.memory_bits(geos)
    meta = net.meta if isinstance(net.meta, dict) else {}
    return NetworkInfo(
        **network_summary(net, path), layers=layers, synapses=sum(l["synapses"] for l in layers),
        hardware={"lanes": [g.lanes for g in geos], "max_events": max_events},
        memory_bits={**kinds, "input_buffer": input_buffer, "total": total},
        has_float_ann="ann" in meta, recorded=_recorded(net))


def _recorded(net: Network) -> dict:
    meta = net.meta if isinstance(net.meta, dict) else {}
    return {k: meta[k] for k in _RECORDED if k in meta}
