"""CommandEngine: executes checked request frames on the NetworkCore and produces the answers.
Byte-level twin: :class:`spikegate.model.link.CommandEngine`."""
from amaranth.hdl import C, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered

from ...model import link as proto
from ...model.protocol import (CHECKSUM_BYTES, CYCLE_BYTES, NET_ID_BYTES, STATUS_LEN, Cmd,
                               Status)
from .encode_cmds import EncodeCommands
from .learn_cmds import LearnCommands
from .ahead import Ahead
from .answer import AnswerSource, Source
from .checksum import ChecksumWalker
from .engine_ports import CommandEngineSignature, connect_core
from .registered_test import RegisteredTest
from .status import StatusCounters
from .write_cmds import WriteCommand

__all__ = ["CommandEngine", "CommandEngineSignature", "connect_core", "ANSWER_FIFO_DEPTH"]

# Streaming builds' answer FIFO: one iCE40 block RAM (512 x 8); boards.fit counts it.
ANSWER_FIFO_DEPTH = 512


class CommandEngine(wiring.Component):
    """The commands of docs/protocol.md, with the status counters, the identify ROM and the network id.

    Ports:

    - ``frame`` (stream in, :class:`FrameInfo`) and ``buf`` (out, :class:`BufferRead`): a checked
      frame from the decoder and read access to its payload.
    - ``events`` (in, :class:`RxEvents`): the decoder's pulses, counted in the status block.
    - ``resp`` (stream out, :class:`ResponseInfo`) and ``data`` (stream out): the answer's header,
      then its payload bytes, for the encoder.
    - ``error`` (out): pulses when a frame is answered with an error.
    - ``load``, ``cfg``, ``clear``, ``start``, ``done``, ``cycles``, ``overflow``, ``cfg_error``,
      ``out_addr``, ``out_count``, ``out_membrane``, ``param_addr``, ``param_data`` (and, as the core
      has them, ``learn``, ``learn_state_addr``, ``learn_state_data``, ``reward``, ``step_reward``):
      connect to the NetworkCore ports of that name (:func:`connect_core`).

    ``ident_block``: the identify payload in a block RAM (:class:`AnswerSource`).

    ``encoder``: include ENCODE and BATCH (:class:`~spikegate.hdl.link.encode_cmds.EncodeCommands`,
    the on-chip input encoder); without it they are UNKNOWN_CMD, as on an older bitstream.

    WRITE and LOAD make two passes over the buffered payload: the first checks every address and
    value, the second applies them, so a frame is applied entirely or not at all. Inside:
    :class:`~.write_cmds.WriteCommand` (WRITE's states, with :class:`~.write.WriteRules` for the
    header, the values and their ranges), :class:`StatusCounters` (the
    STATUS block) and :class:`AnswerSource` (the answers' payload bytes, streamed on ``data``).
    """

    def __init__(self, net, geo: proto.LinkGeometry, core, identify_static: bytes, *, encoder: bool = True,
                 stream: bool = False, ident_block: bool = False):
        self.net, self.geo, self.identify_static = net, geo, identify_static
        self.encoder, self.stream, self.ident_block = bool(encoder), bool(stream), bool(ident_block)
        self.max_events = geo.max_events
        self._core = core
        super().__init__(CommandEngineSignature(core, geo.max_payload))

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        brd = self.buf

        # clear reaches the core a cycle after the state that decides it (timing: it fans out
        # over the core's input buffer and flags). The core sees it before anything that follows
        # it: a load word comes 3 cycles after the deciding state, a run start 2.
        self.clear_now = Signal()
        m.d.sync += self.clear.eq(self.clear_now)
        cmd, tag, status = Signal(8), Signal(8), Signal(8)
        length = Signal(range(geo.max_payload + 1))
        # The payload buffer's read pointer. With registered reads the buffer is read at ptr's next
        # value, so each byte still arrives the cycle after ptr holds its address (hdl.link.ahead).
        ptr = Signal(range(geo.max_payload + 1))
        ahead = Ahead(m, ptr, registered=geo.registered_reads)
        self.ptr_to, self.ptr_step = ahead.to, ahead.step
        m.submodules.answer = answer = AnswerSource(self.net, geo, self.identify_static, self,
                                                       ident_block=self.ident_block)
        resp_len = Signal.like(answer.length)
        src = Signal(Source)
        dirty, apply = Signal(), Signal()
        flags = Signal(8)
        eb = geo.event_bytes
        word = Signal(8 * eb)
        wbyte = Signal(range(eb + 1))
        loaded = Signal(24)

        # The core's cycle counter restarts only with a run, unless a REWARD sweep restarts it.
        m.submodules.status = stat = StatusCounters(latch_cycles="reward" in self._core.signature.members)
        failed = Signal()
        m.d.comb += [stat.events.eq(self.events), stat.failed.eq(failed), stat.loaded.eq(loaded),
                     stat.dirty.eq(dirty), stat.overflow.eq(self.overflow), stat.cfg_error.eq(self.cfg_error),
                     stat.done.eq(self.done), stat.cycles.eq(self.cycles), self.error.eq(failed)]
        m.d.comb += [brd.addr.eq(ahead.addr), answer.source.eq(src), answer.length.eq(resp_len),
                     answer.dirty.eq(dirty), answer.status_word.eq(stat.word), answer.last_cycles.eq(stat.last_cycles),
                     self.out_addr.eq(answer.out_addr), answer.out_count.eq(self.out_count),
                     answer.out_membrane.eq(self.out_membrane)]
        taking = self._answer_path(m, answer)
        m.submodules.checksum = walker = ChecksumWalker(self.net, geo, self._core)
        m.d.comb += [self.param_addr.eq(walker.param_addr), walker.param_data.eq(self.param_data),
                     answer.checksum.eq(walker.crc)]

        m.d.comb += [self.resp.payload.cmd.eq(cmd), self.resp.payload.tag.eq(tag),
                     self.resp.payload.status.eq(status), self.resp.payload.length.eq(resp_len)]

        eos = word[8 * eb - 1]
        addr = word[:8 * eb - 1]
        m.d.comb += [self.load.payload.addr.eq(addr), self.load.payload.end_of_step.eq(eos)]
        # Registered (timing): a word's address check is taken from the word as its last byte
        # arrives (word_next), so L_WORD_DONE decides from a flip-flop.
        word_next, word_bad = Signal.like(word), Signal()
        m.d.comb += [word_next.eq(word), word_next.word_select(wbyte, 8).eq(brd.data)]
        eos_n, addr_n = word_next[8 * eb - 1], word_next[:8 * eb - 1]
        m.d.sync += word_bad.eq(Mux(eos_n, addr_n != 0, geo.load_address_bad(addr_n)))
        # Registered (timing): the capacity check below is three carry chains long otherwise. Both
        # are read in L_NEXT, which comes >= 2 cycles after length, flags or loaded change, except
        # for a flags-only LOAD (nwords = 0), where loaded <= max_events keeps the answer no.
        nwords = Signal(16)
        too_many = Signal()
        # Registered (timing): ptr == length, a compare as wide as the buffer in front of the
        # whole next-state logic, was the MNIST iCEBreaker build's critical path. L_NEXT comes
        # after L_WORD_DONE, which leaves ptr as it is for a cycle, or just after ptr was set to 1
        # (``fresh``), where the answer is length == 1.
        ptr_at_end, len_is_1, fresh = Signal(), Signal(), Signal()
        m.d.sync += [ptr_at_end.eq(ptr == length), len_is_1.eq(length == 1), fresh.eq(0)]
        at_end = Mux(fresh, len_is_1, ptr_at_end)
        m.d.sync += [nwords.eq((length - 1) >> (eb - 1)),
                     too_many.eq(Mux(flags[0], 0, loaded) + nwords > self.max_events)]

        # Registered (timing): EXEC's length tests are taken from the offered frame's length in
        # every cycle the engine waits for a frame, the last of which accepts it, so EXEC decides
        # from flip-flops rather than through compares as wide as the buffer (the MNIST iCEBreaker
        # build's critical path ran length -> EXEC -> the walker).
        waiting = Signal()
        m.submodules.length_test = length_test = RegisteredTest(self.frame.payload.length, waiting)
        # Registered (timing) the same way: which command it is, as its index among the commands
        # (len(Cmd): none of them), so each EXEC case is one 4-input compare (cmd -> its 8-bit
        # compares -> the answer registers was the iCEBreaker 784-128-10 build's critical path at
        # a4d72cc). An index, not a flag per command: with flags (EXEC's cases then patterns with
        # don't-cares) the digits iCEBreaker build lost 2.6 MHz at each of 5 seeds, its critical
        # path the answer registers' enables.
        known = list(Cmd)
        code = Signal(range(len(known) + 1))
        with m.If(waiting):
            m.d.sync += code.eq(len(known))
            with m.Switch(self.frame.payload.cmd):
                for i, c in enumerate(known):
                    with m.Case(c):
                        m.d.sync += code.eq(i)
        is_cmd = {c: code == i for i, c in enumerate(known)}

        def case(*cmds):
            """An EXEC case taking ``cmds``."""
            return m.Case(*(known.index(c) for c in cmds))
        self.cmd_case = case

        # ENCODE and BATCH: the on-chip encoder reads the levels from the payload buffer
        # (``encoder=False`` leaves them out: about 450 iCE40 LUTs, 180 flip-flops and a block RAM)
        enc = EncodeCommands(m, self, geo, brd=brd, ptr=ptr, length=length, length_test=length_test, loaded=loaded,
                             apply=apply, status=status, answer=answer, stat=stat) if self.encoder else None
        wrc = WriteCommand(m, self, self.net, geo, brd=brd, ptr=ptr, length=length, length_test=length_test,
                           apply=apply, dirty=dirty, stat=stat)
        # LEARN, REWARD, READ_STATE (every bitstream answers them; only plastic networks learn)
        lrn = LearnCommands(m, self, self._core, brd=brd, ptr=ptr, length_test=length_test, dirty=dirty, answer=answer,
                            rules=wrc.rules)

        def set_answer(st, n=0, source=Source.IDENTIFY):
            m.d.sync += [status.eq(st), resp_len.eq(n), src.eq(source)]

        def to_resp(st):
            if not (isinstance(st, int) and st == Status.OK):
                m.d.comb += failed.eq(1)
            m.next = "RESP"

        def respond(st, n=0, source=Source.IDENTIFY):
            set_answer(st, n, source)
            to_resp(st)

        with m.FSM() as fsm:
            with m.State("IDLE"):
                # The frame's fields are taken in every waiting cycle, not only the accepting one
                # (timing: the decoder offers a frame in the cycle its last CRC byte arrives, and
                # the accept then steered the enables of all these registers). Nothing reads them
                # here: the encoder holds the last answer's header, the answer source its length.
                m.d.comb += [self.frame.ready.eq(taking), waiting.eq(1)]
                m.d.sync += [cmd.eq(self.frame.payload.cmd), tag.eq(self.frame.payload.tag),
                             length.eq(self.frame.payload.length), *self.ptr_to(0)]
                with m.If(self.frame.valid & taking):
                    m.next = "EXEC"
            with m.State("EXEC"):
                no_payload = length_test(lambda n: n == 0)
                with m.Switch(code):
                    with case(Cmd.IDENTIFY, Cmd.STATUS, Cmd.READ, Cmd.CLEAR, Cmd.RUN):
                        with m.If(~no_payload):
                            respond(Status.BAD_LENGTH)
                        with m.Elif(is_cmd[Cmd.IDENTIFY]):
                            respond(Status.OK, geo.identify_len, Source.IDENTIFY)
                        with m.Elif(is_cmd[Cmd.STATUS]):
                            m.d.comb += stat.latch.eq(1)
                            respond(Status.OK, STATUS_LEN, Source.STATUS)
                        with m.Elif(is_cmd[Cmd.READ]):
                            respond(Status.OK, geo.output_bytes, Source.OUTPUTS)
                        with m.Elif(is_cmd[Cmd.CLEAR]):
                            m.d.comb += self.clear_now.eq(1)
                            respond(Status.OK)
                        with m.Else():
                            m.d.sync += resp_len.eq(CYCLE_BYTES)
                            m.next = "RUN_START"
                    with case(Cmd.CHECKSUM):
                        with m.If(~no_payload):
                            respond(Status.BAD_LENGTH)
                        with m.Else():
                            m.d.comb += walker.start.eq(1)
                            m.next = "CK_WAIT"
                    with case(Cmd.SET_NET_ID):
                        with m.If(length_test(lambda n: n != NET_ID_BYTES)):
                            respond(Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "NID_RD"
                    with case(Cmd.WRITE):
                        wrc.begin(respond)
                    with case(Cmd.LOAD):
                        with m.If(length_test(lambda n: (n == 0) | ((n - 1)[0] if eb == 2 else C(0, 1)))):
                            respond(Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "L_FLAGS_RD"
                    if enc is not None:
                        with case(Cmd.ENCODE):
                            enc.begin_encode(respond)
                        with case(Cmd.BATCH):
                            enc.begin_batch()
                    lrn.begin(respond)
                    with m.Default():
                        respond(Status.UNKNOWN_CMD)

            if enc is not None:
                enc.states(respond, resp_len)
            lrn.states(respond)

            with m.State("CK_WAIT"):
                with m.If(walker.done):
                    respond(Status.OK, CHECKSUM_BYTES, Source.CHECKSUM)

            with m.State("NID_RD"):
                m.next = "NID_WR"
            with m.State("NID_WR"):
                m.d.comb += [answer.nid_addr.eq(ptr), answer.nid_data.eq(brd.data), answer.nid_en.eq(1)]
                m.d.sync += self.ptr_step()
                with m.If(ptr == NET_ID_BYTES - 1):
                    m.d.sync += dirty.eq(0)
                    respond(Status.OK)
                with m.Else():
                    m.next = "NID_RD"

            wrc.states(respond)

            # LOAD: flags, a validating pass, the capacity check, then the applying pass.
            with m.State("L_FLAGS_RD"):
                m.next = "L_FLAGS_GET"
            with m.State("L_FLAGS_GET"):
                m.d.sync += [flags.eq(brd.data), *self.ptr_to(1), apply.eq(0), fresh.eq(1)]
                # The answer registers take the rejection's values whatever the byte, so the byte
                # steers only the next state (timing: the payload buffer's read -> the flag test ->
                # their enables was an OrangeCrab build's critical path). A LOAD that goes on sets
                # all three again before it answers.
                set_answer(Status.RANGE)
                with m.If(~brd.small):  # a bit set outside LOAD_FLAGS
                    to_resp(Status.RANGE)
                with m.Else():
                    m.next = "L_NEXT"
            with m.State("L_NEXT"):
                with m.If(at_end):
                    with m.If(~apply):
                        with m.If(too_many):
                            respond(Status.OVERFLOW)
                        with m.Else():
                            m.d.sync += [apply.eq(1), *self.ptr_to(1), fresh.eq(1)]
                            with m.If(flags[0]):
                                m.d.comb += self.clear_now.eq(1)
                    with m.Elif(flags[1]):
                        m.d.sync += resp_len.eq(CYCLE_BYTES + geo.output_bytes)
                        m.next = "RUN_START"
                    with m.Else():
                        respond(Status.OK)
                with m.Else():
                    m.d.sync += [word.eq(0), wbyte.eq(0)]
                    m.next = "L_WORD_RD"
            with m.State("L_WORD_RD"):
                m.next = "L_WORD_GET"
            with m.State("L_WORD_GET"):
                m.d.sync += [word.eq(word_next), *self.ptr_step(), wbyte.eq(wbyte + 1)]
                with m.If(wbyte == eb - 1):
                    m.next = "L_WORD_DONE"
                with m.Else():
                    m.next = "L_WORD_RD"
            with m.State("L_WORD_DONE"):
                with m.If(~apply):
                    with m.If(word_bad):
                        respond(Status.RANGE)
                    with m.Else():
                        m.next = "L_NEXT"
                with m.Else():
                    m.d.comb += self.load.valid.eq(1)
                    with m.If(self.load.ready):
                        m.d.sync += loaded.eq(loaded + 1)
                        m.next = "L_NEXT"

            with m.State("RUN_START"):
                m.d.comb += self.start.eq(1)
                m.next = "RUN_WAIT1"
            with m.State("RUN_WAIT1"):
                m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"):
                with m.If(self.done):
                    m.d.comb += stat.run_done.eq(1)
                    m.d.sync += [status.eq(Status.OK), src.eq(Source.RUN)]
                    m.next = "RESP"

            # --- the answer: header to the encoder, then the payload bytes from the answer source ---
            with m.State("RESP"):
                m.d.comb += self.resp.valid.eq(1)
                with m.If(self.resp.ready):
                    m.d.comb += answer.start.eq(1)
                    m.next = "IDLE"
        # One flip-flop a state (timing): decoding a binary state of some 40 took two LUT levels
        # in front of every condition. Yosys leaves a register with an initial value alone unless
        # asked; the sync domain is held in reset from power-up until the PLL locks
        # (boards/top.py), which puts the recoded register in IDLE.
        fsm.state.attrs["fsm_encoding"] = "one-hot"
        # loaded empties with the core's input buffer, on the registered clear (timing: the
        # commands deciding it no longer steer its 24 flip-flops); the next word comes later.
        with m.If(self.clear):
            m.d.sync += loaded.eq(0)
        return m

    def _answer_path(self, m, answer):
        """The answer's payload bytes to ``data``; returns when the engine may take a frame.

        With ``stream`` the bytes pass through the answer FIFO (one block RAM): the answer source
        fills it at its own pace (a byte per 2 cycles) while the encoder sends at the line's, so
        the engine takes the next frame, and runs it, while the last answer is still on the line.
        It waits only until every byte is in the FIFO: the answer source reads the core's outputs
        and counters live, and the next command would change them."""
        if not self.stream:
            wiring.connect(m, answer.o, wiring.flipped(self.data))
            return 1
        m.submodules.answer_fifo = fifo = SyncFIFOBuffered(width=8, depth=ANSWER_FIFO_DEPTH + 1)
        m.d.comb += [fifo.w_data.eq(answer.o.payload), fifo.w_en.eq(answer.o.valid), answer.o.ready.eq(fifo.w_rdy)]
        if not self.geo.registered_reads:
            m.d.comb += [self.data.payload.eq(fifo.r_data), self.data.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.data.ready)]
            return answer.idle
        # Registered reads: the FIFO's block RAM data go into a flip-flop first (a one-word stage
        # passing a byte a cycle). A byte the line waits for (a BATCH block's first) leaves a cycle
        # later; no link cycle formula counts the answer's bytes on the line.
        byte, full = Signal(8, reset_less=True), Signal()
        take = ~full | self.data.ready
        m.d.comb += [fifo.r_en.eq(take), self.data.payload.eq(byte), self.data.valid.eq(full)]
        with m.If(take):
            m.d.sync += [byte.eq(fifo.r_data), full.eq(fifo.r_rdy)]
        return answer.idle
