"""Synapse array of a delayed layer: weights, per-synapse delays and per-delay accumulator slots.

The gateware of :class:`spikegate.model.delay.DelayedSynapseArray` (layout, slots and the clear
there; README "Temporal layers"). Same ports and op codes as
:class:`~spikegate.hdl.synapse.SynapseArray` (so :class:`~spikegate.hdl.layer.LayerCore` drives it
alike), plus the slot control: ``reset_state`` (a run's start: slot 0, slots dirty), ``clear``
(held by the layer's CLEAR state: one slot word of every lane zeroed per cycle; ``clear_done``
in the last) and ``advance`` (the layer step's ``done``: the next slot).

Pipeline, one op per cycle (DELAY_STAGES = 2 more than the plain array's):

* stage 0: the weight/delay address ``i * G + g`` is registered;
* stage 1: the weight and delay memories are read;
* stage 2: lane k's slot ``t_slot + D`` (an integrate; a sweep uses D = 0), wrapped by ``- S``
  when it passes the end: two small adders side by side and a select on the second's sign;
  registered, with the weight word and the group;
* stage 3: lane k's accumulator memory is read at word ``slot * 2^ceil(log2 G) + g`` (the two
  fields side by side, no adder);
* stage 4: an integrate writes ``acc + w`` back; a sweep returns ``acc`` on ``acc`` and writes 0.

Each lane has its own accumulator memory (``LayerGeometry.slot_words``), since lanes of one word land in
different slots. With G >= 2 consecutive ops address different groups, hence different words,
so the read ports need no bypass; with G = 1 they are transparent to their write ports, as in
the plain array.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.delay import DELAY_STAGES, delay_words
from ..model.layer import ISSUE_STAGES, LayerGeometry, ceil_log2
from .synapse import (BLOCK_RAM, BLOCK_RAM_NO_COLLISION, OP_INTEGRATE, OP_NONE, OP_SWEEP, SynapseArray,
                      drive_weight_write, word_address)

__all__ = ["DelayedSynapseArray", "DELAY_STAGES", "delay_aligned"]


def delay_aligned(m, sweep_r, group_r):
    """The layer's registered sweep flag and group, DELAY_STAGES cycles later: when a delayed
    array's sums are on ``acc`` (the layer reads the neuron state then)."""
    for k in range(DELAY_STAGES):
        s, g = Signal(name=f"sweep_d{k + 1}"), Signal.like(group_r, name=f"group_d{k + 1}")
        m.d.sync += [s.eq(sweep_r), g.eq(group_r)]
        sweep_r, group_r = s, g
    return sweep_r, group_r


