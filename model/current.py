"""Twin of :class:`spikegate.hdl.current.CurrentUnit`: the synaptic current of a CUBA layer.

README "Temporal layers", step 3: ``c_j <- sat_V(leak_C(c_j) + b_j + syn_j)``; the neuron's drive
is then ``c_j``. The arithmetic is :mod:`spikegate.model.lif`'s leak and saturation, the same
functions :func:`spikegate.model.temporal.run_temporal_layer` uses, so there is one rule.

In the gateware the current is one more P-lane state word per group (block RAM, next to the
membranes), updated in the sweep by CURRENT_STAGES register stages in front of the neuron
datapath; they add CURRENT_STAGES cycles to a CUBA layer's step (its pipeline drain).
"""
from __future__ import annotations

import numpy as np

from .lif import leak, saturate
from .network import Leak

__all__ = ["CurrentUnit", "CURRENT_STAGES"]

# Register stages of the current update (leak and drive, sum, saturation), like the neuron's first three.
CURRENT_STAGES = 3


class CurrentUnit:
    """``(c, acc, bias) -> c'`` for a vector of lanes, exactly as the gateware computes it."""

    def __init__(self, *, membrane_bits: int, leak: Leak):
        self.membrane_bits = membrane_bits
        self.leak = leak

    @classmethod
    def from_layer(cls, layer) -> "CurrentUnit":
        return cls(membrane_bits=layer.membrane_bits, leak=layer.temporal.current)

    def __call__(self, c, acc, bias):
        c = np.asarray(c, dtype=np.int64)
        drive = np.asarray(bias, dtype=np.int64) + np.asarray(acc, dtype=np.int64)
        return saturate(leak(c, self.leak) + drive, self.membrane_bits)
