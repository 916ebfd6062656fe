"""Learning engine: stage 5 of a plastic layer's step (pair STDP), in the layer's own memories.

Twin: :class:`spikegate.model.learning_engine.LearningEngine` (what is computed and why each weight
word is written at most once per step); cycles: :meth:`spikegate.model.layer.LearningGeometry.cycles`.

Memories beside the weights (block RAM): ``pre_mem`` (n_in words: pre trace and the step's spike
flag), ``post_mem`` (G words of P post traces, decayed and bumped by the sweep when learning is
on), ``ev_mem`` (the step's input events, recorded while they are integrated) and ``spk_mem`` (the
step's non-zero spike words with their decayed post traces Q'). After the layer's drain, with
``learn`` high, the engine runs WALK (n_in cycles), then per event EVREAD + EVISSUE (1 + G cycles
with depression, 1 + 1 without), then per spike word SPREAD + POTISSUE (1 + n_in cycles, when any
weight can change), then FINISH (LEARN_DRAIN cycles) and pulses ``done``. With the weights in SPRAM
(one port) a pass issues every other cycle and FINISH is one cycle longer
(``LearningGeometry.cycles``; the synapse array delays the write by a cycle).

A weight update is a read-modify-write of one P-lane word through the synapse array: issued at
cycle c (OP_LEARN: the issue register, as for integration), the word answers at c + 2, the new
word is computed and registered, and written at c + 3.

An rstdp layer (``geo.learning.elig_bits``) touches no weight in the event pass and has no word
pass: after the events (and one idle cycle in which the last pre-trace write lands) the
eligibility sweep of :mod:`spikegate.hdl.eligibility` visits every synapse word (n_in * G
cycles), then FINISH waits ELIG_DRAIN cycles. Its spike-word memory is addressed by group (every
group's word and Q', zero words included). While idle, ``reward_start`` runs the same sweep as
a per-sample reward.

This is not a Component: it adds its logic to the layer's module (:meth:`elaborate`), because it
shares the layer's synapse ports, sweep pipeline and state machine.
"""
from __future__ import annotations

from functools import partial

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ..model.layer import NEURON_STAGES, LayerGeometry
from ..model.network import Layer
from ..model.synapse import pack_lanes
from .eligibility import eligibility_memory, eligibility_sweep
from .learning_state import state_read
from .stdp import stdp_change, stdp_writes
from .synapse import BLOCK_RAM_NO_COLLISION, OP_LEARN

__all__ = ["LearningEngine"]


def _signal(m, value, width, name):
    sig = Signal(signed(width), name=name)
    m.d.comb += sig.eq(value)
    return sig


