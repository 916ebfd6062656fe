"""Synapse array: a layer's weights in block RAM, accumulated where they are read.

Weight memory: depth n_in * G, P lanes of weight_bits per word, word ``i * G + g`` =
``W[i, g*P : (g+1)*P]`` (the layout of :class:`spikegate.model.synapse.SynapseArray`). The
accumulator memory holds the exact synaptic sums of the current step, one P-lane word per group.

Three-stage pipeline, one operation per cycle:

* stage 0 (the cycle of ``op``): the weight address ``i * G + g`` is computed and registered, so
  the event path (spike FIFO, lowest-bit search, the multiply-add) ends at a register
  (:data:`~spikegate.model.layer.ISSUE_STAGES`);
* stage 1: address the weight word and the accumulator word g;
* stage 2: integrate writes ``acc[g] + w`` lane by lane; a sweep read returns ``acc[g]`` on
  ``acc`` and writes 0, so the next step starts from zero sums.

Idle-time weight reads (``param_*``, for CHECKSUM) bypass stage 0: one cycle, as before; they
use the weight port in the cycles after one without an op.

With G = 1 the accumulator read port is transparent to its write port: consecutive events read
the word written in the same cycle, so back-to-back events to the same group are exact. With
G >= 2 consecutive ops address different groups (the layer issues 0..G-1 in order), so the port
is plain and Yosys adds no bypass logic.

With ``geometry.read_stages`` = R >= 1 (``HardwareConfig.registered_reads``) both words are
registered R times as they leave the block RAMs (:func:`~spikegate.hdl.read_reg.late`) and stage 2
becomes stage 2 + R: sums, idle-time weight reads and ``acc`` come R cycles later. With R = 2 the
weight word's first register is one per block-deep part of the memory, before the multiplexer that
picks the part (:func:`~spikegate.hdl.read_reg.sliced_ports`), and the accumulator word is read a
cycle later instead of registered twice, so that it is read and written back two cycles apart, as
with R = 1. An op then reads its accumulator word before the two ops issued just ahead of it have
written theirs; with G >= 3 those are other groups, with G <= 2 the register takes the word being
written, in that cycle or the one before, instead.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.layer import ISSUE_STAGES, SPRAM_LEARN_WRITE_DELAY, LayerGeometry, ceil_log2
from ..model.synapse import SynapseArray as SynapseTwin
from ..model.network import Layer
from .read_reg import late, sliced_ports, weight_slices
from .spram import spram_weight_ports

__all__ = ["SynapseArray", "OP_NONE", "OP_INTEGRATE", "OP_SWEEP", "BLOCK_RAM", "BLOCK_RAM_NO_COLLISION", "NO_RW_CHECK",
           "ACC_LATENCY", "OP_LEARN", "word_address", "times"]

# Yosys maps small memories to LUT RAM or flip-flops unless told otherwise; weights and neuron
# state must live in block RAM (iCE40 SB_RAM40_4K, ECP5 DP16KD) so the core scales with it.
BLOCK_RAM = {"ram_style": "block"}
# For a memory whose reads never use a word read in the cycle its write port writes that address
# (by the schedule: neuron state is read by a sweep and written back NEURON_STAGES cycles later,
# weights and biases are written only while idle; where a collision can happen, a forwarding
# register replaces the word read): the board builds then leave out the soft logic that would
# make such a collision return the old word (a LUT behind every data bit of the block and
# registers beside it; boards.flow.NO_RW_CHECK_SCRIPT), and the simulations return garbage for
# such a read (sim.collisions), so a schedule that used one fails them. The accumulators keep a
# transparent read port only with G = 1, where back-to-back ops to the one group do collide.
NO_RW_CHECK = "no_rw_check"  # the attribute's name, as Yosys knows it
BLOCK_RAM_NO_COLLISION = {**BLOCK_RAM, NO_RW_CHECK: 1}
# Flip-flops (LayerGeometry.groups_in_logic); the schedule's collision rules are the same.
LOGIC_NO_COLLISION = {"ram_style": "logic", NO_RW_CHECK: 1}

OP_NONE, OP_INTEGRATE, OP_SWEEP = 0, 1, 2
# A plastic layer's learning engine reads a weight word (hdl.learning_engine): no accumulator access.
OP_LEARN = 3
# Cycles from a sweep op to its sums on ``acc`` (one more with LayerGeometry.read_stages = 1).
ACC_LATENCY = ISSUE_STAGES + 1


def word_address(row, groups: int, group):
    """``row * groups + group``, the word of input row ``row`` and neuron group ``group`` (< groups)
    in the P-lane layout, without a multiplier: the constant product is ``row`` shifted by each
    set bit of ``groups`` and added, and with a power-of-two ``groups`` the group is the low bits.
    Yosys maps ``row * 3`` to an ECP5 MULT18X18D otherwise, 4 of the 16 ns of the ULX3S's
    critical path (the spike-word queue's read into layer 1's weight address)."""
    if groups & (groups - 1) == 0:
        k = groups.bit_length() - 1
        low = Value.cast(group)[:k]
        return Cat(low, Const(0, k - len(low)), row) if k else row
    return times(row, groups) + group


def times(x, k: int):
    """``x * k`` for a constant ``k`` >= 1 as shifted copies of ``x`` added, one per set bit of
    ``k``: Yosys maps even a small constant product to a DSP multiplier (ECP5 MULT18X18D, iCE40
    SB_MAC16), whose delay dominated the paths it was on."""
    terms = [x.shift_left(b) for b in range(k.bit_length()) if k >> b & 1]
    return sum(terms[1:], terms[0])


class SynapseArray(wiring.Component):
    """Weights of one layer plus its P-lane accumulators; see the module docstring."""

    def __init__(self, layer: Layer, geometry: LayerGeometry, *, spram_primitive: bool = False,
                 learning: bool = False):
        """``spram_primitive``: with ``geometry.weight_ram == "spram"``, True builds the weight memory
        from SB_SPRAM256KA instances (for iCE40 synthesis); ``"model"`` builds the same tiling from
        :class:`~spikegate.hdl.spram.SPRAM256KAModel` (for Amaranth's simulator, which cannot run vendor primitives);
        False uses one behavioural ``Memory`` of the same contents and timing. ``learning`` adds
        OP_LEARN and the learning engine's whole-word write port ``l_*`` (plastic layers only, so
        other layers' Verilog is unchanged); with SPRAM weights that write is registered once more
        (:data:`~spikegate.model.layer.SPRAM_LEARN_WRITE_DELAY`), so it lands in a cycle without a
        read."""
        self.geo = geo = geometry
        self.spram = geo.weight_ram == "spram"
        self.spram_primitive = spram_primitive if self.spram else False
        self.init_words = SynapseTwin(layer, geo.lanes, zero=self.spram).weight_words()
        self.learning = learning
        learn_ports = {
            # The learning engine's write of a whole word (busy only; cfg writes only while idle).
            "l_en": In(1),
            "l_addr": In(max(1, ceil_log2(geo.n_in * geo.groups))),
            "l_data": In(geo.lanes * geo.weight_bits),
        } if learning else {}
        super().__init__({
            **learn_ports,
            "op": In(2),
            "addr": In(geo.addr_bits),       # input index i (integrate)
            "group": In(geo.group_bits),     # group g (integrate and sweep)
            # sweep result, ACC_LATENCY + read_stages later
            "acc": Out(data.ArrayLayout(signed(geo.acc_bits), geo.lanes)),
            # Run-time weight write W[row, col] (idle only).
            "w_en": In(1),
            "w_row": In(geo.addr_bits),
            "w_col": In(max(1, (geo.groups * geo.lanes - 1).bit_length())),
            "w_data": In(signed(geo.weight_bits)),
            # Idle-time reads (CHECKSUM): in a cycle after one without op, w_word is the weight word
            # at (param_row, param_group) of the previous cycle (of 2 cycles before with registered
            # reads: it is taken after the first register, whatever read_stages is).
            "param_row": In(geo.addr_bits),
            "param_group": In(geo.group_bits),
            "w_word": Out(data.ArrayLayout(signed(geo.weight_bits), geo.lanes)),
        })
        # Registered reads (the ECP5): a deep weight memory as narrow slices (hdl.read_reg).
        self.weight_slices = ([] if self.spram or not geo.read_stages else
                              weight_slices(geo, self.init_words, BLOCK_RAM_NO_COLLISION))
        self.weight_parts = len(self.weight_slices[0]) if self.weight_slices else 1
        assert self.weight_parts == 1 or geo.read_stages >= 2, "a part's register is a read stage"
        self.weights = None if self.spram_primitive or self.weight_slices else Memory(
            shape=unsigned(geo.lanes * geo.weight_bits), depth=geo.n_in * geo.groups, init=self.init_words,
            attrs=BLOCK_RAM_NO_COLLISION)
        # An op reads acc[g] one cycle before it writes it back. The layer issues the groups of an
        # event, and of a sweep, in order 0..G-1, back to back, so with G >= 2 an op never reads
        # the group written in the same cycle; only G = 1 needs the read port transparent (and the
        # comparator and bypass register Yosys builds for it: ~P * acc_bits LUTs and FFs).
        # With registered reads the forwarding in elaborate() covers every collision instead.
        self.acc_transparent = geo.groups == 1 and not geo.read_stages
        self.accs = Memory(shape=unsigned(geo.lanes * geo.acc_bits), depth=geo.groups, init=[],
                           attrs=(BLOCK_RAM if self.acc_transparent else
                                  LOGIC_NO_COLLISION if geo.groups_in_logic else BLOCK_RAM_NO_COLLISION))

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        P, G, wb, A = geo.lanes, geo.groups, geo.weight_bits, geo.acc_bits
        m.submodules.accs = self.accs
        if self.spram_primitive:
            w_rd, w_wr = spram_weight_ports(m, geo, self.spram_primitive)
        elif self.weight_slices:
            w_rd, w_wr = sliced_ports(m, self.weight_slices, geo)
        else:
            m.submodules.weights = self.weights
            w_rd = self.weights.read_port()
            w_wr = self.weights.write_port(granularity=wb)
        a_wr = self.accs.write_port()
        a_rd = self.accs.read_port(transparent_for=[a_wr] if self.acc_transparent else ())

        assert ISSUE_STAGES == 1, "stage 0 is one register"
        op_r = Signal(2)
        group_r = Signal.like(self.group)
        waddr_r = Signal(len(w_rd.addr))
        m.d.sync += [op_r.eq(self.op), group_r.eq(self.group), waddr_r.eq(word_address(self.addr, G, self.group))]
        R = geo.read_stages
        m.d.comb += [
            w_rd.addr.eq(waddr_r),
            a_rd.addr.eq(late(m, group_r, max(0, R - 1), "acc_group_r")),
        ]
        # The weight port is free when no op was issued the cycle before (a registered select).
        with m.If(op_r == OP_NONE):
            m.d.comb += w_rd.addr.eq(word_address(self.param_row, G, self.param_group))
        op_q = Signal(2)
        group_q = Signal.like(self.group)
        m.d.sync += [op_q.eq(op_r), group_q.eq(group_r)]

        # (a weight memory built from block-deep parts registers its words once already)
        R1 = min(R, 1)
        w_first = late(m, w_rd.data, R1 - int(self.weight_parts > 1), "w_word_r")
        w_data = late(m, w_first, R - R1, "w_word_rr")
        a_data = a_rd.data
        if R:
            a_data = self._forwarded_acc(m, a_rd, a_wr, late(m, group_q, R - 1, "acc_read_group"))
            op_q, group_q = late(m, op_q, R, "op_q_r"), late(m, group_q, R, "group_q_r")
        w_lanes = data.ArrayLayout(signed(wb), P)(w_data)
        a_lanes = data.ArrayLayout(signed(A), P)(a_data)
        a_new = Signal(data.ArrayLayout(signed(A), P))
        with m.If(op_q == OP_INTEGRATE):
            m.d.comb += [a_new[k].eq(a_lanes[k] + w_lanes[k]) for k in range(P)]
        # (OP_SWEEP leaves a_new = 0: the sums are consumed and cleared in one access.)
        m.d.comb += [
            self.acc.eq(a_lanes),
            self.w_word.eq(w_first),
            a_wr.addr.eq(group_q),
            a_wr.data.eq(a_new),
            a_wr.en.eq(op_q != OP_NONE),
        ]
        if self.learning:
            m.d.comb += a_wr.en.eq((op_q == OP_INTEGRATE) | (op_q == OP_SWEEP))

        drive_weight_write(m, self, w_wr)
        if self.learning:
            l_en, l_addr, l_data = self.l_en, self.l_addr, self.l_data
            if self.spram:
                assert SPRAM_LEARN_WRITE_DELAY == 1, "one register"
                # One port: the write goes one cycle later (SPRAM_LEARN_WRITE_DELAY), when the
                # engine's every-other-cycle issue leaves the port free (model.layer).
                l_en, l_addr, l_data = Signal(), Signal.like(self.l_addr), Signal.like(self.l_data)
                m.d.sync += [l_en.eq(self.l_en), l_addr.eq(self.l_addr), l_data.eq(self.l_data)]
            with m.If(l_en):
                m.d.comb += [w_wr.addr.eq(l_addr), w_wr.data.eq(l_data), w_wr.en.eq(Const((1 << P) - 1, P))]
        return m

    def _forwarded_acc(self, m, a_rd, a_wr, group_q):
        """The accumulator word of the read made last cycle (group ``group_q``), registered. Two
        ops issued just before it write their words in the cycle of that read and in this one; with
        G <= 2 either may be the same group, and its data replaces the block RAM's (the later write
        wins). With G >= 3 they never are (consecutive ops address consecutive groups)."""
        word = Signal.like(a_rd.data)
        m.d.comb += word.eq(a_rd.data)
        if self.geo.groups <= 2:
            prev_en, prev_addr, prev_data = Signal(), Signal.like(a_wr.addr), Signal.like(a_wr.data)
            m.d.sync += [prev_en.eq(a_wr.en), prev_addr.eq(a_wr.addr), prev_data.eq(a_wr.data)]
            with m.If(prev_en & (prev_addr == group_q)):
                m.d.comb += word.eq(prev_data)
            with m.If(a_wr.en & (a_wr.addr == group_q)):
                m.d.comb += word.eq(a_wr.data)
        return late(m, word, 1, "acc_word_r")

def drive_weight_write(m, array, w_wr) -> None:
    """Run-time writes ``w_*`` of ``array`` (a synapse array): one lane of one word, so the rest of
    the row is untouched."""
    P, G = array.geo.lanes, array.geo.groups
    lane_bits = (P - 1).bit_length()
    lane = array.w_col[:lane_bits] if lane_bits else Const(0, 1)
    group = array.w_col[lane_bits:] if lane_bits else array.w_col
    m.d.comb += [
        w_wr.addr.eq(word_address(array.w_row, G, group)),
        w_wr.data.eq(array.w_data.as_unsigned().replicate(P)),
        w_wr.en.eq(array.w_en.replicate(P) & (Const(1, P) << lane)),
    ]
