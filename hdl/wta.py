"""Winner-take-all of k winners (``plasticity.wta = k``) in a plastic layer's core.

Twin: :meth:`spikegate.model.layer.LayerCore._step_wta` (the contract's neuron update with
competition, model.lif.neuron_update). The sweep runs with every lane's threshold at the largest
membrane value, so no lane fires: every membrane is written back as sat(leak(v) + drive), post
traces and offsets as decayed only. From each write-back's lanes, registered as candidates, the
sweep also keeps the k winners a cycle later: the largest v - theta_j among the lanes above their
threshold, the lowest index on ties (a sorted list of k slots; groups come in ascending order, so a
later neuron goes ahead of a kept one only when strictly larger). With k = 1 a group's best lane
comes from a tree of log2(P) comparisons; k > 1 inserts the lanes one after the other.

After the drain, the WTA pass reads one group a cycle (the winner's group alone with k = 1 and no
inhibition, every group otherwise) at the stage-1 address and writes it back the next cycle: the
winners' membranes reset (zero, or minus their thresholds), their spike word (to the next layer,
the monitor and the spike counts), their post traces and threshold offsets bumped and the spike
word recorded for stage 5; with a winner, the others reset to 0 or reduced by ``inhibit``. Cycles:
``wta_issues + WTA_DRAIN`` (:meth:`spikegate.model.layer.LearningGeometry.wta_cycles`). No
refractory period (HardwareConfig.geometry refuses one with winner-take-all), so every neuron
that did not win is inhibited.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed
from amaranth.lib import data

__all__ = ["winner_take_all"]


def winner_take_all(m, eng, *, start, wta_start, learn, rd_group, sweep_w, group_w, v_new, lane_mask,
                    v_lanes, v_wr, c_lanes, c_wr, spikes):
    """Add the winner search and the WTA pass to module ``m``; returns the pass's ``done`` pulse.
    ``eng`` is the layer's :class:`~spikegate.hdl.learning_engine.LearningEngine` (after its
    ``thresholds`` and ``elaborate``), the other arguments the layer's signals and ports."""
    geo, p, layer = eng.geo, eng.p, eng.layer
    P, G, V = geo.lanes, geo.groups, geo.membrane_bits
    lo = -(1 << (V - 1))
    lane_bits = max(1, (P - 1).bit_length())

    # --- the k winners, found the cycle after the sweep's write-back -----------------------------
    # A list of K slots, sorted by margin v - theta (largest first; valid slots before empty ones).
    # Each slot keeps its neuron's threshold too: a winner's reset subtracts the threshold of the
    # start of the step, and the offsets memory holds the decayed offsets by the time the WTA pass
    # reads it. Each written-back lane's candidate is registered first, so the neuron's last stage
    # and the threshold subtraction are not in series with the search (the path that set fmax).
    # The slots are then final one cycle later than the write-back, at the WTA pass's first
    # issue: the pass reads them no earlier (see the FSM), so its cycles stay as they were.
    K = p.wta
    slot = data.StructLayout({"valid": 1, "margin": signed(V + 2), "group": geo.group_bits, "lane": lane_bits,
                              "theta": signed(V)})
    best = [Signal(slot, name=f"wta_slot{s}") for s in range(K)]
    cands = []
    for k in range(P):
        cand = Signal(slot, name=f"wta_cand{k}")
        m.d.sync += [cand.valid.eq(sweep_w & lane_mask[k] & (v_new[k] > eng.real_theta[k])),
                     cand.margin.eq(v_new[k] - eng.real_theta[k]), cand.group.eq(group_w), cand.lane.eq(k),
                     cand.theta.eq(eng.real_theta[k])]
        cands.append(cand)
    # Of equal margins the one seen first stays ahead: the lower lane in a group, and any kept slot
    # over a later group's lane (groups come in ascending order), so a later candidate goes ahead
    # only when strictly larger. Merging with no valid candidate leaves the slots as they are.
    merged = _merge_one(m, best[0], cands) if K == 1 else _insert_serially(m, best, cands)
    m.d.sync += [b.eq(c) for b, c in zip(best, merged)]
    with m.If(start):
        m.d.sync += [b.valid.eq(0) for b in best]

    # --- the WTA pass ------------------------------------------------------------------------------
    # With inhibition, or more than one winner, the pass visits every group in order (so a group's
    # winners leave as one spike word, in group order); one winner without inhibition: its group.
    inhibit_all = p.inhibition != "none"
    visit_all = inhibit_all or K > 1
    wg = Signal(geo.group_bits)
    issuing = Signal()
    end = Signal(range(3))
    done = Signal(name="wta_done")
    with m.FSM(name="wta_fsm"):
        with m.State("IDLE"):
            with m.If(wta_start):
                m.d.sync += wg.eq(0)
                m.next = "ISSUE"
        with m.State("ISSUE"):
            m.d.comb += issuing.eq(1)
            if visit_all:
                m.d.sync += wg.eq(wg + 1)
                with m.If(wg == G - 1):
                    m.next = "END"
            else:
                m.next = "END"
        with m.State("END"):
            m.d.sync += end.eq(end + 1)
            with m.If(end == 1):
                m.d.sync += end.eq(0)
                m.d.comb += done.eq(1)
                m.next = "IDLE"
    # One winner alone: its group, read from the slot at the issue (not at wta_start: the last
    # write-back's candidates reach the slot only then).
    issue_group = wg if visit_all else best[0].group
    with m.If(issuing):
        m.d.comb += rd_group.eq(issue_group)
    w_valid = Signal()
    w_group = Signal(geo.group_bits)
    m.d.sync += [w_valid.eq(issuing), w_group.eq(issue_group)]

    # The group answers one cycle after its read: write it back.
    win = Signal(P)
    theta_win = []
    if K == 1:  # one slot: its lane in its group (a shift, no per-lane comparators)
        m.d.comb += win.eq(Mux(best[0].valid & (w_group == best[0].group), Const(1, P) << best[0].lane, 0))
        theta_win = [best[0].theta] * P
    for k in range(P if K > 1 else 0):
        match = [b.valid & (b.group == w_group) & (b.lane == k) for b in best]
        m.d.comb += win[k].eq(Cat(*match).any())
        theta = Signal(signed(V), name=f"wta_theta{k}")
        chosen = Const(0, signed(V))
        for hit, b in zip(match, best):  # (at most one slot holds a given neuron)
            chosen = Mux(hit, b.theta, chosen)
        m.d.comb += theta.eq(chosen)
        theta_win.append(theta)
    here = win != 0
    best_valid = best[0].valid
    v_out = Signal(data.ArrayLayout(signed(V), P))
    for k in range(P):
        v = v_lanes[k]
        fired = 0 if layer.reset == "zero" else v - theta_win[k]
        if p.inhibition == "reset":
            other = Mux(best_valid, 0, v)
        elif p.inhibition == "reduce":
            reduced = v - p.inhibit
            other = Mux(best_valid, Mux(reduced < lo, lo, reduced), v)
        else:
            other = v
        m.d.comb += v_out[k].eq(Mux(win[k], fired, other))
    with m.If(w_valid):
        m.d.comb += [v_wr.addr.eq(w_group), v_wr.data.eq(v_out), v_wr.en.eq(1),
                     spikes.valid.eq(win != 0), spikes.group.eq(w_group), spikes.word.eq(win)]
        if c_wr is not None:
            m.d.comb += [c_wr.addr.eq(w_group), c_wr.en.eq(1),
                         c_wr.data.eq(_lanes([c_lanes[k] + win[k] for k in range(P)], len(c_lanes[0])))]
        _learning_writes(m, eng, learn, w_group, win, here)
    return done


