"""CommandEngine: executes checked request frames on the NetworkCore and produces the answers.
Byte-level twin: :class:`spikegate.model.link.CommandEngine`."""
from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...model import link as proto
from ...model.protocol import (IDENTIFY_TAIL, LOAD_FLAGS, NET_ID_BYTES, STATUS_FIELDS, STATUS_FLAGS, STATUS_LEN,
                               WRITE_HEADER, CfgTarget, Cmd, Status, field)
from .signatures import BufferRead, FrameInfo, ResponseInfo, RxEvents, cat_fields
from .write import WriteRules

__all__ = ["CommandEngine", "CommandEngineSignature"]

# Where the bytes of an answer come from.
SRC_IDENT, SRC_STATUS, SRC_RUNOUT, SRC_OUT = range(4)


class CommandEngineSignature(wiring.Signature):
    """Ports of :class:`CommandEngine` for a NetworkCore ``core`` and a ``max_payload`` buffer."""
    def __init__(self, core, max_payload: int):
        super().__init__({
            "frame": In(stream.Signature(FrameInfo(max_payload))),
            "buf": Out(BufferRead(max_payload)),
            "events": In(RxEvents()),
            "resp": Out(stream.Signature(ResponseInfo())),
            "data": Out(stream.Signature(8)),
            "error": Out(1),
            # the core's control ports, mirrored
            "load": Out(stream.Signature(core.load_layout)),
            "cfg": Out(stream.Signature(core.cfg_layout)),
            "clear": Out(1),
            "start": Out(1),
            "done": In(1),
            "cycles": In(32),
            "overflow": In(1),
            "cfg_error": In(1),
            "out_addr": Out(len(core.out_addr)),
            "out_count": In(len(core.out_count)),
            "out_membrane": In(signed(len(core.out_membrane))),
        })


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
      ``out_addr``, ``out_count``, ``out_membrane``: connect to the NetworkCore ports of that name.

    WRITE and LOAD make two passes over the buffered payload: the first checks every address and
    value, the second applies them, so a frame is applied entirely or not at all.
    """

    def __init__(self, net, geo: proto.LinkGeometry, core, identify_static: bytes):
        self.net, self.geo, self.identify_static = net, geo, identify_static
        self.max_events = geo.max_events
        super().__init__(CommandEngineSignature(core, geo.max_payload))

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        S = len(self.identify_static)
        # Tiny memories go to logic: a block RAM each would cost 2 of the UP5K's 30 EBRs.
        small = {"ram_style": "logic", "rom_style": "logic"}
        m.submodules.rom = rom = Memory(shape=8, depth=S, init=list(self.identify_static), attrs=small)
        rom_rd = rom.read_port()
        m.submodules.nid = nid = Memory(shape=8, depth=NET_ID_BYTES, init=list(proto.content_digest(self.net)),
                                        attrs=small)
        nid_wr, nid_rd = nid.write_port(), nid.read_port()
        brd = self.buf

        cmd, tag, status = Signal(8), Signal(8), Signal(8)
        length = Signal(range(geo.max_payload + 1))
        ptr = Signal(range(geo.max_payload + 1))
        resp_max = max(geo.identify_len, STATUS_LEN, 4 + geo.output_bytes)
        resp_len = Signal(range(resp_max + 1))
        src = Signal(2)
        idx = Signal(range(max(resp_max, 32) + 1))
        k = Signal(range(geo.n_out + 1))
        j = Signal(range(geo.count_bytes + geo.membrane_bytes))
        dirty, apply = Signal(), Signal()
        flags = Signal(8)
        eb = geo.event_bytes
        word = Signal(8 * eb)
        wbyte = Signal(range(eb + 1))
        loaded = Signal(24)
        counters = {f.name: Signal(8 * f.size, name=f.name) for f in STATUS_FIELDS if f.name != "flags"}
        last_cycles, uptime, up_latch = counters["last_cycles"], Signal(48), counters["uptime"]
        m.d.sync += uptime.eq(uptime + 1)
        m.d.comb += [brd.addr.eq(ptr), nid_rd.addr.eq(ptr), rom_rd.addr.eq(idx), counters["loaded"].eq(loaded)]

        # --- counters --------------------------------------------------------------------------
        failed = Signal()
        ev = self.events
        for name, pulse in (("frames_ok", ev.frame_ok), ("crc_errors", ev.crc_error), ("timeouts", ev.timeout),
                            ("rx_errors", ev.rx_error), ("frame_errors", failed | ev.length_error)):
            with m.If(pulse):
                m.d.sync += counters[name].eq(counters[name] + 1)
        m.d.comb += self.error.eq(failed)

        # --- answer bytes ------------------------------------------------------------------------
        cb, mb = geo.count_bytes, geo.membrane_bytes
        out_count = Signal(8 * cb)
        out_mem = Signal(signed(8 * mb))
        m.d.comb += [out_count.eq(self.out_count), out_mem.eq(self.out_membrane), self.out_addr.eq(k)]
        out_word = Cat(out_count, out_mem)
        core_flags = {"dirty": dirty, "overflow": self.overflow, "cfg_error": self.cfg_error, "done": self.done}
        status_word = cat_fields(STATUS_FIELDS, {"flags": Cat(*[core_flags[n] for n in STATUS_FLAGS]), **counters})
        in_out = Signal()
        m.d.comb += in_out.eq((src == SRC_OUT) | ((src == SRC_RUNOUT) & (idx >= 4)))
        src_byte = Signal(8)
        dirty_at = S + field(IDENTIFY_TAIL, "dirty").offset
        nid_at = S + field(IDENTIFY_TAIL, "net_id").offset
        with m.Switch(src):
            with m.Case(SRC_IDENT):
                with m.If(idx < S):
                    m.d.comb += src_byte.eq(rom_rd.data)
                with m.Elif(idx == dirty_at):
                    m.d.comb += src_byte.eq(dirty)
                with m.Else():
                    m.d.comb += [nid_rd.addr.eq(idx - nid_at), src_byte.eq(nid_rd.data)]
            with m.Case(SRC_STATUS):
                m.d.comb += src_byte.eq(status_word.word_select(idx[:5], 8))
            with m.Default():
                with m.If(in_out):
                    m.d.comb += src_byte.eq(out_word.word_select(j, 8))
                with m.Else():
                    m.d.comb += src_byte.eq(last_cycles.word_select(idx[:2], 8))
        m.d.comb += [self.resp.payload.cmd.eq(cmd), self.resp.payload.tag.eq(tag),
                     self.resp.payload.status.eq(status), self.resp.payload.length.eq(resp_len),
                     self.data.payload.eq(src_byte)]

        # --- WRITE: the value rules of the addressed layer and target --------------------------------
        m.submodules.rules = rules = WriteRules(self.net, geo)
        m.d.comb += [rules.length.eq(length), rules.value_byte.eq(brd.data)]
        wr = self.cfg.payload
        m.d.comb += [wr.layer.eq(rules.layer), wr.target.eq(rules.target), wr.row.eq(rules.row),
                     wr.col.eq(rules.col_now), wr.data.eq(rules.value)]

        eos = word[8 * eb - 1]
        addr = word[:8 * eb - 1]
        m.d.comb += [self.load.payload.addr.eq(addr), self.load.payload.end_of_step.eq(eos)]
        nwords = Signal(16)
        m.d.comb += nwords.eq((length - 1) >> (eb - 1))

        def respond(st, n=0, source=SRC_IDENT):
            m.d.sync += [status.eq(st), resp_len.eq(n), src.eq(source)]
            if not (isinstance(st, int) and st == Status.OK):
                m.d.comb += failed.eq(1)
            m.next = "RESP"

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.frame.ready.eq(1)
                with m.If(self.frame.valid):
                    m.d.sync += [cmd.eq(self.frame.payload.cmd), tag.eq(self.frame.payload.tag),
                                 length.eq(self.frame.payload.length), ptr.eq(0)]
                    m.next = "EXEC"
            with m.State("EXEC"):
                no_payload = length == 0
                with m.Switch(cmd):
                    with m.Case(Cmd.IDENTIFY, Cmd.STATUS, Cmd.READ, Cmd.CLEAR, Cmd.RUN):
                        with m.If(~no_payload):
                            respond(Status.BAD_LENGTH)
                        with m.Elif(cmd == Cmd.IDENTIFY):
                            respond(Status.OK, geo.identify_len, SRC_IDENT)
                        with m.Elif(cmd == Cmd.STATUS):
                            m.d.sync += up_latch.eq(uptime)
                            respond(Status.OK, STATUS_LEN, SRC_STATUS)
                        with m.Elif(cmd == Cmd.READ):
                            respond(Status.OK, geo.output_bytes, SRC_OUT)
                        with m.Elif(cmd == Cmd.CLEAR):
                            m.d.comb += self.clear.eq(1)
                            m.d.sync += loaded.eq(0)
                            respond(Status.OK)
                        with m.Else():
                            m.d.sync += resp_len.eq(4)
                            m.next = "RUN_START"
                    with m.Case(Cmd.SET_NET_ID):
                        with m.If(length != NET_ID_BYTES):
                            respond(Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "NID_RD"
                    with m.Case(Cmd.WRITE):
                        with m.If(length < WRITE_HEADER):
                            respond(Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "W_HDR_RD"
                    with m.Case(Cmd.LOAD):
                        with m.If((length == 0) | ((length - 1)[0] if eb == 2 else C(0, 1))):
                            respond(Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "L_FLAGS_RD"
                    with m.Default():
                        respond(Status.UNKNOWN_CMD)

            with m.State("NID_RD"):
                m.next = "NID_WR"
            with m.State("NID_WR"):
                m.d.comb += [nid_wr.addr.eq(ptr), nid_wr.data.eq(brd.data), nid_wr.en.eq(1)]
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(ptr == NET_ID_BYTES - 1):
                    m.d.sync += dirty.eq(0)
                    respond(Status.OK)
                with m.Else():
                    m.next = "NID_RD"

            # WRITE: header, checks, then a validating pass and an applying pass over the values.
            with m.State("W_HDR_RD"):
                m.next = "W_HDR_GET"
            with m.State("W_HDR_GET"):
                m.d.comb += [rules.header_en.eq(1), rules.header_idx.eq(ptr[:3])]
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(ptr == WRITE_HEADER - 1):
                    m.next = "W_CHECK1"
                with m.Else():
                    m.next = "W_HDR_RD"
            with m.State("W_CHECK1"):
                with m.If(~rules.header_ok):
                    respond(Status.RANGE)
                with m.Else():
                    m.next = "W_CHECK2"
            with m.State("W_CHECK2"):
                with m.If(~rules.length_ok):
                    respond(Status.BAD_LENGTH)
                with m.Elif(~rules.address_ok):
                    respond(Status.RANGE)
                with m.Else():
                    m.d.comb += rules.restart.eq(1)
                    m.d.sync += [apply.eq(0), ptr.eq(WRITE_HEADER)]
                    m.next = "W_NEXT"
            with m.State("W_NEXT"):
                with m.If(rules.all_done):
                    with m.If(~apply):
                        m.d.comb += rules.restart.eq(1)
                        m.d.sync += [apply.eq(1), ptr.eq(WRITE_HEADER)]
                    with m.Else():
                        m.d.sync += dirty.eq(1)
                        respond(Status.OK)
                with m.Else():
                    m.d.comb += rules.value_start.eq(1)
                    m.next = "W_VAL_RD"
            with m.State("W_VAL_RD"):
                m.next = "W_VAL_GET"
            with m.State("W_VAL_GET"):
                m.d.comb += rules.value_get.eq(1)
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(rules.value_last):
                    m.next = "W_VAL_DONE"
                with m.Else():
                    m.next = "W_VAL_RD"
            with m.State("W_VAL_DONE"):
                with m.If(~apply):
                    with m.If(~rules.in_range):
                        respond(Status.RANGE)
                    with m.Else():
                        m.d.comb += rules.value_next.eq(1)
                        m.next = "W_NEXT"
                with m.Else():
                    m.d.comb += self.cfg.valid.eq(1)
                    with m.If(self.cfg.ready):
                        m.d.comb += rules.value_next.eq(1)
                        m.d.sync += counters["cfg_writes"].eq(counters["cfg_writes"] + 1)
                        m.next = "W_NEXT"

            # LOAD: flags, a validating pass, the capacity check, then the applying pass.
            with m.State("L_FLAGS_RD"):
                m.next = "L_FLAGS_GET"
            with m.State("L_FLAGS_GET"):
                m.d.sync += [flags.eq(brd.data), ptr.eq(1), apply.eq(0)]
                with m.If((brd.data & (0xFF ^ LOAD_FLAGS)) != 0):
                    respond(Status.RANGE)
                with m.Else():
                    m.next = "L_NEXT"
            with m.State("L_NEXT"):
                with m.If(ptr == length):
                    with m.If(~apply):
                        have = Mux(flags[0], 0, loaded)
                        with m.If(have + nwords > self.max_events):
                            respond(Status.OVERFLOW)
                        with m.Else():
                            m.d.sync += [apply.eq(1), ptr.eq(1)]
                            with m.If(flags[0]):
                                m.d.comb += self.clear.eq(1)
                                m.d.sync += loaded.eq(0)
                    with m.Elif(flags[1]):
                        m.d.sync += resp_len.eq(4 + geo.output_bytes)
                        m.next = "RUN_START"
                    with m.Else():
                        respond(Status.OK)
                with m.Else():
                    m.d.sync += [word.eq(0), wbyte.eq(0)]
                    m.next = "L_WORD_RD"
            with m.State("L_WORD_RD"):
                m.next = "L_WORD_GET"
            with m.State("L_WORD_GET"):
                m.d.sync += [word.word_select(wbyte, 8).eq(brd.data), ptr.eq(ptr + 1), wbyte.eq(wbyte + 1)]
                with m.If(wbyte == eb - 1):
                    m.next = "L_WORD_DONE"
                with m.Else():
                    m.next = "L_WORD_RD"
            with m.State("L_WORD_DONE"):
                with m.If(~apply):
                    with m.If(Mux(eos, addr != 0, addr >= geo.n_in)):
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
                    m.d.sync += [last_cycles.eq(self.cycles), status.eq(Status.OK), src.eq(SRC_RUNOUT)]
                    m.next = "RESP"

            # --- the answer: header to the encoder, then the payload bytes -------------------------
            with m.State("RESP"):
                m.d.comb += self.resp.valid.eq(1)
                with m.If(self.resp.ready):
                    m.d.sync += [idx.eq(0), k.eq(0), j.eq(0)]
                    with m.If(resp_len == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FETCH"):
                # Memory reads and out_addr take effect one cycle later.
                m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.data.valid.eq(1)
                with m.If(self.data.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(in_out):
                        m.d.sync += j.eq(j + 1)
                        with m.If(j == cb + mb - 1):
                            m.d.sync += [j.eq(0), k.eq(k + 1)]
                    with m.If(idx == resp_len - 1):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "FETCH"
        return m
