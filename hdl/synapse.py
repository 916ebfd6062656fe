"""Synapse array: a layer's weights in block RAM, accumulated where they are read.

Weight memory: depth n_in * G, P lanes of weight_bits per word, word ``i * G + g`` =
``W[i, g*P : (g+1)*P]`` (the layout of :class:`spikeforge.model.synapse.SynapseArray`). The
accumulator memory holds the exact synaptic sums of the current step, one P-lane word per group.

Two-stage pipeline, one operation per cycle:

* stage 1 (the cycle of ``op``): address the weight word ``i * G + g`` and the accumulator word g;
* stage 2 (next cycle): integrate writes ``acc[g] + w`` lane by lane; a sweep read returns
  ``acc[g]`` on ``acc`` and writes 0, so the next step starts from zero sums.

The accumulator read port is transparent to its write port: with G = 1 consecutive events read
the word written in the same cycle, so back-to-back events to the same group are exact.
"""
from __future__ import annotations

from amaranth.hdl import Const, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.layer import LayerGeometry
from ..model.synapse import SynapseArray as SynapseTwin
from ..model.network import Layer

__all__ = ["SynapseArray", "OP_NONE", "OP_INTEGRATE", "OP_SWEEP", "BLOCK_RAM"]

# Yosys maps small memories to LUT RAM or flip-flops unless told otherwise; weights and neuron
# state must live in block RAM (iCE40 SB_RAM40_4K, ECP5 DP16KD) so the core scales with it.
BLOCK_RAM = {"ram_style": "block"}

OP_NONE, OP_INTEGRATE, OP_SWEEP = 0, 1, 2


class SynapseArray(wiring.Component):
    """Weights of one layer plus its P-lane accumulators; see the module docstring."""

    def __init__(self, layer: Layer, geometry: LayerGeometry):
        self.geo = geo = geometry
        self.init_words = SynapseTwin(layer, geo.lanes).weight_words()
        super().__init__({
            "op": In(2),
            "addr": In(geo.addr_bits),       # input index i (integrate)
            "group": In(geo.group_bits),     # group g (integrate and sweep)
            "acc": Out(data.ArrayLayout(signed(geo.acc_bits), geo.lanes)),  # sweep result, stage 2
            # Run-time weight write W[row, col] (idle only).
            "w_en": In(1),
            "w_row": In(geo.addr_bits),
            "w_col": In(max(1, (geo.groups * geo.lanes - 1).bit_length())),
            "w_data": In(signed(geo.weight_bits)),
        })
        self.weights = Memory(shape=unsigned(geo.lanes * geo.weight_bits), depth=geo.n_in * geo.groups,
                              init=self.init_words, attrs=BLOCK_RAM)
        self.accs = Memory(shape=unsigned(geo.lanes * geo.acc_bits), depth=geo.groups, init=[], attrs=BLOCK_RAM)

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        P, G, wb, A = geo.lanes, geo.groups, geo.weight_bits, geo.acc_bits
        lane_bits = (P - 1).bit_length()
        m.submodules.weights = self.weights
        m.submodules.accs = self.accs
        w_rd = self.weights.read_port()
        w_wr = self.weights.write_port(granularity=wb)
        a_wr = self.accs.write_port()
        a_rd = self.accs.read_port(transparent_for=[a_wr])

        m.d.comb += [
            w_rd.addr.eq(self.addr * G + self.group),
            a_rd.addr.eq(self.group),
        ]
        op_q = Signal(2)
        group_q = Signal.like(self.group)
        m.d.sync += [op_q.eq(self.op), group_q.eq(self.group)]

        w_lanes = data.ArrayLayout(signed(wb), P)(w_rd.data)
        a_lanes = data.ArrayLayout(signed(A), P)(a_rd.data)
        a_new = Signal(data.ArrayLayout(signed(A), P))
        with m.If(op_q == OP_INTEGRATE):
            m.d.comb += [a_new[k].eq(a_lanes[k] + w_lanes[k]) for k in range(P)]
        # (OP_SWEEP leaves a_new = 0: the sums are consumed and cleared in one access.)
        m.d.comb += [
            self.acc.eq(a_lanes),
            a_wr.addr.eq(group_q),
            a_wr.data.eq(a_new),
            a_wr.en.eq(op_q != OP_NONE),
        ]

        # Run-time writes: one lane of one word, so the rest of the row is untouched.
        lane = self.w_col[:lane_bits] if lane_bits else Const(0, 1)
        group = self.w_col[lane_bits:] if lane_bits else self.w_col
        m.d.comb += [
            w_wr.addr.eq(self.w_row * G + group),
            w_wr.data.eq(self.w_data.as_unsigned().replicate(P)),
            w_wr.en.eq(self.w_en.replicate(P) & (Const(1, P) << lane)),
        ]
        return m
