"""LIF neuron update datapath (one lane), the gateware of :mod:`spikegate.model.lif`.

A pipeline of :data:`~spikegate.model.layer.NEURON_STAGES` register stages, one new neuron per
cycle, so that each stage holds at most one carry chain and the sweep runs at the FPGA's clock:

1. leak ``v - (v >>> k)`` (or ``(v * m) >>> F``) and the drive ``bias + acc``, side by side;
2. the sum ``leaked + drive``;
3. saturation to the membrane range (bit tests on the sum's top bits, no comparator) and, beside
   it, ``sat > theta`` and ``sat - theta`` from the unsaturated sum;
4. the fire decision, the reset value and the refractory choice (multiplexers only).

The outputs of the neuron whose inputs were presented in cycle c are on ``v_next``, ``r_next``,
``spike`` in cycle c + NEURON_STAGES. Leak form, reset mode, refractory period and readout are
generation-time constants; only the threshold is an input, because the host can rewrite it at
run time. It is read by stage 3 (``NEURON_STAGES - 2`` cycles after the other inputs) and must be
steady while an update is in flight (the layer changes it only while idle, when the pipeline is
empty; a plastic layer's per-lane thresholds are delayed to meet stage 3).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..model.layer import NEURON_STAGES, bits_for, ceil_log2
from ..model.network import Layer, Leak, signed_range

__all__ = ["LIFNeuronUnit", "NEURON_STAGES", "leaked", "saturated", "neuron_aligned", "neuron_taps"]


def leaked(v, lk: Leak):
    """The contract's leak of a signed value (membrane or synaptic current), as logic."""
    if lk.kind == "shift":
        return v - (v >> lk.k)  # >> of a signed value is arithmetic
    if lk.kind == "multiply":
        return (v * lk.m) >> lk.frac_bits
    return v


def saturated(total, bits: int):
    """``total`` saturated to the signed ``bits`` range; bit tests decide, no comparator."""
    lo, hi = signed_range(bits)
    over, under = out_of_range(total, bits)
    return Mux(over, hi, Mux(under, lo, total[:bits].as_signed()))


def out_of_range(total, bits: int):
    """``(total > hi, total < lo)`` of the signed ``bits`` range, as bit tests: ``total`` is in
    range iff its bits from bits-1 up are all equal (all sign)."""
    top, sign = total[bits - 1:], total[len(total) - 1]
    return ~sign & top.any(), sign & ~top.all()


def neuron_taps(m: Module, name: str, value) -> list:
    """``value`` 1, 2, ..., NEURON_STAGES registers later (the last is :func:`neuron_aligned`'s):
    a memory addressed with tap ``NEURON_STAGES - 2`` answers together with the lanes' outputs, so a
    word read again there needs no delay line (on the iCE40 each flip-flop fed by a flip-flop or a
    block RAM takes a logic cell of its own)."""
    taps = []
    for k in range(NEURON_STAGES):
        reg = Signal(value.shape(), name=f"{name}_d{k + 1}")
        m.d.sync += reg.eq(value)
        taps.append(value := reg)
    return taps


def neuron_aligned(m: Module, name: str, value):
    """``value`` NEURON_STAGES registers later, added to ``m``: what a sweep issued with a group
    (its number, flags, old counts) arrives together with the LIFNeuronUnit lanes' outputs."""
    return neuron_taps(m, name, value)[-1]

class LIFNeuronUnit(wiring.Component):
    """``(v, r, acc, bias) -> (v_next, r_next, spike)`` for one neuron, NEURON_STAGES cycles later.

    ``acc`` is the exact synaptic sum of the step (``acc_bits`` wide); it is saturated once,
    together with leak and bias, as the contract requires.
    """

    latency = NEURON_STAGES

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
        lk = self.leak
        keep = self.refractory and not self.readout  # a refractory neuron keeps its old v

        def stage(name, value):
            reg = Signal(value.shape(), name=name)
            m.d.sync += reg.eq(value)
            return reg

        def carry(prefix, v, r):
            """v and r delayed one stage alongside the datapath (only where stage 4 needs them)."""
            return (stage(f"{prefix}_v", v) if keep else None,
                    stage(f"{prefix}_r", r) if self.refractory else r)

        # Stage 1: leak and drive, two independent carry chains.
        leaked1 = stage("s1_leaked", leaked(self.v, lk))
        drive1 = stage("s1_drive", self.bias + self.acc)
        v1, r1 = carry("s1", self.v, self.r)

        # Stage 2: the exact sum.
        total2 = stage("s2_total", leaked1 + drive1)
        v2, r2 = carry("s2", v1, r1)

        # Stage 3: saturate and, beside it, decide against the threshold, so that stage 4 only
        # chooses. With the comparison in stage 4, the shared threshold register's route to every
        # lane, then the compare and subtract chains, then the reset choice were one path: the
        # 64-lane ECP5 builds' slowest (12.2 ns). The saturated sum is hi, lo or the sum itself,
        # and a sum below lo is below every theta, so the sum or hi is compared and subtracted; the
        # reset value is taken modulo 2**V, as ``sat - theta`` assigned to v_next was. (Not
        # ``Mux(over, hi > theta, ...)``: ``hi > theta`` and ``hi - theta`` are the same in every
        # lane, so Yosys made them one carry chain for all lanes, whose routes to the far lanes
        # (9 ns at 64 lanes on the ULX3S) and fan-out stalled nextpnr's router.)
        hi = signed_range(V)[1]
        sat3 = stage("s3_sat", saturated(total2, V))
        over = out_of_range(total2, V)[0]
        v3, r3 = carry("s3", v2, r2)
        if self.readout:
            m.d.sync += [self.v_next.eq(sat3), self.r_next.eq(0), self.spike.eq(0)]
            return m
        capped = Mux(over, hi, total2)
        above3 = stage("s3_above", capped > self.theta)
        if self.reset != "zero":
            after3 = stage("s3_after", (capped - self.theta)[:V])

        # Stage 4: the fire decision, reset value and refractory choice, registered as the outputs.
        fire = Signal()
        m.d.comb += fire.eq(above3)
        if self.refractory:
            refractory = r3 != 0
            m.d.comb += fire.eq(~refractory & above3)
        after = 0 if self.reset == "zero" else after3
        with m.If(fire):
            m.d.sync += [self.v_next.eq(after), self.r_next.eq(self.refractory)]
        with m.Else():
            m.d.sync += [self.v_next.eq(sat3), self.r_next.eq(0)]
        if self.refractory:
            with m.If(refractory):
                m.d.sync += [self.v_next.eq(v3), self.r_next.eq(r3 - 1)]
        m.d.sync += self.spike.eq(fire)
        return m
