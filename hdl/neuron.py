"""LIF neuron update datapath (one lane), the gateware of :mod:`spikegate.model.lif`.

Purely combinational: the layer core registers its inputs (memory read ports) and its outputs
(memory write ports), so one update fits between two memory accesses. Leak form, reset mode,
refractory period and readout are generation-time constants; only the threshold is an input,
because the host can rewrite it at run time.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.layer import bits_for, ceil_log2
from ..model.network import Layer, Leak, signed_range

__all__ = ["LIFNeuronUnit"]


class LIFNeuronUnit(wiring.Component):
    """``(v, r, acc, bias, theta) -> (v_next, r_next, spike)`` for one neuron.

    ``acc`` is the exact synaptic sum of the step (``acc_bits`` wide); it is saturated once,
    together with leak and bias, as the contract requires.
    """

    def __init__(self, *, membrane_bits: int, acc_bits: int, leak: Leak, reset: str, refractory: int,
                 readout: bool):
        self.membrane_bits = membrane_bits
        self.acc_bits = acc_bits
        self.leak = leak
        self.reset = reset
        self.refractory = refractory
        self.readout = readout
        V, rb = membrane_bits, bits_for(refractory)
        super().__init__({
            "v": In(signed(V)),
            "r": In(unsigned(rb)),
            "acc": In(signed(acc_bits)),
            "bias": In(signed(V)),
            "theta": In(signed(V)),
            "v_next": Out(signed(V)),
            "r_next": Out(unsigned(rb)),
            "spike": Out(1),
        })

    @classmethod
    def from_layer(cls, layer: Layer) -> "LIFNeuronUnit":
        return cls(membrane_bits=layer.membrane_bits,
                   acc_bits=layer.weight_bits + ceil_log2(layer.n_in + 1),
                   leak=layer.leak, reset=layer.reset, refractory=layer.refractory, readout=layer.readout)

    def elaborate(self, platform):
        m = Module()
        V = self.membrane_bits
        lo, hi = signed_range(V)
        lk = self.leak
        if lk.kind == "shift":
            leaked = self.v - (self.v >> lk.k)  # >> of a signed value is arithmetic
        elif lk.kind == "multiply":
            leaked = (self.v * lk.m) >> lk.frac_bits
        else:
            leaked = self.v
        total = Signal(signed(max(V, self.acc_bits) + 3))
        m.d.comb += total.eq(leaked + self.bias + self.acc)
        sat = Signal(signed(V))
        m.d.comb += sat.eq(Mux(total > hi, hi, Mux(total < lo, lo, total)))

        if self.readout:
            m.d.comb += [self.v_next.eq(sat), self.r_next.eq(self.r), self.spike.eq(0)]
            return m

        refractory = Signal()
        fire = Signal()
        m.d.comb += [
            refractory.eq(self.r != 0),
            fire.eq(~refractory & (sat > self.theta)),
        ]
        after = 0 if self.reset == "zero" else sat - self.theta
        with m.If(refractory):
            m.d.comb += [self.v_next.eq(self.v), self.r_next.eq(self.r - 1)]
        with m.Elif(fire):
            m.d.comb += [self.v_next.eq(after), self.r_next.eq(self.refractory)]
        with m.Else():
            m.d.comb += [self.v_next.eq(sat), self.r_next.eq(0)]
        m.d.comb += self.spike.eq(fire)
        return m
