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
    hardware: dict          # the lanes and max_events the memory bits are for
    memory_bits: dict       # per memory kind summed over the layers, input_buffer, total
    has_float_ann: bool
    recorded: dict          # provenance recorded in the file's meta

    def to_dict(self) -> dict:
        return asdict(self)


def _layer_info(layer, index: int, geo) -> dict:
    mem = geo.memory_bits()
    return {
        "index": index, "name": layer.name, "n_in": layer.n_in, "n": layer.n, "readout": layer.readout,
        "weight_bits": layer.weight_bits, "membrane_bits": layer.membrane_bits,
        "threshold": layer.threshold, "leak": layer.leak.to_dict(), "reset": layer.reset,
        "refractory": layer.refractory,
        "synapses": layer.n_in * layer.n,
        "nonzero_weights": int((layer.weights != 0).sum()),
        "weight_range": [int(layer.weights.min()), int(layer.weights.max())],
        "bias_range": [int(layer.bias.min()), int(layer.bias.max())],
        "lanes": geo.lanes, "groups": geo.groups,
        "memory_bits": {**mem, "total": sum(mem.values())},
    }


def network_info(net: Network, path: str | os.PathLike | None = None, lanes=DEFAULT_LANES,
                 max_events: int = DEFAULT_MAX_EVENTS) -> NetworkInfo:
    """Describe ``net``; memory bits for an accelerator with ``lanes`` (one, or one per layer) and
    an input buffer of ``max_events`` words. Raises ValueError/TypeError on impossible values."""
    # No memory budget: info describes any network, also one too big for every board.
    hw = HardwareConfig(lanes=lanes, max_events=max_events, memory_budget=sys.maxsize)
    geos = hw.geometry(net)
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
        has_float_ann="ann" in meta, recorded={k: meta[k] for k in _RECORDED if k in meta})
