"""``lanes="auto"``: every layer's lane count chosen before any tool runs (README, "Choosing lanes").

From the board's lanes on every layer, the layer whose doubling saves the most cycles per sample
is doubled, step by step, while that doubling saves at least :data:`MIN_GAIN` of the cycles and
the design still fits: its memories in the block RAM (:func:`.fit.estimate`, with the streaming
link the default lanes would have), its logic within :data:`LOGIC_SHARE` of the device's LUTs
(:func:`logic_estimate`), no layer above :data:`MAX_AUTO_LANES`. Cycles come from the core's
exact twin on the first :data:`AUTO_SAMPLES` samples of the build's own workload
(:func:`.workload.workload`). Lanes never go below the board's: on the iCE40, whose designs at
2 lanes already take most of its logic cells, the estimate lets nothing grow.

The rule stops where doubling stops paying, not at the fewest cycles: each lane costs logic and,
on the ECP5, some clock (docs/timing.md: 784-128-10 at 97 MHz with 4 lanes, 86 MHz with 32), and
784-128-10's readout of 10 neurons saves 0.6 % of the cycles with 8 lanes instead of 4.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from ..model.hardware import HardwareConfig
from ..model.layer import GROUP_MEMORIES
from . import fit

__all__ = ["AUTO", "MIN_GAIN", "MAX_AUTO_LANES", "AUTO_SAMPLES", "LUT_BASE", "LUT_PER_LANE", "LUT_PER_MUX_BIT",
           "LOGIC_SHARE", "mux_bits", "logic_estimate", "choose_lanes"]

# The lanes value (and --lanes text) that asks for this choice.
AUTO = "auto"
# A doubling must save this share of the cycles per sample to be taken.
MIN_GAIN = 0.05
# The widest layer built and measured (docs/timing.md, "The lowest-lane search as a tree": before
# it, Yosys 0.70's ABC9 stopped on 64 lanes with an internal assertion).
MAX_AUTO_LANES = 64
# Enough samples for the mean to settle (the choice is a ranking; the report's figures come from
# the whole workload), few enough that a choice takes seconds.
AUTO_SAMPLES = 200
# LUT4s of a whole board design: a fixed part (host link, encoder, controllers) and a neuron
# datapath, accumulator and spike-word share per lane. Set above every build measured (README,
# "Choosing lanes" and the bench table; ECP5: digits at (4, 4) 5,035, (32, 4) 10,731, (32, 8) 11,407,
# (64, 16) 19,195, (32, 8) with flip-flop accumulators 12,088; 784-128-10 at (4, 4) 5,362, (32, 4)
# 10,589, (64, 4) 18,982, with flip-flop accumulators 20,145), so it errs on the large side; the same
# LUT4 count stands for the Gowin and iCE40 parts, whose measured builds it also exceeds.
LUT_BASE = 4000
LUT_PER_LANE = 240
# A read multiplexer behind each bit of a 2-group layer's flip-flop memories other than its
# accumulators (LayerGeometry.groups_in_logic; the accumulators' are in LUT_PER_LANE): 784-128-10
# at (64, 4) took 2,140 LUT4s more for 2,048 such bits (22,259 against 20,119), a LUT4 a bit.
LUT_PER_MUX_BIT = 1
# The share of a device's LUTs auto lanes may plan to fill: routing and placement need the rest.
LOGIC_SHARE = 0.8


def mux_bits(geometry) -> int:
    """Bits a word of the flip-flop memories of the layers of ``geometry`` with 2 or more groups,
    accumulators aside (:data:`LUT_PER_MUX_BIT`)."""
    return sum(bits // g.groups for g in geometry if g.groups_in_logic and g.groups > 1
               for name, bits in g.memory_bits().items() if name in GROUP_MEMORIES and name != "accumulators")


def logic_estimate(lanes: list[int], geometry=()) -> int:
    """LUT4s of a design with these lanes per layer (see :data:`LUT_BASE`) and this per-layer
    ``geometry`` (its flip-flop memories' multiplexers; none counted without it)."""
    return LUT_BASE + LUT_PER_LANE * sum(lanes) + int(LUT_PER_MUX_BIT * mux_bits(geometry))


def choose_lanes(board, net, configure: Callable[[list[int]], HardwareConfig], spikes: np.ndarray, *,
                 stream: bool, max_payload: int, progress: Callable[[str], None] | None = None) -> dict:
    """The auto lanes of ``net`` on ``board`` (module docstring) and how they were found.

    ``configure(lanes)`` is the build's own hardware configuration for those lanes (weight
    placement, registered reads: the decisions the build would make); ``spikes`` the workload,
    of which the first :data:`AUTO_SAMPLES` samples are measured; ``stream`` whether the design
    streams at the board's lanes, which the chosen lanes keep. Returns ``{"lanes": [...],
    "cycles_per_sample": mean, "steps": [{"lanes", "cycles_per_sample"}, ...], ...}``.
    """
    say = progress if progress is not None else (lambda text: None)
    from ..model.core import NetworkCore
    sample = spikes[:AUTO_SAMPLES]
    budget = int(LOGIC_SHARE * fit.available(board)["LUT"])

    def cycles(hw: HardwareConfig) -> float:
        # SPRAM weights are loaded before samples run: cycles as with block RAM, as the report has them
        twin = NetworkCore(net, replace(hw, weight_ram="block"))
        return float(np.mean([twin.cycles(s) for s in sample]))

    def candidate(lanes: list[int]) -> HardwareConfig | None:
        if max(lanes) > MAX_AUTO_LANES or logic_estimate(lanes) > budget:
            return None
        try:
            hw = configure(lanes)
            if logic_estimate(lanes, hw.geometry(net)) > budget:
                return None
            est = fit.estimate(board, net, hw, stream=stream, max_payload=max_payload)
        except ValueError:  # a geometry the core refuses: not a candidate
            return None
        return hw if fit.fits(board, est) else None

    lanes = [board.default_lanes] * len(net.layers)
    now = cycles(configure(lanes))
    steps = [{"lanes": list(lanes), "cycles_per_sample": round(now, 1)}]
    while True:
        best = None
        for l in range(len(lanes)):
            cand = lanes[:l] + [lanes[l] * 2] + lanes[l + 1:]
            hw = candidate(cand)
            if hw is not None:
                c = cycles(hw)
                if best is None or c < best[1]:
                    best = (cand, c)
        if best is None or best[1] > now * (1 - MIN_GAIN):
            break
        lanes, now = best
        steps.append({"lanes": list(lanes), "cycles_per_sample": round(now, 1)})
        say(f"lanes auto: {lanes}, {now:.1f} cycles a sample")
    return {"lanes": lanes, "cycles_per_sample": round(now, 1), "steps": steps, "samples": int(len(sample)),
            "rule": f"double the layer that saves most while it saves >= {MIN_GAIN:.0%} of the cycles, "
                    f"fits the block RAM and <= {LOGIC_SHARE:.0%} of the LUTs (estimated "
                    f"{LUT_BASE} + {LUT_PER_LANE} per lane + {LUT_PER_MUX_BIT} per flip-flop memory bit of a "
                    f"2-group layer), <= {MAX_AUTO_LANES} lanes a layer",
            "logic_estimate_luts": logic_estimate(lanes, configure(lanes).geometry(net)), "logic_budget_luts": budget}
