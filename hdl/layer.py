"""Layer core: one event-driven, time-multiplexed layer of LIF neurons.

One layer step, started by a ``start`` pulse while idle:

1. INTEG: every input event on ``events`` is held for G cycles, one per group g, each cycle
   issuing the read of weight word (i, g) to be added to the group's P accumulators
   (:class:`~spikegate.hdl.synapse.SynapseArray`). When no event is valid and ``events_end``
   is high, the step's events are over (``end_ack`` pulses; the source may drop its marker).
2. SWEEP: G cycles, one group g a cycle: its group number is registered (ISSUE_STAGES), then
   its membranes, refractory counters, biases (block RAM, P lanes per word) and accumulators are
   read, enter the P pipelined :class:`~spikegate.hdl.neuron.LIFNeuronUnit` lanes one cycle
   later and are written back NEURON_STAGES cycles after that, when the group's non-zero spike
   word leaves on ``spikes``.
3. DRAIN: LAYER_OVERHEAD - 1 = 7 cycles that empty the pipeline: the issue register, the memory
   read, the NEURON_STAGES stages, and one more so the last spike word has passed the next
   layer's registered FIFO output (WORD_FIFO_STAGES) when that layer starts; the last pulses
   ``done``.

4. WTA (winner-take-all layers): the pass of :mod:`spikegate.hdl.wta` that fires the winner.
5. LEARN (plastic layers, ``learn`` high): stage 5, :class:`~spikegate.hdl.learning_engine.LearningEngine`,
   after the drain; ``done`` waits for it
   (:meth:`spikegate.model.layer.LearningGeometry.cycles` more cycles).

Cycles from ``start`` to ``done`` (learning off): E * G + G + LAYER_OVERHEAD - 1; ``done`` is the cycle in which
the network starts the next layer, so a layer step costs E * G + G + 8
(:data:`spikegate.model.layer.LAYER_OVERHEAD`).

Temporal layers (README "Temporal layers"), each part only when the layer has it: a recurrent
layer's spike words of the step before are replayed first in INTEG through the weight memory's
recurrent rows (:class:`~spikegate.hdl.recurrence.RecurrentEvents`, G cycles per spike); a CUBA
layer's sweep first updates the synaptic current (:class:`~spikegate.hdl.current.CurrentUnit`,
CURRENT_STAGES = 3 cycles, its own block RAM) and reads the neuron state that much later, so its
drain is 3 cycles longer; a delayed layer's synapse array keeps per-delay accumulator slots
(:class:`~spikegate.hdl.delay.DelayedSynapseArray`: sums DELAY_STAGES = 2 cycles later, so 2 more
drain cycles; its first step of a run clears the slots in a CLEAR state first)
(:meth:`spikegate.model.layer.LayerGeometry.cycles`).

Membranes and refractory counters are not cleared at the start of a run by a G-cycle sweep:
``reset_state`` sets one "fresh" flag per group, and a fresh group reads as v = 0, r = 0,
count = 0. This keeps the start-up cost constant.
"""
from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Const, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from ..model.layer import NEURON_STAGES, LayerGeometry
from ..model.network import Layer
from ..model.recurrence import synapse_layer
from ..model.synapse import pack_lanes
from .current import current_stages
from .delay import DelayedSynapseArray, delay_aligned
from .learning_engine import LearningEngine
from .layer_ports import drive_cfg, drive_params, drive_peek, layer_members
from .learning_state import state_members
from .neuron import LIFNeuronUnit, neuron_aligned, neuron_taps
from .read_reg import late, late_tapped
from .recurrence import RecurrentEvents
from .synapse import BLOCK_RAM_NO_COLLISION, LOGIC_NO_COLLISION, OP_INTEGRATE, OP_NONE, OP_SWEEP, SynapseArray
from .wta import winner_take_all

__all__ = ["LayerCore"]


