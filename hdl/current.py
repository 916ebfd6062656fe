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
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..model.current import CURRENT_STAGES
from ..model.network import Leak
from .neuron import leaked, saturated

__all__ = ["CurrentUnit", "CURRENT_STAGES", "current_stages"]


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


def current_stages(m, layer, geo, i_mem, acc, sweep_r, group_r, fresh, bias_data):
    """The synaptic currents of a CUBA layer's sweep (README "Temporal layers", step 3), ahead of
    the neuron datapath of :class:`~spikegate.hdl.layer.LayerCore`.

    ``sweep_r``/``group_r`` are the sweep's registered flag and group: the current memory
    ``i_mem`` (added to ``m`` by the caller) is read at ``group_r``, so the old currents, the
    biases (``bias_data``) and the synaptic sums (``acc``) enter the CurrentUnit lanes together;
    the new currents are written back CURRENT_STAGES cycles later, when they are also the neuron
    units' drive. Returns the sweep flag and group CURRENT_STAGES cycles late (when the layer reads
    the neuron state) and the new currents. A fresh group (``fresh``, one bit per group) reads its
    current as zero; the layer clears its bit when the late timeline reads the group."""
    P, V = geo.lanes, geo.membrane_bits
    i_rd, i_wr = i_mem.read_port(), i_mem.write_port()
    m.d.comb += i_rd.addr.eq(group_r)

    def late(name, value, n):
        for k in range(n):
            reg = Signal(value.shape(), name=f"{name}_c{k + 1}")
            m.d.sync += reg.eq(value)
            value = reg
        return value

    sweep_n, group_n = late("sweep", sweep_r, CURRENT_STAGES), late("group", group_r, CURRENT_STAGES)
    fresh_i = Signal()  # with the read port's answer, one cycle after group_r
    m.d.sync += fresh_i.eq((fresh >> group_r)[0])
    i_lanes = data.ArrayLayout(signed(V), P)(i_rd.data)
    b_lanes = data.ArrayLayout(signed(V), P)(bias_data)
    new = Signal(data.ArrayLayout(signed(V), P))
    for k in range(P):
        unit = CurrentUnit(membrane_bits=V, acc_bits=geo.acc_bits, leak=layer.temporal.current)
        m.submodules[f"current{k}"] = unit
        m.d.comb += [unit.c.eq(i_lanes[k]), unit.acc.eq(acc[k]), unit.bias.eq(b_lanes[k]), new[k].eq(unit.c_next)]
        with m.If(fresh_i):
            m.d.comb += unit.c.eq(0)
    sweep_w = late("i_sweep", sweep_r, 1 + CURRENT_STAGES)
    group_w = late("i_group", group_r, 1 + CURRENT_STAGES)
    m.d.comb += [i_wr.addr.eq(group_w), i_wr.data.eq(new), i_wr.en.eq(sweep_w)]
    return sweep_n, group_n, new
