"""Proof (b) of :mod:`spikegate.sim.formal_link`, the link never locks up: its harnesses and bounds.

One bounded model check from reset over every byte sequence and the whole recovery is beyond the
solver (208 steps did not finish in 14 minutes), so the property is split into checks that each
start from *any* state of a stated set, composed in README ("Formal proofs"):

- (b1) :class:`DecoderTimeoutProof`: the decoder alone under any inputs, by k-induction.
- (b2) :class:`TransactionProof`: from any hand-off of a frame or rejection to an idle back end,
  the answer's header is taken within :func:`take_bound` and leaves the link in
  :func:`answer_started`, except BATCH's, which streams its blocks while the engine runs the
  records: that whole transaction ends within :func:`batch_bound`; :class:`IdleHoldProof`: an idle back end stays idle without a hand-off.
- (b3) :class:`~.formal_link_drain.AnswerDrainProof`: from :func:`answer_started`, the decoder
  hunts again after exactly :func:`answer_rest` cycles with the back end idle, by k-induction.
- (b4) :class:`~.formal_link_identify.IdentifyProof`: a quiet link answers IDENTIFY like the twin.

(b2) and (b4) start from an arbitrary state (``prove(free_init=True)``) narrowed by assumptions that
the other checks establish for every reachable state.
"""
from __future__ import annotations

from amaranth.asserts import AnySeq, Initial
from amaranth.hdl import Assert, Assume, Cover, Elaboratable, Module, Mux, Signal

from amaranth.lib.data import View

from ..hdl.link.decoder import FrameDecoder
from ..hdl.link.signatures import ResponseInfo
from ..model import link as proto
from ..model.encode import InputEncoder
from ..model.protocol import (BATCH_HEADER, BATCH_RECORD, CHECKSUM_BYTES, CYCLE_BYTES, RESPONSE_HEADER, STATUS_LEN,
                              layout_len)
from .formal_link_rig import RUN_BOUND, LinkProofConfig, LinkRig, no_reset
from .formal_probe import Probe


def answer_rest(n: int) -> int:
    """Cycles from the one after the encoder takes an answer header of ``n`` payload bytes to the
    first in which the decoder hunts again, on the abstract transmitter (a byte a cycle): the
    header's 5 bytes a cycle each, the payload 2 cycles a byte (the answer source fetches, then
    sends), the 2 CRC bytes, and the release. A real transmitter takes ``10 * divisor`` cycles a
    byte instead."""
    return RESPONSE_HEADER + (2 * n + 1 if n else 2)


def take_bound(config: LinkProofConfig) -> int:
    """Steps from a hand-off (step 0) by which the encoder has taken the answer's header: a cycle
    to take the frame and one to execute it, then at most two passes over a WRITE or LOAD payload
    (4 cycles a byte) and a run of at most :data:`RUN_BOUND`, or a checksum walk, or an ENCODE
    (``encode_cycles`` to its run's start, the run, the answer's offer). LEARN, REWARD and
    READ_STATE are answered UNSUPPORTED or BAD_LENGTH at once: the rig's network has no plastic layer
    (a plastic network's READ_STATE, an answer of up to 65,535 bytes streamed by the state reader, is
    outside these proofs; tests/test_link_learn.py checks it against the twin)."""
    return 3 + max(proto.checksum_cycles(config.net) + 2, 2 * 4 * config.max_payload + RUN_BOUND,
                   proto.encode_cycles(config.geo) + RUN_BOUND - 1)


def batch_records(config: LinkProofConfig) -> int:
    """The most BATCH records the payload buffer holds (0 when BATCH is refused on this geometry,
    ``model.link.batch_fits``: then it is answered like any error)."""
    geo = config.geo
    if not proto.batch_fits(geo):
        return 0
    return (config.max_payload - layout_len(BATCH_HEADER)) // (layout_len(BATCH_RECORD) + geo.n_in)


