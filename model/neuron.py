"""Twin of :class:`spikegate.hdl.neuron.LIFNeuronUnit`: one sweep lane's update.

The hardware keeps the exact synaptic sum of a step in a wide accumulator and applies the
contract's steps 1-5 (:func:`spikegate.model.lif.neuron_update`) once per neuron in the sweep,
so the order in which input events arrive cannot change the result. This twin computes what the
gateware computes from the same register values, lane-vectorised, with the contract's own code.
The gateware unit is a pipeline of :data:`~spikegate.model.layer.NEURON_STAGES` register stages;
its latency is part of :data:`~spikegate.model.layer.LAYER_OVERHEAD`, not of this function.
"""
from __future__ import annotations

import numpy as np

from .lif import neuron_update
from .network import Layer, Leak

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
        return neuron_update(v, r, bias + acc, theta, self)