class LayerCore(wiring.Component):
    def __init__(self, layer: Layer, geometry: LayerGeometry, *, spram_primitive: bool = False):
        self.layer = layer
        self.geo = geo = geometry
        P, V = geo.lanes, geo.membrane_bits
        col_bits = max(1, (geo.groups * P - 1).bit_length())
        self.col_bits = col_bits
        super().__init__({
            **layer_members(geo, row_bits=geo.addr_bits, col_bits=col_bits),
            # Plastic layers only: stage 5 (hdl.learning_engine) runs after the sweep while high.
            **({"learn": In(1), **state_members(geo, row_bits=geo.addr_bits, col_bits=col_bits)}
               if geo.learning is not None else {}),
            # rstdp layers only (hdl.eligibility): R of stage 5, and (idle) a per-sample reward sweep.
            **({"reward": In(signed(16)), "reward_start": In(1)}
               if geo.learning is not None and geo.learning.elig_bits else {}),
        })
        # Temporal layers: the recurrent weights are rows of the same synapse array
        # (model/recurrence.py), the current one more state memory (model/current.py).
        self.learning = LearningEngine(layer, geo) if geo.learning is not None else None
        syn_geo = replace(geo, n_in=geo.rows, current=False, recurrent=False) if geo.recurrent else geo
        # Delayed layers (model/delay.py): per-delay accumulator slots in the synapse array.
        self.synapses = (DelayedSynapseArray(layer, synapse_layer(layer, P), syn_geo) if geo.delay_slots else
                         SynapseArray(synapse_layer(layer, P), syn_geo, spram_primitive=spram_primitive,
                                      learning=self.learning is not None))
        self.recurrence = RecurrentEvents(geo) if geo.recurrent else None
        self.i_mem = (Memory(shape=unsigned(P * V), depth=geo.groups, init=[], attrs=BLOCK_RAM_NO_COLLISION)
                      if geo.current else None)
        G = geo.groups
        bias_words = [pack_lanes(list(layer.bias[g * P:(g + 1) * P]), V) for g in range(G)]
        attrs = LOGIC_NO_COLLISION if geo.groups_in_logic else BLOCK_RAM_NO_COLLISION
        self.v_mem = Memory(shape=unsigned(P * V), depth=G, init=[], attrs=attrs)
        self.bias_mem = Memory(shape=unsigned(P * V), depth=G, init=bias_words, attrs=attrs)
        self.r_mem = (Memory(shape=unsigned(P * geo.refr_bits), depth=G, init=[], attrs=attrs)
                      if layer.refractory else None)
        self.count_mem = (Memory(shape=unsigned(P * geo.count_bits), depth=G, init=[], attrs=attrs)
                          if geo.count_bits else None)

    def elaborate(self, platform):
        m = Module()
        geo, layer = self.geo, self.layer
        P, G, V = geo.lanes, geo.groups, geo.membrane_bits
        lane_bits = (P - 1).bit_length()
        rb, cb = geo.refr_bits, geo.count_bits

        m.submodules.synapses = syn = self.synapses
        m.submodules.v_mem = self.v_mem
        m.submodules.bias_mem = self.bias_mem
        v_rd, v_wr = self.v_mem.read_port(), self.v_mem.write_port()
        b_rd, b_wr = self.bias_mem.read_port(), self.bias_mem.write_port(granularity=V)
        if self.r_mem is not None:
            m.submodules.r_mem = self.r_mem
            r_rd, r_wr = self.r_mem.read_port(), self.r_mem.write_port()
        if self.count_mem is not None:
            m.submodules.count_mem = self.count_mem
            c_rd, c_wr = self.count_mem.read_port(), self.count_mem.write_port()

        theta = Signal(signed(V), init=layer.threshold)
        fresh = Signal(G)

        # --- control ---------------------------------------------------------------------------
        g = Signal(geo.group_bits)
        last_g = g == G - 1
        sweep_issue = Signal()
        integ_issue = Signal()
        drain = Signal(range(geo.drain_stages - 1))
        rec = self.recurrence
        if rec is not None:
            m.submodules.recurrence = rec
            rec_issue = Signal()
            m.d.comb += [rec.reset_state.eq(self.reset_state), rec.spikes.eq(self.spikes)]
        learn_start = Signal()
        learning_phase = Signal()
        layer_idle = Signal()
        wta = self.learning is not None and geo.learning.wta_issues > 0
        elig = self.learning is not None and geo.learning.elig_bits > 0
        wta_start, wta_done = Signal(), Signal()

        def after_sweep():
            """A plastic layer's sweep (and WTA pass) is over: stage 5 with learning on, else done."""
            with m.If(self.learn):
                m.d.comb += learn_start.eq(1)
                m.next = "LEARN"
            with m.Else():
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += layer_idle.eq(1)
                with m.If(self.start):
                    m.d.sync += g.eq(0)
                    m.next = "INTEG"
                    if geo.delay_slots:  # a run's first step clears the slots first
                        with m.If(syn.dirty):
                            m.next = "CLEAR"
                if elig:
                    with m.Elif(self.reward_start):
                        m.next = "REWARD"
            if geo.delay_slots:
                with m.State("CLEAR"):
                    m.d.comb += [self.busy.eq(1), syn.clear.eq(1)]
                    with m.If(syn.clear_done):
                        m.next = "INTEG"
            with m.State("INTEG"):
                m.d.comb += self.busy.eq(1)
                if rec is not None:  # the layer's own spikes of the step before come first
                    with m.If(rec.events.valid):
                        m.d.comb += [integ_issue.eq(1), rec_issue.eq(1), rec.events.ready.eq(last_g)]
                        m.d.sync += g.eq(g + 1)
                        with m.If(last_g):
                            m.d.sync += g.eq(0)
                ff_events = m.If if rec is None else m.Elif
                with ff_events(self.events.valid):
                    m.d.comb += [integ_issue.eq(1), self.events.ready.eq(last_g)]
                    m.d.sync += g.eq(g + 1)
                    with m.If(last_g):
                        m.d.sync += g.eq(0)
                with m.Elif(self.events_end):
                    m.d.comb += self.end_ack.eq(1)
                    if rec is not None:
                        m.d.comb += rec.rewind.eq(1)
                    m.next = "SWEEP"
            with m.State("SWEEP"):
                m.d.comb += [self.busy.eq(1), sweep_issue.eq(1)]
                m.d.sync += g.eq(g + 1)
                with m.If(last_g):
                    m.d.sync += g.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == geo.drain_stages - 2):
                    m.d.sync += drain.eq(0)
                    if self.learning is None:
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    elif wta:
                        m.d.comb += wta_start.eq(1)
                        m.next = "WTA"
                    else:
                        after_sweep()
            if wta:
                with m.State("WTA"):
                    m.d.comb += self.busy.eq(1)
                    with m.If(wta_done):
                        after_sweep()
            if self.learning is not None:
                with m.State("LEARN"):
                    m.d.comb += [self.busy.eq(1), learning_phase.eq(1), self.done.eq(self.learning.done)]
                    with m.If(self.learning.done):
                        m.next = "IDLE"
            if elig:
                with m.State("REWARD"):  # a per-sample reward sweep: busy, but no step is done
                    m.d.comb += [self.busy.eq(1), learning_phase.eq(1)]
                    with m.If(self.learning.done):
                        m.next = "IDLE"

        # --- stage 0: issue (registered, like the synapse array's weight address) ----------------
        m.d.comb += [
            syn.op.eq(OP_NONE),
            syn.addr.eq(self.events.payload),
            syn.group.eq(g),
        ]
        with m.If(integ_issue):
            m.d.comb += syn.op.eq(OP_INTEGRATE)
        if rec is not None:
            with m.If(rec_issue):
                m.d.comb += syn.addr.eq(rec.events.payload)
        with m.If(sweep_issue):
            m.d.comb += syn.op.eq(OP_SWEEP)
        sweep_r = Signal()
        group_r = Signal(geo.group_bits)
        m.d.sync += [sweep_r.eq(sweep_issue), group_r.eq(g)]
        if geo.delay_slots:  # the slot sums come DELAY_STAGES later; the next step has the next slot
            m.d.comb += [syn.reset_state.eq(self.reset_state), syn.advance.eq(self.done)]
            sweep_r, group_r = delay_aligned(m, sweep_r, group_r)
        # A CUBA layer's current stages come first: the neuron state is read CURRENT_STAGES later.
        sweep_n, group_n = sweep_r, group_r
        if self.i_mem is not None:
            m.submodules.i_mem = self.i_mem
            sweep_n, group_n, current = current_stages(m, self.layer, geo, self.i_mem, syn.acc, sweep_r, group_r,
                                                       fresh, b_rd.data)

        # --- stage 1: addresses ------------------------------------------------------------------
        peek_group = self.peek_addr[lane_bits:] if lane_bits else self.peek_addr
        rd_group = Signal(geo.group_bits)
        m.d.comb += rd_group.eq(peek_group)
        with m.If(sweep_n):
            m.d.comb += rd_group.eq(group_n)
        m.d.comb += [v_rd.addr.eq(rd_group), b_rd.addr.eq(group_r)]
        if self.r_mem is not None:
            m.d.comb += r_rd.addr.eq(rd_group)
        if self.count_mem is not None:
            m.d.comb += c_rd.addr.eq(rd_group)

        sweep_q = Signal()
        group_q = Signal(geo.group_bits)
        fresh_q = Signal()
        peek_lane_q = Signal(max(1, lane_bits))
        m.d.sync += [
            sweep_q.eq(sweep_n),
            group_q.eq(group_n),
            fresh_q.eq((fresh >> rd_group)[0]),
            peek_lane_q.eq(self.peek_addr[:lane_bits] if lane_bits else 0),
        ]
        with m.If(self.reset_state):
            m.d.sync += fresh.eq(Const((1 << G) - 1, G))
        with m.Elif(sweep_n):
            m.d.sync += fresh.eq(fresh & ~(Const(1, G) << group_n))

        # --- stage 2: the memories answer; the neuron pipeline starts ------------------------------
        # (stage 3 with registered reads: the words are registered first, and what travels with
        # them waits as long, as do the synapse array's sums: hdl.synapse)
        # With two read stages (a weight memory built from block-deep parts: hdl.synapse) the
        # state words wait a cycle more for the sums; the idle-time peek and parameter reads take
        # them after the first register, so their latencies stay 2 and 3 (model.hardware).
        R = geo.read_stages
        (v_peek, v_data), (b_param, b_data) = late_tapped(m, v_rd.data, R, "v_word_r"), late_tapped(
            m, b_rd.data, R, "bias_word_r")
        r_peek, r_data = late_tapped(m, r_rd.data, R, "r_word_r") if self.r_mem is not None else (None, None)
        c_peek, c_data = late_tapped(m, c_rd.data, R, "count_word_r") if self.count_mem is not None else (None, None)
        sweep_q, group_q = late(m, sweep_q, R, "sweep_q_r"), late(m, group_q, R, "group_q_r")
        (fresh_peek, fresh_q), peek_lane_q = late_tapped(m, fresh_q, R, "fresh_q_r"), late(
            m, peek_lane_q, min(R, 1), "peek_lane_q_r")
        v_lanes = data.ArrayLayout(signed(V), P)(v_data)
        b_lanes = data.ArrayLayout(signed(V), P)(b_data)
        r_lanes = data.ArrayLayout(unsigned(rb), P)(r_data) if self.r_mem is not None else None
        c_lanes = data.ArrayLayout(unsigned(cb), P)(c_data) if self.count_mem is not None else None
        v_new = Signal(data.ArrayLayout(signed(V), P))
        r_new = Signal(data.ArrayLayout(unsigned(rb), P))
        c_new = Signal(data.ArrayLayout(unsigned(max(1, cb)), P))
        word = Signal(P)

        # --- stage 2 + NEURON_STAGES: write-back of group_w (spike word to the next layer) ------
        sweep_taps, group_taps = neuron_taps(m, "sweep", sweep_q), neuron_taps(m, "group", group_q)
        sweep_w, group_w = sweep_taps[-1], group_taps[-1]
        plastic = self.learning is not None
        fresh_w = neuron_aligned(m, "fresh", fresh_q) if c_lanes is not None or plastic else None
        # A plastic layer reads the sweep's group again where the memory answers with the lanes'
        # outputs (neuron_taps) instead of delaying the stage-2 words: its counts here, its post
        # traces and thresholds in hdl.learning_engine. Outside the sweep (peek, WTA pass, state
        # reads) the read ports keep their addresses. Every word is read before its write-back.
        reread = [(sweep_taps[s], group_taps[s]) for s in range(NEURON_STAGES)] if plastic else None
        c_old = None
        if c_lanes is not None and plastic:
            with m.If(reread[NEURON_STAGES - 2][0]):
                m.d.comb += c_rd.addr.eq(reread[NEURON_STAGES - 2][1])
            c_old = c_lanes
        elif c_lanes is not None:
            c_old = data.ArrayLayout(unsigned(cb), P)(neuron_aligned(m, "count", c_data))
        # Lanes past the last neuron (n not a multiple of P) never fire.
        n_last = geo.n - (G - 1) * P
        lane_mask = Signal(P)
        m.d.comb += lane_mask.eq(Const((1 << P) - 1, P))
        with m.If(group_w == G - 1):
            m.d.comb += lane_mask.eq(Const((1 << n_last) - 1, P))
        lane_theta = None if self.learning is None else self.learning.thresholds(m, theta, rd_group, reread)
        for k in range(P):
            unit = LIFNeuronUnit(membrane_bits=V, acc_bits=V if self.i_mem is not None else geo.acc_bits,
                                 leak=layer.leak, reset=layer.reset, refractory=layer.refractory,
                                 readout=layer.readout)
            m.submodules[f"lane{k}"] = unit
            m.d.comb += [
                unit.v.eq(v_lanes[k]),
                unit.acc.eq(syn.acc[k]),
                unit.bias.eq(b_lanes[k]),
                unit.theta.eq(theta if lane_theta is None else lane_theta[k]),
            ]
            if self.i_mem is not None:  # the drive is the new current alone
                m.d.comb += [unit.acc.eq(current[k]), unit.bias.eq(0)]
            if r_lanes is not None:
                m.d.comb += unit.r.eq(r_lanes[k])
            with m.If(fresh_q):
                m.d.comb += [unit.v.eq(0), unit.r.eq(0)]
            m.d.comb += [
                v_new[k].eq(unit.v_next),
                r_new[k].eq(unit.r_next),
                word[k].eq(unit.spike & lane_mask[k]),
            ]
            if c_lanes is not None:
                m.d.comb += c_new[k].eq(c_old[k] + word[k])
                with m.If(fresh_w):
                    m.d.comb += c_new[k].eq(word[k])
        m.d.comb += [
            v_wr.addr.eq(group_w), v_wr.data.eq(v_new), v_wr.en.eq(sweep_w),
            self.spikes.valid.eq(sweep_w & (word != 0)), self.swept.eq(sweep_w),
            self.spikes.group.eq(group_w),
            self.spikes.word.eq(word),
        ]
        if self.r_mem is not None:
            m.d.comb += [r_wr.addr.eq(group_w), r_wr.data.eq(r_new), r_wr.en.eq(sweep_w)]
        if self.count_mem is not None:
            m.d.comb += [c_wr.addr.eq(group_w), c_wr.data.eq(c_new), c_wr.en.eq(sweep_w)]
        if self.learning is not None:
            self.learning.elaborate(
                m, syn=syn, start=self.start, learn_start=learn_start, reset_state=self.reset_state,
                learn=self.learn, ev_valid=self.events.valid & self.events.ready, ev_addr=self.events.payload,
                rd_group=rd_group, fresh_w=fresh_w, reread=reread, sweep_w=sweep_w, group_w=group_w, word=word,
                learning_phase=learning_phase, state=(layer_idle, self.state_addr, self.state_data),
                **({"reward": self.reward, "reward_start": self.reward_start} if elig else {}))
        if wta:
            m.d.comb += wta_done.eq(winner_take_all(
                m, self.learning, start=self.start, wta_start=wta_start, learn=self.learn,
                rd_group=rd_group, sweep_w=sweep_w, group_w=group_w, v_new=v_new, lane_mask=lane_mask,
                v_lanes=v_lanes, v_wr=v_wr, c_lanes=c_lanes, c_wr=c_wr if self.count_mem is not None else None,
                spikes=self.spikes))

        # Peek (idle): the same read ports, fresh groups read as zero.
        drive_peek(m, self, fresh_peek, peek_lane_q if lane_bits else 0, data.ArrayLayout(signed(V), P)(v_peek),
                   data.ArrayLayout(unsigned(rb), P)(r_peek) if r_peek is not None else None,
                   data.ArrayLayout(unsigned(cb), P)(c_peek) if c_peek is not None else None)

        # --- run-time configuration -------------------------------------------------------------
        drive_cfg(m, self, syn, b_wr, theta, lane_bits, P, V)

        # --- idle-time parameter reads: the weight and bias read ports are free while idle --------
        param_group = self.param_col[lane_bits:] if lane_bits else self.param_col
        param_lane_q = Signal(max(1, lane_bits))
        m.d.sync += param_lane_q.eq(self.param_col[:lane_bits] if lane_bits else 0)
        param_lane_q = late(m, param_lane_q, min(R, 1), "param_lane_q_r")
        m.d.comb += [syn.param_row.eq(self.param_row), syn.param_group.eq(param_group)]
        with m.If(~sweep_r):  # a registered select: the bias port is free outside the sweep
            m.d.comb += b_rd.addr.eq(param_group)
        drive_params(m, self, param_lane_q if lane_bits else 0, syn.w_word, data.ArrayLayout(signed(V), P)(b_param),
                     theta, R)
        return m