def _beats(later, kept):
    """``later`` (seen after ``kept``) goes ahead of it: valid and strictly larger, or ``kept`` empty."""
    return later.valid & (~kept.valid | (later.margin > kept.margin))


def _merge_one(m, kept, cands):
    """One winner (K = 1): the slot or the best of the P candidates, as the serial insertion of the
    candidates in lane order would leave it, with log2(P) comparisons in series instead of P. Each
    candidate is compared with the slot in parallel with the tree, and the flag travels up with it."""
    level = [(c, _beats(c, kept)) for c in cands]
    depth = 0
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            (lo_c, lo_b), (hi_c, hi_b) = level[i], level[i + 1]
            pick = _beats(hi_c, lo_c)
            c = Signal(lo_c.shape(), name=f"wta_tree{depth}_{i // 2}")
            b = Signal(name=f"wta_tree{depth}_{i // 2}_beats")
            m.d.comb += [c.eq(Mux(pick, hi_c, lo_c)), b.eq(Mux(pick, hi_b, lo_b))]
            nxt.append((c, b))
        level, depth = nxt, depth + 1
    top, top_beats = level[0]
    return [Mux(top_beats, top, kept)]


def _insert_serially(m, best, cands):
    """K > 1: the candidates inserted one after the other in lane order, each before the first
    slot it beats (the slots below shift down one)."""
    cur, K = best, len(best)
    for k, cand in enumerate(cands):
        beats = [_beats(cand, c) for c in cur]
        nxt = [Signal(best[0].shape(), name=f"wta_ins{k}_{s}") for s in range(K)]
        for s in range(K):
            m.d.comb += nxt[s].eq(Mux(beats[s], Mux(beats[s - 1], cur[s - 1], cand) if s else cand, cur[s]))
        cur = nxt
    return cur


