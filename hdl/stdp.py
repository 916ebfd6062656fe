"""Pair STDP's weight arithmetic in the gateware: the contract's change D of one lane
(:func:`stdp_change`, shared with hdl.eligibility) and the ``rule = "stdp"`` weight
read-modify-write of the learning engine's event and word passes (:func:`stdp_writes`; timing in
:mod:`spikegate.hdl.learning_engine`). Twin arithmetic: :mod:`spikegate.model.learning_rules`."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed, unsigned
from amaranth.lib import data

from .synapse import word_address

__all__ = ["stdp_change", "depression", "stdp_writes"]


def _nonneg(x):
    """An unsigned value as a signed one of the same magnitude."""
    return Cat(x, Const(0, 1)).as_signed()


def stdp_writes(m, eng, syn, issue, kind_a, row, grp, spk, pre_rd, learn_g_r, lo, hi):
    """rule "stdp": the weight read-modify-write of the event and word passes of ``eng`` (a
    LearningEngine): issued at c, the word answers at c + 2, the new word is written at c + 3."""
    geo, p = eng.geo, eng.p
    P, G, tb, wb = geo.lanes, geo.groups, geo.learning.trace_bits, geo.weight_bits
    stage_r = {"valid": 1, "kind_a": 1, "row": geo.addr_bits, "grp": geo.group_bits, "word": P,
               "q": data.ArrayLayout(unsigned(tb), P)}
    r = Signal(data.StructLayout(stage_r))
    m.d.sync += [r.valid.eq(issue), r.kind_a.eq(kind_a), r.row.eq(row), r.grp.eq(grp),
                 r.word.eq(spk.word), r.q.eq(spk.q)]
    m.d.comb += learn_g_r.eq(r.grp)
    q2 = Signal(data.StructLayout({**stage_r, "pre": tb, "x": 1}))
    m.d.sync += [getattr(q2, f).eq(getattr(r, f)) for f in stage_r]
    m.d.sync += [q2.pre.eq(pre_rd.data[:tb]), q2.x.eq(pre_rd.data[tb])]

    w_old = syn.w_word
    qb = eng.q_lanes
    new = Signal(data.ArrayLayout(signed(wb), P))
    for k in range(P):
        w = w_old[k]
        d_a = stdp_change(p, w, q2.pre, q2.x, q2.word[k], q2.q[k])
        d_b = -depression(p, qb[k])
        total = w + Mux(q2.kind_a, d_a, d_b)
        m.d.comb += new[k].eq(Mux(total < lo, lo, Mux(total > hi, hi, total)))
    skip = ~q2.kind_a & (eng.spiked >> q2.grp)[0]
    u_valid = Signal()
    u_addr = Signal(len(syn.l_addr))
    u_data = Signal(P * wb)
    m.d.sync += [u_valid.eq(q2.valid & ~skip), u_addr.eq(word_address(q2.row, G, q2.grp)), u_data.eq(new)]
    m.d.comb += [syn.l_en.eq(u_valid), syn.l_addr.eq(u_addr), syn.l_data.eq(u_data)]


def depression(p, q):
    """(a_minus * Q') >>> rate_shift of one lane's decayed post trace (unsigned, as a signed value)."""
    return _nonneg((q * p.a_minus) >> p.rate_shift)


def stdp_change(p, w, pre, x, y, q):
    """The contract's D[i, j] of one lane: potentiation (pre trace ``pre``, old weight ``w`` for
    weight_decay) if the neuron fired (``y``), minus depression (decayed post trace ``q``) if the
    input did (``x``)."""
    pot = _nonneg((pre * p.a_plus) >> p.rate_shift) - p.ltp_offset
    wdep = (w >> p.weight_decay) if p.weight_decay else Const(0)
    return Mux(y, pot - wdep, 0) - Mux(x, depression(p, q), 0)
