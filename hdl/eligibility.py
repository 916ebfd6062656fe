"""Reward-modulated STDP (``rule = "rstdp"``): the eligibility memory and its sweep, part of a
plastic layer's :class:`~spikegate.hdl.learning_engine.LearningEngine`.

Twin: :meth:`spikegate.model.learning_engine.LearningEngine.step` / ``.reward``; cycles:
:meth:`spikegate.model.layer.LearningGeometry.cycles` / ``.reward_cycles``.

The eligibility E[i, j] (signed, ``elig_bits``) sits in block RAM beside the weights, in their
layout: word ``i * G + g`` holds the P lanes of E[i, g*P : (g+1)*P]. Every E decays every step
(and a positive E below 2^elig_decay never reaches 0), so stage 5 of an rstdp layer is a sweep
over every synapse word, i outer, g inner (the word address is a counter). The pre traces come
from ``pre_mem`` (after WALK and the event bumps), the step's spike word and decayed post traces
Q' of group g from the spike-word memory, which an rstdp layer addresses by group. Per word,
issued at cycle c:

* c: the weight read (OP_LEARN, through the synapse array's issue register), ``pre_mem[i]``,
  ``spk_mem[g]``;
* c + 1: the eligibility read;
* c + 2: E' = sat_E(decay(E) + D) from the old weight (for ``weight_decay``), registered;
* c + 3: E' written; W + ((R * E') >>> reward_shift), saturated, registered;
* c + 4: the weight written, when R != 0 (``ELIG_DRAIN`` cycles after the last issue).

R is the layer's ``reward`` input. A per-sample reward runs the same sweep in reward mode: E is
kept (no decay, no D, no write) and only the weights change. Until the first sweep of a run, E
reads as 0 (the contract resets E between samples; no cycles are spent clearing it).
"""
from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.memory import Memory

from ..model.protocol import signed_range
from .synapse import BLOCK_RAM_NO_COLLISION

__all__ = ["eligibility_memory", "eligibility_sweep"]


def eligibility_memory(geo) -> Memory:
    """E in the weights' layout: n_in * G words of P signed ``elig_bits`` lanes."""
    eb = geo.learning.elig_bits
    return Memory(shape=unsigned(geo.lanes * eb), depth=geo.n_in * geo.groups, init=[],
                  attrs=BLOCK_RAM_NO_COLLISION)


def eligibility_sweep(m, eng, *, syn, issue, addr, pre_rd, spk, reward, reward_mode, fresh, change):
    """Add the sweep's pipeline to ``m``. ``issue``: a word is issued this cycle (its weight read
    is on the synapse array's op port); ``addr``: its address i * G + g; ``pre_rd``: the pre-trace
    port (addressed with i in the issue cycle); ``spk``: the spike-word memory's read data (addressed
    with g in the issue cycle); ``reward``: R; ``reward_mode``: a per-sample reward sweep;
    ``fresh``: E reads as 0; ``change(w, pre, x, y, q)``: the lane's STDP change D. Returns the
    eligibility read port (free while the layer is idle)."""
    geo, p = eng.geo, eng.p
    P, tb, eb, wb = geo.lanes, geo.learning.trace_bits, geo.learning.elig_bits, geo.weight_bits
    elo, ehi = signed_range(eb)
    lo, hi = p.weight_bounds(eng.layer)
    m.submodules.elig_mem = eng.elig_mem
    e_rd, e_wr = eng.elig_mem.read_port(), eng.elig_mem.write_port()
    lanes = lambda shape: data.ArrayLayout(shape, P)  # noqa: E731

    s1 = Signal(data.StructLayout({"valid": 1, "addr": len(addr)}))
    m.d.sync += [s1.valid.eq(issue), s1.addr.eq(addr)]
    m.d.comb += e_rd.addr.eq(s1.addr)
    s2 = Signal(data.StructLayout({"valid": 1, "addr": len(addr), "pre": tb, "x": 1, "word": P,
                                   "q": lanes(unsigned(tb))}))
    m.d.sync += [s2.valid.eq(s1.valid), s2.addr.eq(s1.addr), s2.pre.eq(pre_rd.data[:tb]), s2.x.eq(pre_rd.data[tb]),
                 s2.word.eq(spk.word), s2.q.eq(spk.q)]

    e_old = lanes(signed(eb))(e_rd.data)
    s3 = Signal(data.StructLayout({"valid": 1, "addr": len(addr), "e": lanes(signed(eb)), "w": lanes(signed(wb))}))
    m.d.sync += [s3.valid.eq(s2.valid), s3.addr.eq(s2.addr), s3.w.eq(syn.w_word)]
    for k in range(P):
        e = Mux(fresh, 0, e_old[k])
        total = e - (e >> p.elig_decay) + change(syn.w_word[k], s2.pre, s2.x, s2.word[k], s2.q[k])
        m.d.sync += s3.e[k].eq(Mux(reward_mode, e, Mux(total < elo, elo, Mux(total > ehi, ehi, total))))
    m.d.comb += [e_wr.addr.eq(s3.addr), e_wr.data.eq(s3.e), e_wr.en.eq(s3.valid & ~reward_mode)]

    w_new = Signal(lanes(signed(wb)))
    for k in range(P):
        total = s3.w[k] + ((reward * s3.e[k]) >> p.reward_shift)
        m.d.comb += w_new[k].eq(Mux(total < lo, lo, Mux(total > hi, hi, total)))
    u_valid = Signal()
    u_addr = Signal(len(syn.l_addr))
    u_data = Signal(P * wb)
    m.d.sync += [u_valid.eq(s3.valid & (reward != 0)), u_addr.eq(s3.addr), u_data.eq(w_new)]
    m.d.comb += [syn.l_en.eq(u_valid), syn.l_addr.eq(u_addr), syn.l_data.eq(u_data)]
    return e_rd