def batch_bound(config: LinkProofConfig) -> int:
    """Steps from a hand-off (step 0) to the decoder hunting again after a BATCH of
    :func:`batch_records` records, the longest: a cycle to take the frame, one to execute it, two
    to read the encoding byte; the first pass, per record a walk step, the state's bytes (2 cycles
    each) and a step to note it; a last walk step, and the answer's header is offered and taken
    (step 5 + 10 K here). Then per record: a step to the next, its state's bytes again, the
    encoder's start, ``model.encode.InputEncoder.cycles``, a step for the last word to leave the
    register on its way to the core, and a step that starts the run, the run
    (at most :data:`RUN_BOUND` cycles to ``done``), the answer block 2 cycles a byte; the CRC's 2
    bytes and the release. 0 without BATCH."""
    geo, k = config.geo, batch_records(config)
    if k == 0:
        return 0
    state_steps = 2 * layout_len(BATCH_RECORD)
    header_take = 3 + k * (state_steps + 2) + 2
    block = CYCLE_BYTES + geo.output_bytes
    per_record = 1 + state_steps + 1 + InputEncoder(geo.n_in, geo.timesteps).cycles + 1 + 1 + RUN_BOUND + 2 * block
    # Exact: the cover in (b2) reaches this step (66 in the proof's configuration). Before the link
    # timing commits 43b2f6f and 57af2f7 (the encoder is fed from a flag, its output handshake no
    # longer waits on the engine's state) a BATCH took one cycle more than this count, never located.
    return header_take + k * per_record + 3


def transaction_bound(config: LinkProofConfig) -> int:
    """Steps from a hand-off (step 0) to the decoder hunting again: the longest of the answers
    (IDENTIFY's 80 bytes) after the 3 cycles to take and execute the frame, or the longest
    execution (:func:`take_bound`) and its answer, or a BATCH (:func:`batch_bound`)."""
    geo = config.geo
    return max(1 + max(2 + answer_rest(geo.identify_len), 2 + answer_rest(STATUS_LEN),
                       take_bound(config) + answer_rest(max(CHECKSUM_BYTES, CYCLE_BYTES + geo.output_bytes))),
               batch_bound(config))


def idle_bound(config: LinkProofConfig) -> int:
    """Silent cycles after which the link is quiet whatever it was doing (``N``): ``frame_timeout``
    to end a frame (b1), its rejection's transaction (b2)."""
    return config.frame_timeout + transaction_bound(config)


class DecoderTimeoutProof(Elaboratable):
    """(b1): the decoder alone, every input free (bytes, line errors, the engine's and encoder's
    handshakes, the buffer address); k-induction. ``silent`` counts the cycles since the last
    byte (up to ``frame_timeout``).

    ``decoder``: one to check instead of ``FrameDecoder(max_payload, frame_timeout)`` (the negative
    test passes one built with a longer timeout)."""

    def __init__(self, config: LinkProofConfig, decoder: FrameDecoder | None = None):
        self.config = config
        self.decoder = decoder if decoder is not None else FrameDecoder(config.max_payload, config.frame_timeout)
        self.probe = Probe(self.decoder)

    def elaborate(self, platform):
        m = Module()
        no_reset(m)
        m.submodules.decoder = self.probe.fragment
        dec, p, ft = self.decoder, self.probe, self.config.frame_timeout
        for port in (dec.i.valid, dec.i.payload, dec.line_error, dec.frame.ready, dec.reject.ready, dec.release,
                     dec.buf.addr):
            m.d.comb += port.eq(AnySeq(len(port)))
        valid = dec.i.valid
        silent = Signal(range(ft + 1), name="silent")
        with m.If(valid):
            m.d.sync += silent.eq(0)
        with m.Elif(silent < ft):
            m.d.sync += silent.eq(silent + 1)
        receiving = Signal(name="receiving")
        m.d.comb += receiving.eq(dec.listening & ~dec.hunting)
        hunt_quiet = Signal(name="hunt_quiet")  # last cycle: hunting, no byte
        m.d.sync += hunt_quiet.eq(dec.hunting & ~valid)
        length, ptr = p["length"], p["ptr"]
        m.d.comb += [
            # The strengthening invariant: the counter counts exactly the silence and never reaches
            # frame_timeout inside a frame.
            Assert(~receiving | ((p["tcount"] == silent) & (silent < ft)), "the timeout counter is not the silence"),
            Assert(~(silent == ft) | ~receiving, "a frame is still open after frame_timeout silent cycles"),
            Assert(~hunt_quiet | dec.hunting, "the decoder stopped hunting without a byte"),
            Assert(~p.state("PAYLOAD", "CRC0", "CRC1", "FRAME") | (length <= self.config.max_payload),
                   "a frame's length exceeds max_payload"),
            Assert(~p.state("PAYLOAD") | (ptr < length), "the payload pointer passed the length"),
            Assert(~p.state("PAYLOAD") | (p["at_last"] == (ptr + 1 == length)),
                   "the last-byte flag is not ptr == length - 1"),
            Assert(~dec.frame.valid | (dec.frame.payload.length <= self.config.max_payload),
                   "an offered frame's length exceeds max_payload"),
            Cover(receiving & (silent == ft - 1)), Cover(dec.events.timeout), Cover(dec.frame.valid),
        ]
        return m