def _lanes(values, width):
    """P lane values packed into one memory word, ``width`` bits each."""
    return Cat(*[v[:width] for v in values])


def _learning_writes(m, eng, learn, w_group, win, here):
    """The winner's post trace and offset bumped, its spike word recorded for stage 5 (learning on);
    the memories hold the sweep's decayed values, so a bump is the contract's decay-then-add."""
    geo, p = eng.geo, eng.p
    P, G, tb = geo.lanes, geo.groups, geo.learning.trace_bits
    top = (1 << tb) - 1
    q_new = Signal(data.ArrayLayout(signed(tb + 2), P))
    for k in range(P):
        bumped = eng.q_lanes[k] + Mux(win[k], p.post_inc, 0)
        m.d.comb += q_new[k].eq(Mux(bumped > top, top, bumped))
    m.d.comb += [eng.post_wr.addr.eq(w_group), eng.post_wr.data.eq(_lanes([q_new[k] for k in range(P)], tb)),
                 eng.post_wr.en.eq(learn),
                 # (an rstdp layer's spike-word memory is addressed by group, hdl.eligibility)
                 eng.spk_wr.addr.eq(w_group if eng.elig_mem is not None else eng.n_spk),
                 eng.spk_wr.data.group.eq(w_group), eng.spk_wr.data.word.eq(win),
                 eng.spk_wr.data.q.eq(eng.q_lanes), eng.spk_wr.en.eq(learn & here)]
    with m.If(learn & here):
        m.d.sync += [eng.n_spk.eq(eng.n_spk + 1), eng.spiked.eq(eng.spiked | (Const(1, G) << w_group))]
    if eng.off_lanes is not None:
        ob = geo.learning.offset_bits
        off_top = p.offset_max(eng.layer)
        bumped = [eng.off_lanes[k] + Mux(win[k], p.theta_inc, 0) for k in range(P)]
        m.d.comb += [eng.off_wr.addr.eq(w_group), eng.off_wr.en.eq(learn),
                     eng.off_wr.data.eq(_lanes([Mux(b > off_top, off_top, b) for b in bumped], ob))]
