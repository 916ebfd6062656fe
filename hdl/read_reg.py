"""The register behind a block RAM read (``HardwareConfig.registered_reads``).

An ECP5 DP16KD takes 5.8 ns from clock to data at speed grade 6 (docs/timing.md), so any logic
behind a read leaves little of a 10 ns cycle. With the option, each read's data goes into a
flip-flop first and the logic starts from there, a cycle later. Without it, nothing is added: the
netlist is the one built before the option existed.
"""
from __future__ import annotations

from amaranth.hdl import Signal

__all__ = ["late"]


def late(m, value, stages: int, name: str):
    """``value`` registered ``stages`` times (0: ``value`` itself, no signal added), as ``name``."""
    for k in range(stages):
        reg = Signal(value.shape(), name=name if stages == 1 else f"{name}_{k}")
        m.d.sync += reg.eq(value)
        value = reg
    return value
