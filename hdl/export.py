"""Generator API: a network + a :class:`~spikegate.model.hardware.HardwareConfig` -> the Amaranth
top or Verilog.

The configuration is validated against the network
(:meth:`~spikegate.model.hardware.HardwareConfig.geometry`) before any gateware is built, so an
impossible configuration fails with one clear message and writes nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Shape, Value
from amaranth.lib import data, wiring

from ..model.fileio import write_atomic
from ..model.hardware import HardwareConfig, core_read_stages
from ..model.current import CURRENT_STAGES
from ..model.delay import DELAY_STAGES
from ..model.layer import LAYER_OVERHEAD
from ..model.network import Network
from .core import NetworkCore

__all__ = ["build_core", "export_verilog", "port_table", "hardware_summary"]


def build_core(net: Network, hw: HardwareConfig = HardwareConfig(), *, spram_primitive=False) -> NetworkCore:
    """The Amaranth top for ``net`` (raises ValueError/TypeError on impossible parameters).

    ``hw.weight_ram="spram"`` (or one value per layer) keeps those layers' weights in iCE40 SPRAM;
    ``spram_primitive=True`` instantiates SB_SPRAM256KA for synthesis (False: a behavioural memory
    with the same contents and timing, for Amaranth's simulator).
    """
    return NetworkCore(net, hw, spram_primitive=spram_primitive)


def port_table(core: NetworkCore) -> list[dict]:
    """Verilog ports of the top: name, direction, width (clk and rst come first)."""
    ports = [{"name": "clk", "dir": "input", "width": 1}, {"name": "rst", "dir": "input", "width": 1}]
    for path, member, value in core.signature.flatten(core):
        name = "__".join(str(p) for p in path)
        port = {"name": name, "dir": "input" if member.flow == wiring.In else "output",
                "width": Value.cast(value).shape().width}
        if isinstance(value, data.View) and isinstance(value.shape(), data.StructLayout):
            port["fields"] = {fname: {"offset": f.offset, "width": f.width, "signed": Shape.cast(f.shape).signed}
                              for fname, f in value.shape()}
        ports.append(port)
    return ports


def hardware_summary(core: NetworkCore) -> dict:
    layers = []
    for l, geo in enumerate(core.geometry):
        layers.append({"layer": l, "n_in": geo.n_in, "n": geo.n, "lanes": geo.lanes, "groups": geo.groups,
                       "acc_bits": geo.acc_bits, "memory_bits": geo.memory_bits()})
    total = core.hw.memory_bits(core.geometry)
    spram = [l for l, g in enumerate(core.geometry) if g.weight_ram == "spram"]
    return {"lanes": [g.lanes for g in core.geometry], "max_events": core.max_events,
            "weight_ram": [g.weight_ram for g in core.geometry],
            "spram_tiles": sum(g.spram_tiles for g in core.geometry),
            "weights_loaded_by_host": spram, "input_ram": core.hw.input_ram,
            "trace_depth": core.trace_depth, "layers": layers, "memory_bits_total": total,
            "schedule": core.hw.schedule, "registered_reads": core.hw.registered_reads,
            "cycle_formula": _cycle_formula(core.geometry, core.hw.schedule)}


def _cycle_formula(geometry, schedule: str) -> str:
    conv = (f"; a conv2d layer's term: sum_e max(1, ny(y_e) * nx(x_e) * Gc) + Ho * Wo * Gc + {LAYER_OVERHEAD}"
            if any(g.conv is not None for g in geometry) else "")
    # registered_reads (read_stages): one or two cycles more in every layer step (refused for the
    # other kinds).
    overhead = LAYER_OVERHEAD + core_read_stages(geometry)
    if not any(g.current or g.recurrent or g.delay_slots for g in geometry):
        term, where = f"(E_l(t) * G_l + G_l + {overhead})", ""
    else:
        # Temporal layers (model.layer.LayerGeometry.cycles): recurrent spikes of step t-1, current
        # stages, the delay path's stages and its slot clear at t = 0.
        rec = [l for l, g in enumerate(geometry) if g.recurrent]
        cuba = [l for l, g in enumerate(geometry) if g.current]
        delayed = {l: g.clear_cycles for l, g in enumerate(geometry) if g.delay_slots}
        term = (f"((E_l(t) + R_l(t)) * G_l + G_l + {LAYER_OVERHEAD} + C_l"
                f"{' + D_l(t)' if delayed else ''})")
        where = (f", R_l(t) = layer l's spikes of step t-1 for l in {rec} (else 0), C_l = {CURRENT_STAGES} for l in "
                 f"{cuba} (else 0)"
                 + (f", D_l(t) = {DELAY_STAGES} + (at t = 0) Z_l with Z_l = {delayed} (else 0)" if delayed else ""))
    if schedule == "sequential":
        return f"1 + sum_t [1 + sum_l {term}]" + where + conv
    # model.core.schedule_cycles: wave w runs layer l on step w - l, all at once
    return (f"1 + sum_(w=0..T+L-2) [1 + max_(l: 0 <= w-l < T) c_l(w-l)], c_l(t) = {term}" + where + conv)


def export_verilog(net: Network, path: str | os.PathLike, hw: HardwareConfig = HardwareConfig(), *,
                   name: str = "spikegate_top") -> dict:
    """Write Verilog for ``net`` to ``path`` (atomically); return a summary with the port table."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name = {name!r} is not a valid Verilog module name; valid: letters, digits, "
                         "underscores, not starting with a digit")
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output directory {str(path.parent)!r} does not exist")
    core = build_core(net, hw, spram_primitive=True)
    text = verilog.convert(core, name=name, emit_src=False)
    ports = port_table(core)
    header = [f"// {name}: spikegate NetworkCore for network {net.name!r} shape "
              f"{'-'.join(map(str, net.shape))} (digest {net.digest()[:16]})",
              f"// lanes {[g.lanes for g in core.geometry]}, max_events {hw.max_events}, "
              f"trace_depth {hw.trace_depth}, weight_ram {[g.weight_ram for g in core.geometry]}. "
              "Port contract: docs/architecture.md (NetworkCore).",
              "// Ports (stream payloads are packed structs, first field in the least significant bits):"]
    for p in ports:
        fields = " ".join(f"{k}[{f['offset'] + f['width'] - 1}:{f['offset']}]" for k, f in p.get("fields", {}).items())
        header.append(f"//   {p['dir']:6} [{p['width']:3}] {p['name']}" + (f"  = {{{fields}}}" if fields else ""))
    write_atomic(path, "\n".join(header) + "\n" + text)
    summary = hardware_summary(core)
    summary.update({"output": str(path), "module": name, "ports": ports, "network": net.name,
                    "digest": net.digest()})
    return summary
