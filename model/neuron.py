"""Twin of :class:`spikegate.hdl.neuron.LIFNeuronUnit`: one sweep lane's update.

The hardware keeps the exact synaptic sum of a step in a wide accumulator and applies the
contract's steps 1-5 (:mod:`spikegate.model.lif`) once per neuron in the sweep, so the order
in which input events arrive cannot change the result. This twin computes exactly what the
gateware computes from the same register values, lane-vectorised with numpy.
"""
from __future__ import annotations

import numpy as np

from .network import Layer, Leak, signed_range

__all__ = ["LIFNeuronUnit"]


class LIFNeuronUnit:
    """Update of one neuron (or a vector of lanes) from ``(v, r, acc, bias, theta)``.

    ``acc`` is the exact synaptic sum of the step; ``theta`` is the layer's threshold register
    (run-time writable, hence an input rather than a constant).
    """

    def __init__(self, *, membrane_bits: int, leak: Leak, reset: str, refractory: int, readout: bool):
        self.membrane_bits = membrane_bits
        self.leak = leak
        self.reset = reset
        self.refractory = refractory
        self.readout = readout

    @classmethod
    def from_layer(cls, layer: Layer) -> "LIFNeuronUnit":
        return cls(membrane_bits=layer.membrane_bits, leak=layer.leak, reset=layer.reset,
                   refractory=layer.refractory, readout=layer.readout)

    def __call__(self, v, r, acc, bias, theta):
        v = np.asarray(v, dtype=np.int64)
        r = np.asarray(r, dtype=np.int64)
        acc = np.asarray(acc, dtype=np.int64)
        bias = np.asarray(bias, dtype=np.int64)
        lk = self.leak
        if lk.kind == "shift":
            lv = v - (v >> lk.k)
        elif lk.kind == "multiply":
            lv = (v * lk.m) >> lk.frac_bits
        else:
            lv = v
        lo, hi = signed_range(self.membrane_bits)
        sat = np.clip(lv + bias + acc, lo, hi)
        if self.readout:
            return sat, r, np.zeros(sat.shape, dtype=bool)
        refractory = r > 0
        fire = (sat > theta) & ~refractory
        after = np.zeros_like(sat) if self.reset == "zero" else sat - theta
        v_next = np.where(refractory, v, np.where(fire, after, sat))
        r_next = np.where(refractory, r - 1, np.where(fire, self.refractory, 0))
        return v_next, r_next, fire