def _answer_len(rig):
    """The payload length of the header the encoder holds."""
    return View(ResponseInfo(), rig.enc.register("hdr")).length


def answer_started(rig):
    """The state in the cycle after the encoder took an answer header (of ``n`` payload bytes): the
    encoder at the header's first byte, the answer source about to fetch the first of its ``n``
    bytes (idle for none), the engine, checksum walker and core idle, the decoder waiting."""
    eng, n = rig.eng, _answer_len(rig)
    answer_ready = Mux(n == 0, eng.state("IDLE", fsm="answer.fsm"),
                       eng.state("FETCH", fsm="answer.fsm") & (eng.register("answer.idx") == 0)
                       & (eng.register("answer.idx1") == 1) & (eng.register("answer.length") == n))
    return (rig.enc.state("HDR") & (rig.enc.register("idx") == 0) & (rig.enc.register("count") == 0)
            & answer_ready & rig.dec.state("WAIT") & eng.state("IDLE") & eng.state("IDLE", fsm="checksum.fsm")
            & ~rig.running)


def answer_rest_of(n):
    """:func:`answer_rest` of the value ``n``, in gateware."""
    return RESPONSE_HEADER + Mux(n == 0, 2, 2 * n + 1)


class TransactionProof(Elaboratable):
    """(b2), the execution: from any state in which the decoder offers a frame or rejection and
    the back end is idle, any line input: by step :func:`take_bound` the encoder has taken the
    answer's header, the decoder waiting since step 1; in the cycle after, the link is in
    :func:`answer_started` and the answer leaves time to hunt again by step ``bound`` (that is,
    take step + 1 + :func:`answer_rest` <= ``bound``; (b3) shows the answer takes that long).
    A BATCH's header is taken while the engine still has its records to run and their blocks to
    stream (``batch_take``): then the decoder waits until it hunts again, by step
    :func:`batch_bound` (and ``bound``), the back end idle in that step.
    Step 0 is the hand-off; each check is recorded when it happens and asserted at the last step
    (the only step the solver is asked about)."""

    def __init__(self, config: LinkProofConfig, *, bound: int | None = None, batch_cover: bool = True):
        self.rig = LinkRig(config, free_core=True, run_bound=RUN_BOUND)
        self.bound = transaction_bound(config) if bound is None else bound
        self.batch_bound = batch_bound(config)
        self.batch_cover = batch_cover
        self.depth = max(take_bound(config), self.batch_bound + 1) + 1  # a hunt is recorded a step later

    def elaborate(self, platform):
        m = Module()
        no_reset(m)
        m.submodules.rig = rig = self.rig
        dec, p = rig.decoder, rig.dec
        m.d.comb += [rig.byte.eq(AnySeq(8)), rig.valid.eq(AnySeq(1)), rig.line_error.eq(AnySeq(1))]
        last_step = self.depth - 1
        step = Signal(range(last_step + 1), name="step")
        with m.If(step < last_step):
            m.d.sync += step.eq(step + 1)
        took, checked, bad = Signal(name="took"), Signal(name="checked"), Signal(name="bad_take")
        take_step = Signal.like(step, name="take_step")
        not_waiting = Signal(name="not_waiting")
        batch, hunted, bad_hunt = Signal(name="batch_take"), Signal(name="hunted"), Signal(name="bad_hunt")
        hunt_step = Signal.like(step, name="hunt_step")
        with m.If(~took & rig.enc.state("IDLE") & (dec.reject.valid | rig.engine.resp.valid)):
            m.d.sync += [took.eq(1), take_step.eq(step), batch.eq(~dec.reject.valid & rig.eng.state("B_HDR"))]
        with m.If(took & ~checked):
            m.d.sync += checked.eq(1)
            n = _answer_len(rig)
            with m.If(~batch & (~answer_started(rig) | (n > rig.eng.submodule("answer").max_len)
                                | (take_step + 1 + answer_rest_of(n) > self.bound))):
                m.d.sync += bad.eq(1)
        with m.If((step != 0) & ~checked & ~p.state("WAIT")):
            m.d.sync += not_waiting.eq(1)
        # BATCH: from the check on, the decoder waits until it hunts, and then the back end is idle.
        with m.If(checked & batch & ~hunted & ~p.state("WAIT")):
            m.d.sync += [hunted.eq(1), hunt_step.eq(step)]
            with m.If(~dec.hunting | ~rig.backend_idle):
                m.d.sync += bad_hunt.eq(1)
        last = step == last_step
        m.d.comb += [
            Assume(~Initial() | ((step == 0) & ~took & ~checked & ~bad & ~not_waiting & ~batch & ~hunted & ~bad_hunt)),
            # The hand-off, from any state that (b1) and the composition allow.
            Assume(~Initial() | (rig.backend_idle & (dec.frame.valid | dec.reject.valid)
                                 & (~p.state("CRC1", "FRAME") | (p["length"] <= rig.config.max_payload)))),
            Assert(~last | ~not_waiting, "the decoder left WAIT before the answer"),
            Assert(~last | checked, "the encoder took no answer header within take_bound"),
            Assert(~last | ~bad, "after the take the link is not ready to answer, or the answer is too long"),
            Assert(~last | ~batch | (hunted & ~bad_hunt),
                   "after BATCH the decoder left WAIT other than to hunt, or not with an idle back end, or too late"),
            Assert(~last | ~batch | ((hunt_step <= self.batch_bound) & (hunt_step <= self.bound)),
                   "BATCH's transaction outlasts batch_bound"),
            # Not vacuous: rejections and frames are handed off, runs start and writes are applied.
            Cover((step == 0) & dec.reject.valid), Cover((step == 0) & dec.frame.valid),
            Cover(rig.engine.start), Cover(rig.engine.cfg.valid & rig.engine.cfg.ready),
        ]
        if self.batch_cover:
            # ...and the longest BATCH takes every step of batch_bound (the deepest cover by far:
            # most of the cover run's minute and a half).
            m.d.comb += Cover(hunted & (hunt_step == self.batch_bound))
        return m


class IdleHoldProof(Elaboratable):
    """(b2), second part: from any state with an idle back end and no hand-off (nothing offered by
    the decoder), the back end is still idle a cycle later, whatever the line does."""

    def __init__(self, config: LinkProofConfig):
        self.rig = LinkRig(config, free_core=True, run_bound=RUN_BOUND)

    def elaborate(self, platform):
        m = Module()
        no_reset(m)
        m.submodules.rig = rig = self.rig
        m.d.comb += [rig.byte.eq(AnySeq(8)), rig.valid.eq(AnySeq(1)), rig.line_error.eq(AnySeq(1))]
        first = Signal(name="first", init=1)
        m.d.sync += first.eq(0)
        m.d.comb += [
            Assume(~Initial() | (first & rig.backend_idle & ~rig.decoder.frame.valid & ~rig.decoder.reject.valid)),
            Assert(first | rig.backend_idle, "the back end left idle without a hand-off"),
        ]
        return m