def _delay(m, value, n, name):
    for s in range(n):
        reg = Signal.like(value, name=f"{name}_d{s + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class LearningEngine:
    def __init__(self, layer: Layer, geo: LayerGeometry):
        self.layer, self.geo, self.p = layer, geo, layer.plasticity
        lg = geo.learning
        P, G, tb = geo.lanes, geo.groups, lg.trace_bits
        self.pre_mem = Memory(shape=unsigned(tb + 1), depth=geo.n_in, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        self.post_mem = Memory(shape=unsigned(P * tb), depth=G, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        self.ev_mem = Memory(shape=unsigned(geo.addr_bits), depth=geo.n_in, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        self.spk_layout = data.StructLayout({"group": geo.group_bits, "word": P,
                                             "q": data.ArrayLayout(unsigned(tb), P)})
        self.spk_mem = Memory(shape=self.spk_layout, depth=G, init=[], attrs=BLOCK_RAM_NO_COLLISION)
        # Threshold offsets (adaptive thresholds): learned state, initialised from the network.
        ob = lg.offset_bits
        self.off_mem = None
        if ob:
            offs = list(self.p.offsets_for(layer)) + [0] * (G * P - layer.n)
            self.off_mem = Memory(shape=unsigned(P * ob), depth=G, attrs=BLOCK_RAM_NO_COLLISION,
                                  init=[pack_lanes(offs[g * P:(g + 1) * P], ob) for g in range(G)])
        self.elig_mem = eligibility_memory(geo) if lg.elig_bits else None
        self.done = Signal(name="learn_done")
        self.theta = self.real_theta = None   # set by thresholds()

    def thresholds(self, m, theta, rd_group, reread):
        """Per-lane thresholds theta + offset of the group the sweep reads at stage 1 (``rd_group``),
        for the neuron lanes' inputs: a lane compares with its theta in stage 3, NEURON_STAGES - 2
        registers later, so they are delayed as much. None without offsets and
        winner-take-all. In a winner-take-all layer the lanes get the largest threshold instead (the
        sweep never fires; hdl.wta fires the winner) and ``real_theta`` keeps the thresholds, aligned
        with the lanes' outputs: the offsets are read again, with the sweep's group one stage
        before (``reread``: the layer's (sweep, group) flags per stage, hdl.neuron.neuron_taps),
        and theta + offset registered, instead of delaying theta + offset by NEURON_STAGES."""
        geo = self.geo
        P, V, ob = geo.lanes, geo.membrane_bits, geo.learning.offset_bits
        self.off_lanes = None
        self.theta, self.real_theta = theta, None
        if self.off_mem is not None:
            m.submodules.off_mem = self.off_mem
            self.off_rd = rd = self.off_mem.read_port()
            m.d.comb += rd.addr.eq(rd_group)
            self.off_lanes = data.ArrayLayout(unsigned(ob), P)(rd.data)
        elif not geo.learning.wta_issues:
            return None
        sums = [_signal(m, theta + self.off_lanes[k] if self.off_lanes is not None else theta, V, f"theta{k}")
                for k in range(P)]
        if not geo.learning.wta_issues:
            return [_delay(m, t, NEURON_STAGES - 2, f"theta{k}") for k, t in enumerate(sums)]
        if self.off_mem is not None:
            sweep_r, group_r = reread[NEURON_STAGES - 3]
            with m.If(sweep_r):
                m.d.comb += self.off_rd.addr.eq(group_r)
        self.real_theta = [_delay(m, t, 1, f"theta{k}_w") for k, t in enumerate(sums)]
        return [Const((1 << (V - 1)) - 1, signed(V))] * P

    def elaborate(self, m, *, syn, start, learn_start, reset_state, learn, ev_valid, ev_addr, rd_group,
                  fresh_w, reread, sweep_w, group_w, word, learning_phase, state, reward=None, reward_start=None):
        """Add the engine to module ``m``. Inputs are the layer's signals: ``start`` (the layer's
        step starts), ``learn_start`` (drain over, learning on), ``ev_valid``/``ev_addr`` (an
        event is consumed), ``rd_group`` (stage 1 group of the sweep), ``fresh_w`` (the fresh flag at write-back),
        ``reread`` (the (sweep, group) flags of each stage, hdl.neuron.neuron_taps),
        ``sweep_w``/``group_w``/``word`` (the sweep's write-back), ``learning_phase`` (the layer
        is in its learning state; the engine owns the synapse issue then), ``state`` (the layer is
        idle, its ``state_addr`` and ``state_data``: hdl.learning_state); rstdp: ``reward`` (R) and
        ``reward_start`` (idle: run a per-sample reward sweep)."""
        geo, p = self.geo, self.p
        P, G, n_in, tb = geo.lanes, geo.groups, geo.n_in, geo.learning.trace_bits
        depress, word_pass = geo.learning.depress, geo.learning.word_pass
        elig = self.elig_mem is not None
        drain = geo.learning.drain(geo)
        top = (1 << tb) - 1
        lo, hi = p.weight_bounds(self.layer)
        for name, mem in (("pre_mem", self.pre_mem), ("post_mem", self.post_mem), ("ev_mem", self.ev_mem),
                          ("spk_mem", self.spk_mem)):
            m.submodules[name] = mem
        pre_rd, pre_wr = self.pre_mem.read_port(), self.pre_mem.write_port()
        post_rd, post_wr = self.post_mem.read_port(), self.post_mem.write_port()
        ev_rd, ev_wr = self.ev_mem.read_port(), self.ev_mem.write_port()
        spk_rd, spk_wr = self.spk_mem.read_port(), self.spk_mem.write_port()

        def decay(x, k):
            return (x - (x >> k))[:tb]

        # --- recording during integration and sweep ----------------------------------------------
        n_ev = Signal(range(n_in + 1))
        n_spk = Signal(range(G + 1))
        spiked = Signal(G)
        with m.If(start):
            m.d.sync += [n_ev.eq(0), n_spk.eq(0), spiked.eq(0)]
        m.d.comb += [ev_wr.addr.eq(n_ev), ev_wr.data.eq(ev_addr), ev_wr.en.eq(ev_valid & learn)]
        with m.If(ev_valid & learn):
            m.d.sync += n_ev.eq(n_ev + 1)

        # Post traces: read again at the sweep's write-back (the group one stage before it), decayed
        # (fresh groups read as 0), bumped by the group's spikes.
        learn_g_r = Signal(geo.group_bits)
        sweep_r, group_r = reread[NEURON_STAGES - 2]
        m.d.comb += post_rd.addr.eq(Mux(learning_phase, learn_g_r, Mux(sweep_r, group_r, rd_group)))
        q_lanes = data.ArrayLayout(unsigned(tb), P)(post_rd.data)
        q_w = Signal(data.ArrayLayout(unsigned(tb), P))
        for k in range(P):
            m.d.comb += q_w[k].eq(Mux(fresh_w, 0, decay(q_lanes[k], p.post_decay)))
        q_new = Signal(data.ArrayLayout(unsigned(tb), P))
        for k in range(P):
            bumped = q_w[k] + Mux(word[k], p.post_inc, 0)
            m.d.comb += q_new[k].eq(Mux(bumped > top, top, bumped))
        self.post_wr, self.spk_wr, self.q_lanes, self.n_spk, self.spiked = post_wr, spk_wr, q_lanes, n_spk, spiked
        m.d.comb += [post_wr.addr.eq(group_w), post_wr.data.eq(q_new), post_wr.en.eq(sweep_w & learn),
                     spk_wr.addr.eq(group_w if elig else n_spk), spk_wr.data.group.eq(group_w),
                     spk_wr.data.word.eq(word), spk_wr.data.q.eq(q_w),
                     spk_wr.en.eq(sweep_w & learn & ((word != 0) | elig))]
        with m.If(sweep_w & learn & (word != 0)):
            m.d.sync += [n_spk.eq(n_spk + 1), spiked.eq(spiked | (Const(1, G) << group_w))]

        if self.off_mem is not None:
            self._offsets(m, start, reset_state, learn, sweep_w, group_w, word)

        # --- stage 5 state machine -----------------------------------------------------------------
        pre_fresh = Signal()
        with m.If(reset_state):
            m.d.sync += pre_fresh.eq(1)
        i = Signal(range(max(n_in, 2)))
        e = Signal(range(n_in + 1))
        s = Signal(range(G + 1))
        g = Signal(range(max(G, 2)))
        fin = Signal(range(drain + 1))
        # SPRAM weights (one port): a pass issues a weight word every other cycle (LearningGeometry.cycles)
        spram = geo.weight_ram == "spram"
        gap = Signal()
        on = ~gap if spram else Const(1)  # this cycle may issue
        walk = Signal()
        bump = Signal()
        issue = Signal()
        kind_a = Signal()  # potentiation pass (otherwise depression pass)
        row = Signal(geo.addr_bits)
        grp = Signal(geo.group_bits)
        ea = Signal(len(syn.l_addr))     # rstdp: the sweep's word address i * G + g
        reward_mode = Signal()           # rstdp: this sweep is a per-sample reward
        elig_fresh = Signal()            # rstdp: no sweep since the run started, E reads as 0
        if elig:
            with m.If(reset_state):
                m.d.sync += elig_fresh.eq(1)
        ev_i = ev_rd.data
        spk = spk_rd.data
        m.d.comb += [ev_rd.addr.eq(e), spk_rd.addr.eq(s), pre_rd.addr.eq(i)]

        def after_events():
            if elig:
                m.next = "EGAP"
            elif word_pass:
                with m.If(n_spk != 0):
                    m.d.sync += [s.eq(0), i.eq(0)]
                    m.next = "SPREAD"
                with m.Else():
                    finish()
            else:
                finish()

        def finish():
            m.next = "FINISH"

        def next_item(counter, count, again, then):
            """The last cycle of an item of a list: on to the next one, or ``then`` after the last."""
            m.d.sync += counter.eq(counter + 1)
            with m.If(counter + 1 != count):
                m.next = again
            with m.Else():
                then()

        with m.FSM(name="learn_fsm"):
            with m.State("IDLE"):
                with m.If(learn_start):
                    m.d.sync += i.eq(0)
                    m.next = "WALK"
                if elig:
                    with m.Elif(reward_start):
                        m.d.sync += [i.eq(0), g.eq(0), ea.eq(0), reward_mode.eq(1)]
                        m.next = "ESWEEP"
            with m.State("WALK"):
                m.d.comb += walk.eq(1)
                m.d.sync += i.eq(i + 1)
                with m.If(i == n_in - 1):
                    m.d.sync += [e.eq(0), i.eq(0)]
                    with m.If(n_ev != 0):
                        m.next = "EVREAD"
                    with m.Else():
                        after_events()
            with m.State("EVREAD"):
                m.d.sync += g.eq(0)
                m.next = "EVISSUE"
            with m.State("EVISSUE"):
                m.d.comb += [pre_rd.addr.eq(ev_i), row.eq(ev_i), grp.eq(g), bump.eq(g == 0)]
                if depress:
                    m.d.comb += issue.eq(on)
                    m.d.sync += g.eq(g + on)
                    last = g == G - 1
                    if spram:
                        last = last & on
                        m.d.sync += gap.eq(on & ~last)
                else:
                    last = Const(1)
                with m.If(last):
                    next_item(e, n_ev, "EVREAD", after_events)
            with m.State("SPREAD"):
                m.d.sync += i.eq(0)
                m.next = "POTISSUE"
            with m.State("POTISSUE"):
                m.d.comb += [issue.eq(on), kind_a.eq(1), row.eq(i), grp.eq(spk.group)]
                m.d.sync += i.eq(i + on)
                with m.If((i == n_in - 1) & on if spram else i == n_in - 1):
                    next_item(s, n_spk, "SPREAD", finish)
                if spram:
                    with m.Else():
                        m.d.sync += gap.eq(on)
            if elig:
                with m.State("EGAP"):  # the last pre-trace write lands
                    m.d.sync += [i.eq(0), g.eq(0), ea.eq(0)]
                    m.next = "ESWEEP"
                with m.State("ESWEEP"):
                    m.d.comb += [issue.eq(1), row.eq(i), grp.eq(g), spk_rd.addr.eq(g)]
                    m.d.sync += [g.eq(g + 1), ea.eq(ea + 1)]
                    with m.If(g == G - 1):
                        m.d.sync += [g.eq(0), i.eq(i + 1)]
                        with m.If(i == n_in - 1):
                            finish()
            with m.State("FINISH"):
                m.d.sync += fin.eq(fin + 1)
                with m.If(fin == drain - 1):
                    m.d.sync += fin.eq(0)
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                    if elig:
                        m.d.sync += reward_mode.eq(0)
                        with m.If(~reward_mode):
                            m.d.sync += elig_fresh.eq(0)

        # --- pre traces: the walk decays (read at c, written at c + 1), an event bumps ------------
        walk_q, bump_q = Signal(), Signal()
        addr_q = Signal(geo.addr_bits)
        m.d.sync += [walk_q.eq(walk), bump_q.eq(bump & learning_phase), addr_q.eq(pre_rd.addr)]
        pre_p = pre_rd.data[:tb]
        bumped = pre_p + p.pre_inc
        m.d.comb += pre_wr.addr.eq(addr_q)
        with m.If(walk_q):
            m.d.comb += [pre_wr.data.eq(Mux(pre_fresh, 0, decay(pre_p, p.pre_decay))), pre_wr.en.eq(1)]
        with m.If(bump_q):
            m.d.comb += [pre_wr.data.eq(Cat(Mux(bumped > top, top, bumped)[:tb], Const(1, 1))), pre_wr.en.eq(1)]
        with m.If(walk_q & ~walk):
            m.d.sync += pre_fresh.eq(0)

        # --- weight read-modify-write ----------------------------------------------------------------
        with m.If(issue):
            m.d.comb += [syn.op.eq(OP_LEARN), syn.addr.eq(row), syn.group.eq(grp)]
        e_rd = None
        if elig:
            e_rd = eligibility_sweep(m, self, syn=syn, issue=issue, addr=ea, pre_rd=pre_rd, spk=spk, reward=reward,
                                     reward_mode=reward_mode, fresh=elig_fresh, change=partial(stdp_change, p))
        else:
            stdp_writes(m, self, syn, issue, kind_a, row, grp, spk, pre_rd, learn_g_r, lo, hi)
        idle, addr, out = state
        state_read(m, self, idle=idle, addr=addr, out=out, pre_rd=pre_rd, post_rd=post_rd,
                   off_rd=self.off_rd if self.off_mem is not None else None, elig_rd=e_rd)

    def _offsets(self, m, start, reset_state, learn, sweep_w, group_w, word):
        """Step 6 of the contract at the sweep's write-back (learning on): decay on the steps with
        (t + 1) % theta_every == 0, add theta_inc per spike, saturate at the largest offset."""
        geo, p = self.geo, self.p
        P, ob = geo.lanes, geo.learning.offset_bits
        top = p.offset_max(self.layer)
        self.off_wr = wr = self.off_mem.write_port()
        V = geo.membrane_bits
        if self.real_theta is not None and ob <= V:
            # real_theta[k] is theta + the offset of the group written back, exactly what the
            # write-back needs, and theta holds still during a run (it is written only while the
            # core is idle): the offset comes back as a difference modulo 2**V, exact for an ob-bit
            # offset. That saves the delay line's P * ob * NEURON_STAGES flip-flops, fed by flip-flops
            # (a logic cell each on the iCE40), for P * ob subtracter cells.
            off_w = [(self.real_theta[k] - self.theta)[:ob] for k in range(P)]
        else:
            # (a winner-take-all layer reads the offsets again a stage before the write-back)
            later = 1 if self.real_theta is not None else NEURON_STAGES
            off_w = data.ArrayLayout(unsigned(ob), P)(_delay(m, self.off_rd.data, later, "offsets"))
        decay_now = Const(0)
        if p.theta_decay:
            decay_now = Const(1)
            if p.theta_every > 1:
                # t mod theta_every of the step being swept; the first layer start of a run makes it 0
                t_mod = Signal(range(p.theta_every), init=p.theta_every - 1)
                with m.If(reset_state):
                    m.d.sync += t_mod.eq(p.theta_every - 1)
                with m.Elif(start):
                    m.d.sync += t_mod.eq(Mux(t_mod == p.theta_every - 1, 0, t_mod + 1))
                decay_now = t_mod == p.theta_every - 1
        new = Signal(data.ArrayLayout(unsigned(ob), P))
        for k in range(P):
            o = off_w[k]
            kept = Mux(decay_now, o - (o >> p.theta_decay), o) if p.theta_decay else o
            total = kept + Mux(word[k], p.theta_inc, 0)
            m.d.comb += new[k].eq(Mux(total > top, top, total))
        m.d.comb += [wr.addr.eq(group_w), wr.data.eq(new), wr.en.eq(sweep_w & learn)]