class DelayedSynapseArray(wiring.Component):
    """See the module docstring; ``layer`` is the delayed layer itself (its recurrent rows, if
    any, are added as in the plain array, with delay 0)."""

    def __init__(self, layer, syn_layer, geometry: LayerGeometry):
        """``syn_layer``: the layer whose weights the array holds (model.recurrence.synapse_layer);
        ``geometry``: the layer's own geometry (``delay_slots``) with ``n_in`` = its weight rows."""
        # The plain array's ports and weight memory (its accumulators are not used).
        plain = SynapseArray(syn_layer, geometry)
        # Only its ports and weight memory are used: its own accumulators are never elaborated.
        plain._MustUse__silence = plain.accs._MustUse__silence = True
        self.geo = geo = geometry
        P, G = geo.lanes, geo.groups
        super().__init__({
            **{name: plain.signature.members[name] for name in plain.signature.members},
            "reset_state": In(1),
            "clear": In(1),
            "clear_done": Out(1),
            "dirty": Out(1),
            "advance": In(1),
        })
        self.weights, self.acc_transparent = plain.weights, plain.acc_transparent
        self.delays = Memory(shape=unsigned(P * geo.delay_bits), depth=geo.n_in * G,
                             init=delay_words(layer, P, geo.delay_bits), attrs=BLOCK_RAM_NO_COLLISION)
        self.slot_accs = [Memory(shape=unsigned(geo.acc_bits), depth=geo.slot_words, init=[],
                                 attrs=BLOCK_RAM if self.acc_transparent else BLOCK_RAM_NO_COLLISION)
                          for _ in range(P)]

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        P, G, S, wb, A = geo.lanes, geo.groups, geo.delay_slots, geo.weight_bits, geo.acc_bits
        words = geo.slot_words
        gb = ceil_log2(G)
        m.submodules.weights = self.weights
        m.submodules.delays = self.delays
        w_rd = self.weights.read_port()
        w_wr = self.weights.write_port(granularity=wb)
        d_rd = self.delays.read_port()
        a_rd, a_wr = [], []
        for k, mem in enumerate(self.slot_accs):
            m.submodules[f"slots{k}"] = mem
            wr = mem.write_port()
            a_wr.append(wr)
            a_rd.append(mem.read_port(transparent_for=[wr] if self.acc_transparent else ()))

        # --- the current slot t mod S and its wrapped twin t_slot - S; the clear; dirty ----------
        sb = geo.delay_bits  # holds 0 .. S - 1
        t_slot = Signal(sb)
        t_slot_m = Signal(signed(sb + 1), init=-S)
        addr_bits = max(1, (words - 1).bit_length())
        clear_at = Signal(addr_bits)
        dirty = Signal(init=1)
        m.d.comb += [self.dirty.eq(dirty), self.clear_done.eq(self.clear & (clear_at == words - 1))]
        with m.If(self.clear):
            m.d.sync += clear_at.eq(clear_at + 1)
            with m.If(self.clear_done):
                m.d.sync += [clear_at.eq(0), dirty.eq(0)]
        with m.If(self.advance):
            with m.If(t_slot == S - 1):
                m.d.sync += [t_slot.eq(0), t_slot_m.eq(-S)]
            with m.Else():
                m.d.sync += [t_slot.eq(t_slot + 1), t_slot_m.eq(t_slot_m + 1)]
        with m.If(self.reset_state):
            m.d.sync += [t_slot.eq(0), t_slot_m.eq(-S), dirty.eq(1), clear_at.eq(0)]

        # --- stage 0/1: registered row address; weight and delay reads ---------------------------
        assert ISSUE_STAGES == 1 and DELAY_STAGES == 2
        op_r = Signal(2)
        waddr_r = Signal(len(w_rd.addr))
        m.d.sync += [op_r.eq(self.op), waddr_r.eq(word_address(self.addr, G, self.group))]
        group_r = Signal.like(self.group)
        m.d.sync += group_r.eq(self.group)
        m.d.comb += [w_rd.addr.eq(waddr_r), d_rd.addr.eq(waddr_r)]
        with m.If(op_r == OP_NONE):
            m.d.comb += w_rd.addr.eq(word_address(self.param_row, G, self.param_group))
        op_q = Signal(2)
        group_q = Signal.like(self.group)
        m.d.sync += [op_q.eq(op_r), group_q.eq(group_r)]

        # --- stage 2: slot addresses, registered with the weight word ----------------------------
        d_lanes = data.ArrayLayout(unsigned(geo.delay_bits), P)(d_rd.data)
        op_a = Signal(2)
        w_a = Signal(P * wb)
        group_a = Signal.like(self.group)
        slot_a = [Signal(sb, name=f"slot{k}") for k in range(P)]
        m.d.sync += [op_a.eq(op_q), w_a.eq(w_rd.data), group_a.eq(group_q)]
        for k in range(P):
            d = Mux(op_q == OP_INTEGRATE, d_lanes[k], 0)
            low, wrapped = Signal(sb + 1, name=f"slot_low{k}"), Signal(signed(sb + 2), name=f"slot_wrap{k}")
            m.d.comb += [low.eq(t_slot + d), wrapped.eq(t_slot_m + d)]
            m.d.sync += slot_a[k].eq(Mux(wrapped < 0, low, wrapped))
        # Word slot * 2^gb + g: the fields side by side.
        acc_addr = [Cat(group_a[:gb], slot_a[k]) if gb else slot_a[k] for k in range(P)]
        # --- stage 3: accumulator reads; stage 4: write-back ------------------------------------
        op_w = Signal(2)
        w_w = Signal(P * wb)
        slot_w = [Signal(addr_bits, name=f"slot_w{k}") for k in range(P)]
        m.d.sync += [op_w.eq(op_a), w_w.eq(w_a)] + [slot_w[k].eq(acc_addr[k]) for k in range(P)]
        w_lanes = data.ArrayLayout(signed(wb), P)(w_w)
        for k in range(P):
            a_old = a_rd[k].data.as_signed()
            a_new = Signal(signed(A), name=f"acc_new{k}")
            with m.If(op_w == OP_INTEGRATE):
                m.d.comb += a_new.eq(a_old + w_lanes[k])
            m.d.comb += [
                a_rd[k].addr.eq(acc_addr[k]),
                self.acc[k].eq(a_old),
                a_wr[k].addr.eq(slot_w[k]),
                a_wr[k].data.eq(a_new),
                a_wr[k].en.eq((op_w == OP_INTEGRATE) | (op_w == OP_SWEEP)),
            ]
            with m.If(self.clear):  # no op is in flight while the layer clears
                m.d.comb += [a_wr[k].addr.eq(clear_at), a_wr[k].data.eq(0), a_wr[k].en.eq(1)]
        m.d.comb += self.w_word.eq(w_rd.data)

        drive_weight_write(m, self, w_wr)  # the delays are fixed at generation
        return m
