"""What the cocotb testbenches (:mod:`.tb_core`, :mod:`.tb_learn`) share; runs inside the simulator,
so it stays free of heavy imports."""
from __future__ import annotations

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

CLOCK_NS = 10


async def start_and_reset(p, inputs):
    """Start the clock, drive ``inputs`` (those the design has) low, hold ``rst`` for 3 cycles and
    release it on a falling edge; returns the falling-edge trigger the testbench drives on."""
    Clock(p["clk"], CLOCK_NS, "ns", impl="gpi").start()
    for name in inputs:
        if name in p:
            p[name].value = 0
    p["rst"].value = 1
    await ClockCycles(p["clk"], 3)
    fall = FallingEdge(p["clk"])
    await fall
    p["rst"].value = 0
    return fall
