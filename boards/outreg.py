"""The ECP5 block RAM's own output register for a flip-flop that only registers its read.

With registered reads (``HardwareConfig.registered_reads``) every block RAM read goes into a
flip-flop before any logic. Yosys' ECP5 memory mapping leaves the DP16KD's output register unused
(``REGMODE = NOREG``: 5.83 ns from clock to data at speed grade 6), so that flip-flop is a fabric
one, and nextpnr does not always place it beside its block: the ULX3S's 4-lane 784-128-10 build's
critical path was a weight block's data routed 5.6-6.0 ns across the device into its flip-flop,
even placed for 100 MHz (docs/timing.md). This pass, run on Yosys' JSON netlist before nextpnr,
takes such a flip-flop into its block (``REGMODE = OUTREG``) where that is the same circuit:

- the block's port only reads (write enable tied 0), its clock enable and output clock enable
  are tied 1 and its reset tied 0, and its clock is not inverted;
- neither port is 36 bits wide: in that mode (Yosys' ``$__PDPW16KD_``) one read port's word comes
  out on both ports' outputs, and which output register then holds which half is not something
  this pass can check, so such a block is left alone;
- each of the port's data outputs that drives anything drives exactly one cell input, the data
  input of a TRELLIS_FF clocked by the port's clock (not inverted), always enabled, with its
  set/reset tied 0, power-up value 0 and the block's GSR setting.

Then both circuits take, at every clock edge, the word the block read at the edge before: the
fabric flip-flop from the block's output latch, the output register from the same latch inside
the block. The flip-flop is deleted and its output net is driven by the block. A port where any
used output fails a condition is left as it is, whole. No cycle count changes.
"""
from __future__ import annotations

import json
from pathlib import Path

__all__ = ["merge_output_registers", "merge_in_netlist"]

_ONE, _ZERO = ["1"], ["0"]


def _sinks(cells: dict) -> dict:
    """Net bit -> the (cell, port) inputs it drives."""
    sinks = {}
    for name, cell in cells.items():
        for port, bits in cell["connections"].items():
            if cell["port_directions"].get(port) == "input":
                for b in bits:
                    if isinstance(b, int):
                        sinks.setdefault(b, []).append((name, port))
    return sinks


def _width(value) -> int | None:
    """A DP16KD width parameter as Yosys writes it (a binary string, or an int); None if absent."""
    if value is None:
        return None
    return int(value, 2) if isinstance(value, str) else int(value)


def _port_flops(cells: dict, sinks: dict, outside: set, bram: dict, x: str) -> dict | None:
    """{output port: the flip-flop it alone feeds} for port ``x`` ("A" or "B") of ``bram``, or None
    when the port cannot take them into its output register (module docstring)."""
    p, c = bram["parameters"], bram["connections"]
    if any(_width(p.get(f"DATA_WIDTH_{y}")) == 36 for y in "AB"):
        return None
    if (p.get(f"REGMODE_{x}") != "NOREG" or p.get(f"CLK{x}MUX") != f"CLK{x}" or c.get(f"WE{x}") != _ZERO
            or c.get(f"CE{x}") != _ONE or c.get(f"OCE{x}") != _ONE or c.get(f"RST{x}") != _ZERO):
        return None
    clock = c.get(f"CLK{x}")
    flops = {}
    for port, bits in c.items():
        if not port.startswith(f"DO{x}") or not isinstance(bits[0], int):
            continue
        to = sinks.get(bits[0], [])
        if not to and bits[0] not in outside:
            continue  # unused output
        if len(to) != 1 or to[0][1] != "DI" or bits[0] in outside:
            return None
        ff = cells[to[0][0]]
        fp, fc = ff["parameters"], ff["connections"]
        if not (ff["type"] == "TRELLIS_FF" and fc.get("CLK") == clock and fp.get("CLKMUX") == "CLK"
                and str(fp.get("CEMUX", "")).strip() == "1" and fc.get("LSR", _ZERO) == _ZERO
                and fp.get("LSRMUX", "LSR") == "LSR"
                and fp.get("REGSET", "RESET") == "RESET" and fp.get("GSR") == p.get("GSR")):
            return None
        flops[port] = to[0][0]
    return flops or None


def merge_output_registers(netlist: dict) -> int:
    """Take every qualifying fabric flip-flop behind a DP16KD read into the block (module
    docstring), in the top module of a Yosys JSON ``netlist`` (changed in place); returns how many
    block ports now use their output register."""
    merged = 0
    for module in netlist.get("modules", {}).values():
        if not str(module.get("attributes", {}).get("top", "0")).strip("0"):
            continue
        cells = module["cells"]
        sinks = _sinks(cells)
        # a net that leaves the module is used outside it
        outside = {b for port in module.get("ports", {}).values() for b in port["bits"] if isinstance(b, int)}
        for bram in [c for c in cells.values() if c["type"] == "DP16KD"]:
            for x in "AB":
                flops = _port_flops(cells, sinks, outside, bram, x)
                if flops is None:
                    continue
                bram["parameters"][f"REGMODE_{x}"] = "OUTREG"
                for port, ff in flops.items():
                    bram["connections"][port] = cells.pop(ff)["connections"]["Q"]
                merged += 1
    return merged


def merge_in_netlist(path: Path) -> int:
    """:func:`merge_output_registers` on the JSON netlist file ``path``, rewritten in place (through
    a temporary file, so a failure leaves the original)."""
    netlist = json.loads(Path(path).read_text())
    merged = merge_output_registers(netlist)
    tmp = Path(path).with_suffix(".outreg.tmp")
    tmp.write_text(json.dumps(netlist))
    tmp.replace(path)
    return merged
