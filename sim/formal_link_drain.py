"""Proof (b3) of :mod:`spikegate.sim.formal_link_live`: an answer under way ends, by k-induction."""
from __future__ import annotations

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assert, Assume, Elaboratable, Module, Mux, Signal

from ..model.protocol import RESPONSE_HEADER
from .formal_link_live import _answer_len, answer_rest, answer_rest_of, answer_started
from .formal_link_rig import RUN_BOUND, LinkProofConfig, LinkRig, no_reset


class AnswerDrainProof(Elaboratable):
    """(b3), the answer, by k-induction: from any state in :func:`answer_started` the decoder
    hunts again after exactly :func:`answer_rest` cycles, with the back end idle then, whatever
    the line does. ``budget`` counts the cycles left; the strengthening invariants tie the
    encoder's byte count to the answer source's and say it equals the cycles the state has left.
    ``slack`` is added to the budget (a negative one must fail); ``only_length`` restricts the
    start to answers of that many payload bytes (for a short check of a negative slack)."""

    def __init__(self, config: LinkProofConfig, *, slack: int = 0, only_length: int | None = None):
        self.rig = LinkRig(config, free_core=True, run_bound=RUN_BOUND)
        self.slack, self.only_length = slack, only_length

    def elaborate(self, platform):
        m = Module()
        no_reset(m)
        m.submodules.rig = rig = self.rig
        dec, enc, eng = rig.decoder, rig.enc, rig.eng
        m.d.comb += [rig.byte.eq(AnySeq(8)), rig.valid.eq(AnySeq(1)), rig.line_error.eq(AnySeq(1))]
        max_len = rig.eng.submodule("answer").max_len
        answering = Signal(name="answering")
        budget = Signal(range(answer_rest(max_len) + 1), name="budget")
        with m.If(dec.hunting):
            m.d.sync += answering.eq(0)
        with m.If(budget != 0):
            m.d.sync += budget.eq(budget - 1)
        n, count, idx = _answer_len(rig), enc.register("count"), enc.register("idx")
        at_last = enc.register("at_last")
        a_idx, a_len = eng.register("answer.idx"), eng.register("answer.length")
        a_idx1 = eng.register("answer.idx1")  # idx + 1, a flip-flop of its own
        a_idle, a_fetch = eng.state("IDLE", fsm="answer.fsm"), eng.state("FETCH", fsm="answer.fsm")
        a_send = eng.state("SEND", fsm="answer.fsm")
        left = n - count
        rank = Signal(range(answer_rest(max_len) + 1), name="rank")  # cycles this state has left
        with m.If(enc.state("HDR")):
            m.d.comb += rank.eq(RESPONSE_HEADER - idx + Mux(n == 0, 2, 2 * n + 1))
        with m.Elif(enc.state("DATA")):
            m.d.comb += rank.eq(2 * left + Mux(a_send, 1, 2))
        with m.Elif(enc.state("CRC0")):
            m.d.comb += rank.eq(2)
        with m.Elif(enc.state("CRC1")):
            m.d.comb += rank.eq(1)
        busy = answering & ~dec.hunting
        if self.only_length is not None:
            m.d.comb += Assume(~Initial() | (n == self.only_length))
        m.d.comb += [
            Assume(~Initial() | (answering & answer_started(rig) & (n <= max_len)
                                 & (budget == answer_rest_of(n) + self.slack))),
            Assert(~busy | (rig.dec.state("WAIT") & eng.state("IDLE") & eng.state("IDLE", fsm="checksum.fsm")
                            & ~rig.running & ~enc.state("IDLE") & (n <= max_len)),
                   "during the answer: the decoder waits, the rest of the back end is idle"),
            Assert(~busy | ~enc.state("HDR") | (idx < RESPONSE_HEADER) & (count == 0) & Mux(n == 0, a_idle, (a_len == n) & (a_idx == 0)
                                                   & (a_idx1 == 1) & (a_send | (a_fetch & (idx == 0))))),
            Assert(~busy | ~enc.state("DATA") | ((count < n) & (a_fetch | a_send) & (a_idx < a_len)
                                                 & (a_len - a_idx == left) & (a_idx1 == a_idx + 1)
                                                 & (at_last == (count + 1 == n)))),
            Assert(~busy | ~enc.state("CRC0", "CRC1") | a_idle),
            Assert(~busy | (budget == rank + self.slack), "the cycles left are not the budget"),
            Assert(~answering | ~dec.hunting | rig.backend_idle, "the decoder hunts while the back end is busy"),
            Assert(~busy | (budget != 0), "the answer is not over within its budget"),
        ]
        return m
