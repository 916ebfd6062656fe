"""ENCODE and BATCH, the on-chip encoder's commands (docs/protocol.md), as states of
:class:`~spikegate.hdl.link.engine.CommandEngine`'s FSM. Byte-level twin:
:meth:`spikegate.model.link.CommandEngine._encode` and ``_batch``."""
from amaranth.hdl import Cat, Signal

from ...model import link as proto
from ...model.protocol import BATCH_HEADER, BATCH_RECORD, CYCLE_BYTES, ENCODE_HEADER_LEN, Encoding, Status, layout_len
from .answer import Source
from .signatures import byte_zero

__all__ = ["EncodeCommands"]


class EncodeCommands:
    """Built inside the engine's ``elaborate`` with the registers the commands share (the payload
    buffer's read port ``brd``, its pointer ``ptr``, the frame's ``length`` and its registered tests
    ``length_test`` (:class:`~.registered_test.RegisteredTest`), the ``loaded`` word
    count, the second-pass flag ``apply``, the answer's ``status``, the ``answer`` source and the
    ``stat`` counters). The levels are read by the :class:`~spikegate.hdl.encode.InputEncoder` straight from the payload
    buffer; its words go to the core's ``load`` port."""

    def __init__(self, m, eng, geo, *, brd, ptr, length, length_test, loaded, apply, status, answer, stat):
        from ..encode import InputEncoder  # here: hdl.encode imports this package's signatures
        self.m, self.eng, self.geo = m, eng, geo
        self.brd, self.ptr, self.length, self.loaded, self.apply = brd, ptr, length, loaded, apply
        self.length_test = length_test
        self.status, self.answer, self.stat = status, answer, stat
        m.submodules.encoder = self.encoder = enc = InputEncoder(geo.n_in, geo.timesteps, geo.max_payload,
                                                                 eng.load.payload.shape(),
                                                                 registered=geo.registered_reads)
        # the header bytes shift in (no byte decoding): the encoding, then the state's 4 bytes
        self.code, self.state = Signal(8), Signal(8 * (ENCODE_HEADER_LEN - 1))
        m.d.comb += [enc.encoding.eq(self.code), enc.state.eq(self.state), enc.base.eq(ENCODE_HEADER_LEN),
                     enc.buf.data.eq(brd.data), enc.buf.small.eq(brd.small)]
        # state_bad from flip-flops (timing: ENCODE's check clears the core): which of the state's
        # 4 bytes are non-zero shifts in with them, and the code's flags follow the code a cycle
        # later (read at least 3 cycles after it is set: ENCODE's check follows the state's bytes,
        # BATCH's follows a record's walk).
        self.nonzero = Signal(ENCODE_HEADER_LEN - 1)
        bernoulli, self.code_bad = Signal(), Signal()
        m.d.sync += [bernoulli.eq(self.code == Encoding.BERNOULLI), self.code_bad.eq(self.code > max(Encoding))]
        self.state_bad = bernoulli == (self.nonzero == 0)
        # The encoder's words reach the core through a register (timing: its spike decision, from
        # the level just read, would otherwise run on into the core's load logic); it empties
        # outside the feeding states. Costs the last word one cycle (model.link.encode_cycles).
        self.held, self.held_valid = Signal.like(eng.load.payload), Signal()
        m.d.sync += self.held_valid.eq(0)
        # While the encoder feeds the core it owns the payload buffer's address, chosen by a
        # flip-flop (timing: not by the engine's state, in front of the encoder's address adder and
        # the buffer). Its output handshake does not depend on the state either: outside the
        # feeding states the encoder is idle and never offers a word.
        self.feeding = Signal()
        with m.If(self.feeding):
            m.d.comb += brd.addr.eq(enc.buf.addr)
        m.d.comb += enc.o.ready.eq(~self.held_valid | eng.load.ready)
        # BATCH: records of a state and n_in levels after the encoding byte, one answer block each
        self.rec_len = layout_len(BATCH_RECORD) + geo.n_in
        self.block = CYCLE_BYTES + geo.output_bytes
        self.total = Signal(range(((geo.max_payload // self.rec_len) + 1) * self.block + 1))
        self.bad, self.sent, self.j = Signal(), Signal(range(self.block)), Signal(2)
        # ``left``: the frame's bytes from the current record's start (at length - left) on. The
        # walk's tests come from flip-flops (timing: start + rec_len > length, an adder and a
        # compare in front of the next-state logic, was the Tang Nano 9K's critical path), each
        # taken in the cycle left moves, from the value it moves to.
        hdr = layout_len(BATCH_HEADER)
        self.left = Signal(range(-hdr, geo.max_payload + 1))
        self.at_end, self.short = Signal(), Signal()          # left == 0; left < rec_len
        self.walked, self.too_long = Signal(), Signal()       # total != 0; total > 0xFFFF

    def begin_encode(self, respond):
        m = self.m
        with m.If(self.length_test(lambda n: n != ENCODE_HEADER_LEN + self.geo.n_in)):
            respond(Status.BAD_LENGTH)
        with m.Else():
            m.next = "E_HDR_RD"

    def begin_batch(self):
        self._rewind()
        self.m.d.sync += [self.bad.eq(0), self.total.eq(0), self.walked.eq(0), self.too_long.eq(0), self.apply.eq(0)]
        self.m.next = "B_CODE_RD"

    def _rewind(self):
        """Back to the first record, just after the header (a pass's start)."""
        self.m.d.sync += self.left.eq(self.length - layout_len(BATCH_HEADER))

    def _advance(self):
        """On by a record, and the walk's tests with it."""
        left = self.left
        self.m.d.sync += [left.eq(left - self.rec_len),
                          self.at_end.eq(left == self.rec_len), self.short.eq(left < 2 * self.rec_len)]

    def _record_start(self):
        """Where the current record starts in the payload."""
        return self.length - self.left

    def _feed_core(self):
        """The encoder's words to the core while it makes them; ``loaded`` counts those it keeps.
        Returns the condition that all are in."""
        m, eng, enc = self.m, self.eng, self.encoder
        m.d.comb += [eng.load.payload.eq(self.held), eng.load.valid.eq(self.held_valid)]
        m.d.sync += self.held_valid.eq(self.held_valid)
        with m.If(enc.o.ready):
            m.d.sync += [self.held_valid.eq(enc.o.valid), self.held.eq(enc.o.payload)]
        with m.If(eng.load.valid & eng.load.ready & (self.loaded != self.geo.max_events)):
            m.d.sync += self.loaded.eq(self.loaded + 1)
        all_in = ~enc.busy & ~self.held_valid  # every word made and handed over
        with m.If(all_in):
            m.d.sync += self.feeding.eq(0)
        return all_in

    def _shift_state(self):
        self.m.d.sync += [self.state.eq(Cat(self.state[8:], self.brd.data)),  # little-endian: last byte on top
                          self.nonzero.eq(Cat(self.nonzero[1:], ~byte_zero(self.brd)))]

    def _start_encoder(self, base=None):
        m = self.m
        m.d.comb += [self.eng.clear_now.eq(1), self.encoder.start.eq(1)]  # clear_now also empties loaded
        m.d.sync += self.feeding.eq(1)
        if base is not None:
            m.d.comb += self.encoder.base.eq(base)
        # With registered reads the encoder's first level is addressed in this cycle, before
        # ``feeding`` hands it the buffer, by the engine's pointer: it holds that address already
        # (ENCODE: just past the header; BATCH: ``base`` is the pointer).

    def states(self, respond, resp_len):
        m, eng, brd, ptr, geo = self.m, self.eng, self.brd, self.ptr, self.geo
        total = self.total

        # ENCODE: header, its check, then the encoder's words go to the core and the run starts.
        with m.State("E_HDR_RD"):
            m.next = "E_HDR_GET"
        with m.State("E_HDR_GET"):
            with m.If(ptr == 0):
                m.d.sync += self.code.eq(brd.data)
            with m.Else():
                self._shift_state()
            m.d.sync += eng.ptr_step()
            with m.If(ptr == ENCODE_HEADER_LEN - 1):
                m.next = "E_CHECK"
            with m.Else():
                m.next = "E_HDR_RD"
        with m.State("E_CHECK"):
            with m.If(self.code_bad | self.state_bad):
                respond(Status.RANGE)
            with m.Else():
                self._start_encoder()
                m.next = "E_GEN"
        with m.State("E_GEN"):
            with m.If(self._feed_core()):
                with m.If(eng.overflow):
                    respond(Status.OVERFLOW)
                with m.Else():
                    m.d.sync += resp_len.eq(self.block)
                    m.next = "RUN_START"

        # BATCH, first pass: walk the records, check the length and every state; then the header
        # of the whole answer; second pass: each record as an ENCODE, its answer block, the next.
        with m.State("B_CODE_RD"):
            m.next = "B_CODE_GET"
        with m.State("B_CODE_GET"):
            m.d.sync += [self.code.eq(brd.data),
                         self.at_end.eq(self.left == 0), self.short.eq(self.left < self.rec_len)]
            m.next = "B_WALK"
        with m.State("B_WALK"):
            with m.If(self.at_end & self.walked):
                with m.If(self.too_long):   # over the answer's 16-bit length field
                    respond(Status.BAD_LENGTH)
                with m.Elif(self.code_bad | self.bad | (not proto.batch_fits(geo))):
                    respond(Status.RANGE)
                with m.Else():
                    # the second pass walks the same records: at least one, so it is not at the end
                    self._rewind()
                    m.d.sync += [self.status.eq(Status.OK), self.at_end.eq(0), self.apply.eq(1)]
                    m.next = "B_HDR"
            with m.Elif(self.short):
                respond(Status.BAD_LENGTH)
            with m.Else():
                m.d.sync += [*eng.ptr_to(self._record_start()), self.j.eq(0)]
                m.next = "B_ST_RD"
        with m.State("B_ST_RD"):
            m.next = "B_ST_GET"
        with m.State("B_ST_GET"):
            self._shift_state()
            m.d.sync += [*eng.ptr_step(), self.j.eq(self.j + 1)]
            with m.If(self.j == layout_len(BATCH_RECORD) - 1):
                m.next = "B_ST_DONE"
            with m.Else():
                m.next = "B_ST_RD"
        with m.State("B_ST_DONE"):
            with m.If(~self.apply):
                # first pass: note a bad state, count the record's answer block
                self._advance()
                m.d.sync += [self.bad.eq(self.bad | self.state_bad), total.eq(total + self.block), self.walked.eq(1),
                             self.too_long.eq(total + self.block > 0xFFFF if len(total) > 16 else 0)]
                m.next = "B_WALK"
            with m.Else():
                self._start_encoder(base=ptr)
                m.next = "B_GEN"
        with m.State("B_HDR"):
            m.d.comb += [eng.resp.valid.eq(1), eng.resp.payload.length.eq(total)]
            with m.If(eng.resp.ready):
                m.next = "B_NEXT"
        with m.State("B_NEXT"):
            with m.If(self.at_end):
                m.next = "IDLE"
            with m.Else():
                m.d.sync += [*eng.ptr_to(self._record_start()), self.j.eq(0)]
                m.next = "B_ST_RD"
        with m.State("B_GEN"):
            with m.If(self._feed_core()):
                m.d.comb += eng.start.eq(1)
                m.next = "B_RUN1"
        with m.State("B_RUN1"):
            m.next = "B_RUN"
        with m.State("B_RUN"):
            self._block_source()
            with m.If(eng.done):
                m.d.comb += [self.stat.run_done.eq(1), self.answer.start.eq(1)]
                m.d.sync += self.sent.eq(0)
                m.next = "B_ANSWER"
        with m.State("B_ANSWER"):
            # the block's bytes go out before the next record starts
            self._block_source()
            with m.If(self.answer.o.valid & self.answer.o.ready):
                m.d.sync += self.sent.eq(self.sent + 1)
                with m.If(self.sent == self.block - 1):
                    self._advance()
                    m.next = "B_NEXT"

    def _block_source(self):
        self.m.d.comb += [self.answer.source.eq(Source.RUN), self.answer.length.eq(self.block)]
