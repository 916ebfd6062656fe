"""Synaptic current datapath (one lane) of a CUBA layer, the gateware of :mod:`spikegate.model.current`.

``c' = sat_V(leak_C(c) + bias + acc)`` in CURRENT_STAGES register stages, one new neuron per
cycle, the first three stages of :class:`~spikegate.hdl.neuron.LIFNeuronUnit` with the current's
own leak and the same logic (:func:`~spikegate.hdl.neuron.leaked`,
:func:`~spikegate.hdl.neuron.saturated`):

1. leak ``leak_C(c)`` and the drive ``bias + acc``, side by side;
2. the sum;
3. saturation to the membrane range.

``c_next`` is the new current, written back to the layer's current memory and given to the neuron
unit as its whole drive (acc = c', bias = 0).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.current import CURRENT_STAGES
from ..model.network import Leak
from .neuron import leaked, saturated

__all__ = ["CurrentUnit", "CURRENT_STAGES"]


class CurrentUnit(wiring.Component):
    """``(c, acc, bias) -> c_next`` for one neuron, CURRENT_STAGES cycles later."""

    latency = CURRENT_STAGES

    def __init__(self, *, membrane_bits: int, acc_bits: int, leak: Leak):
        self.membrane_bits, self.acc_bits, self.leak = membrane_bits, acc_bits, leak
        V = membrane_bits
        super().__init__({
            "c": In(signed(V)),
            "acc": In(signed(acc_bits)),
            "bias": In(signed(V)),
            "c_next": Out(signed(V)),
        })

    def elaborate(self, platform):
        m = Module()
        assert CURRENT_STAGES == 3, "leak and drive, sum, saturation"

        def stage(name, value):
            reg = Signal(value.shape(), name=name)
            m.d.sync += reg.eq(value)
            return reg

        leak1 = stage("c1_leaked", leaked(self.c, self.leak))
        drive1 = stage("c1_drive", self.bias + self.acc)
        total2 = stage("c2_total", leak1 + drive1)
        m.d.sync += self.c_next.eq(saturated(total2, self.membrane_bits))
        return m
