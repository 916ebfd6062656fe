"""HostLink: UART + frame decoder/encoder + command engine around a NetworkCore.

The protocol is specified in docs/protocol.md and modelled byte for byte by
:class:`spikegate.model.link.HostLink`. A board top only connects ``rx``/``tx`` to the UART pins
(and, if it likes, ``busy``/``done``/``error``/``idle`` to LEDs).

Robustness comes from the structure rather than from special cases:

- every request frame is received completely into a payload buffer and its CRC checked before any
  byte of it is acted on, so a corrupted, cut-short or garbage frame cannot touch the network;
- WRITE and LOAD make two passes over the buffered payload: the first validates every address
  and value, the second applies them, so a frame is applied entirely or not at all;
- a frame that stops arriving is abandoned after ``frame_timeout`` cycles of silence (answered
  with a TIMEOUT response), so the decoder always returns to hunting for the sync byte;
- bytes that arrive while a command executes are discarded and counted, never queued.
"""

from amaranth.hdl import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model import link as proto
from ..model.hardware import HardwareConfig
from ..model.network import Network, signed_range
from ..model.uart import baud_divisor
from .core import NetworkCore
from .uart import UARTRx, UARTTx

__all__ = ["HostLink"]


def _crc_masks():
    """CRC-16/CCITT over one byte is linear in (crc, byte): output bit i is the XOR of the input
    bits in mask i. Built from the model's crc16 so the two cannot disagree."""
    masks = []
    for i in range(16):
        mask = 0
        for b in range(24):
            crc, byte = (1 << b) & 0xFFFF, (1 << b) >> 16
            # crc16 is affine in the initial value; xor out the zero-input response.
            out = proto.crc16(bytes([byte]), crc) ^ proto.crc16(b"\0", 0)
            if out >> i & 1:
                mask |= 1 << b
        masks.append(mask)
    return masks


_CRC_MASKS = _crc_masks()


def _crc_step(crc, byte):
    bits = Cat(crc, byte)
    return Cat(*[Cat(*[bits[b] for b in range(24) if mask >> b & 1]).xor() for mask in _CRC_MASKS])


class HostLink(wiring.Component):
    """The network plus its host link.

    Parameters: ``net`` (the network baked in), ``lanes`` and ``max_events`` (passed to
    NetworkCore), ``clk_freq`` (Hz of the ``sync`` domain), ``baud``, ``max_payload`` (request
    payload buffer in bytes; bounds the largest frame), ``frame_timeout`` (cycles of silence
    inside a frame before it is abandoned; default 20 ms), ``synchronise`` (two-flop synchroniser on
    ``rx``; leave True on hardware), ``core`` (a NetworkCore already built for ``net`` and
    ``max_events``, e.g. with its weights in SPRAM; by default one is built with ``lanes``).
    """
    rx: In(1, init=1)
    tx: Out(1, init=1)
    idle: Out(1)
    answering: Out(1)
    busy: Out(1)
    done: Out(1)
    error: Out(1)

    def __init__(self, net: Network, *, lanes=4, clk_freq: int, baud: int = 115_200,
                 max_payload: int = 512, max_events: int = 4096, frame_timeout: int | None = None,
                 synchronise: bool = True, core: NetworkCore | None = None):
        if not isinstance(net, Network):
            raise TypeError(f"net must be a spikegate Network, got {type(net).__name__}")
        self.divisor = baud_divisor(clk_freq, baud)
        if isinstance(max_payload, bool) or not isinstance(max_payload, int) or not 16 <= max_payload <= 65535:
            raise ValueError(f"max_payload = {max_payload!r} is not valid; valid: an integer from 16 to 65535 bytes")
        if frame_timeout is None:
            frame_timeout = max(clk_freq // 50, 40 * self.divisor)
        if isinstance(frame_timeout, bool) or not isinstance(frame_timeout, int) or frame_timeout < 20 * self.divisor:
            raise ValueError(f"frame_timeout = {frame_timeout!r} is not valid; valid: an integer of at least "
                             f"{20 * self.divisor} cycles (two bytes at {baud} baud)")
        self.net = net
        if core is None:
            core = NetworkCore(net, HardwareConfig(lanes=lanes, max_events=max_events))
        elif not isinstance(core, NetworkCore) or core.net is not net or core.max_events != max_events:
            raise ValueError("core must be a NetworkCore built for this same net and max_events "
                             f"(got {type(core).__name__})")
        self.core = core
        self.geo = proto.LinkGeometry.of(net, [g.lanes for g in self.core.geometry],
                                         clk_freq, baud, max_payload, max_events)
        self.clk_freq, self.baud = int(clk_freq), int(baud)
        self.max_payload, self.max_events = max_payload, max_events
        self.frame_timeout = frame_timeout
        self.synchronise = synchronise
        self.identify_static = proto.identify_static(self.geo, proto.structure_digest(net),
                                                     proto.content_digest(net))
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        geo, core = self.geo, self.core
        L = geo.n_layers
        m.submodules.core = core
        m.submodules.rxu = rxu = UARTRx(self.divisor, synchronise=self.synchronise)
        m.submodules.txu = txu = UARTTx(self.divisor)
        m.d.comb += [rxu.line.eq(self.rx), self.tx.eq(txu.line), rxu.o.ready.eq(1),
                     self.busy.eq(core.busy), self.done.eq(core.done)]

        m.submodules.buf = buf = Memory(shape=8, depth=self.max_payload, init=[])
        bwr, brd = buf.write_port(), buf.read_port()
        S = len(self.identify_static)
        # Tiny memories go to logic: a block RAM each would cost 2 of the UP5K's 30 EBRs.
        small = {"ram_style": "logic", "rom_style": "logic"}
        m.submodules.rom = rom = Memory(shape=8, depth=S, init=list(self.identify_static), attrs=small)
        rom_rd = rom.read_port()
        m.submodules.nid = nid = Memory(shape=8, depth=proto.NET_ID_BYTES, init=list(proto.content_digest(self.net)),
                                        attrs=small)
        nid_wr, nid_rd = nid.write_port(), nid.read_port()

        rb, rv = rxu.o.payload, rxu.o.valid

        # --- registers ---------------------------------------------------------------------------
        cmd, tag, status = Signal(8), Signal(8), Signal(8)
        # Pointers and lengths only as wide as the buffer and the longest answer need.
        len_lo = Signal(8)
        length = Signal(range(self.max_payload + 1))
        hcnt = Signal(2)
        ptr = Signal(range(self.max_payload + 1))
        crc = Signal(16)
        crc_lo = Signal(8)
        resp_max = max(geo.identify_len, proto.STATUS_LEN, 4 + geo.output_bytes)
        resp_len = Signal(range(resp_max + 1))
        src = Signal(2)
        idx = Signal(range(max(resp_max, 32) + 1))
        k = Signal(range(geo.n_out + 1))
        j = Signal(range(geo.count_bytes + geo.membrane_bytes))
        tcount = Signal(range(self.frame_timeout + 1))
        dirty = Signal()
        apply = Signal()
        flags = Signal(8)
        hdr = Signal(8 * proto.WRITE_HEADER)
        vcount = Signal(16)
        # Values are as wide as the widest weight/bias/threshold of this network, no wider.
        maxvb = max(geo.write_value_bytes(l, t) for l in range(L) for t in range(3))
        vbyte = Signal(range(maxvb + 1))
        val_raw = Signal(8 * maxvb)
        eb = geo.event_bytes
        word = Signal(8 * eb)
        wbyte = Signal(range(eb + 1))
        loaded = Signal(24)
        # counters of the STATUS block
        last_cycles = Signal(32)
        uptime, up_latch = Signal(48), Signal(48)
        frames_ok, cfg_writes = Signal(32), Signal(32)
        crc_errors, frame_errors, timeouts, rx_errors = (Signal(16, name=n) for n in
                                                         ("crc_errors", "frame_errors", "timeouts", "rx_errors"))
        m.d.sync += uptime.eq(uptime + 1)

        m.d.comb += [brd.addr.eq(ptr), nid_rd.addr.eq(ptr), rom_rd.addr.eq(idx)]
        # One CRC datapath for both directions: received bytes by default, sent bytes while
        # answering (the two never happen in the same cycle).
        crc_byte = Signal(8)
        crc_next = Signal(16)
        m.d.comb += [crc_byte.eq(rb), crc_next.eq(_crc_step(crc, crc_byte))]

        # --- response byte sources ------------------------------------------------------------------
        SRC_IDENT, SRC_STATUS, SRC_RUNOUT, SRC_OUT = range(4)
        cb, mb = geo.count_bytes, geo.membrane_bytes
        out_count = Signal(8 * cb)
        out_mem = Signal(signed(8 * mb))
        m.d.comb += [out_count.eq(core.out_count), out_mem.eq(core.out_membrane), core.out_addr.eq(k)]
        out_word = Cat(out_count, out_mem)
        status_word = Cat(Cat(dirty, core.overflow, core.cfg_error, core.done, C(0, 4)), last_cycles, up_latch,
                          frames_ok, crc_errors, frame_errors, timeouts, rx_errors, cfg_writes, loaded)
        assert len(status_word) == 8 * proto.STATUS_LEN
        in_out = Signal()
        m.d.comb += in_out.eq((src == SRC_OUT) | ((src == SRC_RUNOUT) & (idx >= 4)))
        src_byte = Signal(8)
        with m.Switch(src):
            with m.Case(SRC_IDENT):
                with m.If(idx < S):
                    m.d.comb += src_byte.eq(rom_rd.data)
                with m.Elif(idx == S):
                    m.d.comb += src_byte.eq(dirty)
                with m.Else():
                    m.d.comb += [nid_rd.addr.eq(idx - S - 1), src_byte.eq(nid_rd.data)]
            with m.Case(SRC_STATUS):
                m.d.comb += src_byte.eq(status_word.word_select(idx[:5], 8))
            with m.Default():
                with m.If(in_out):
                    m.d.comb += src_byte.eq(out_word.word_select(j, 8))
                with m.Else():
                    m.d.comb += src_byte.eq(last_cycles.word_select(idx[:2], 8))

        # --- per-layer constants for WRITE ----------------------------------------------------------
        layer, target = hdr[0:8], hdr[8:16]
        row, col, count = hdr[16:32], hdr[32:48], hdr[48:64]
        vb = Signal(3)
        n_in_l, n_l = Signal(16), Signal(16)
        lo, hi = Signal(signed(8 * maxvb)), Signal(signed(8 * maxvb))
        is_readout = Signal()
        for l, lyr in enumerate(self.net.layers):
            with m.If(layer == l):
                m.d.comb += [n_in_l.eq(lyr.n_in), n_l.eq(lyr.n), is_readout.eq(lyr.readout)]
                wlo, whi = signed_range(lyr.weight_bits)
                vlo, vhi = signed_range(lyr.membrane_bits)
                with m.Switch(target):
                    with m.Case(proto.TARGET_WEIGHT):
                        m.d.comb += [vb.eq(proto.value_bytes(lyr.weight_bits)), lo.eq(wlo), hi.eq(whi)]
                    with m.Case(proto.TARGET_BIAS):
                        m.d.comb += [vb.eq(proto.value_bytes(lyr.membrane_bits)), lo.eq(vlo), hi.eq(vhi)]
                    with m.Default():
                        m.d.comb += [vb.eq(proto.value_bytes(lyr.membrane_bits)), lo.eq(0), hi.eq(vhi - 1)]
        value = Signal(signed(8 * maxvb))
        with m.Switch(vb):
            for n in range(1, maxvb + 1):
                with m.Case(n):
                    m.d.comb += value.eq(val_raw[:8 * n].as_signed())
        in_range = Signal()
        m.d.comb += in_range.eq((value >= lo) & (value <= hi))
        expected_len = Signal(20)
        m.d.comb += expected_len.eq(proto.WRITE_HEADER + count * vb)
        ww = core.cfg.payload
        m.d.comb += [ww.layer.eq(layer), ww.target.eq(target), ww.row.eq(row), ww.col.eq(col + vcount),
                     ww.data.eq(value)]

        eos = word[8 * eb - 1]
        addr = word[:8 * eb - 1]
        m.d.comb += [core.load.payload.addr.eq(addr), core.load.payload.end_of_step.eq(eos)]
        nwords = Signal(16)
        m.d.comb += nwords.eq((length - 1) >> (eb - 1))

        # --- the frame timeout and error counting -----------------------------------------------
        receiving = Signal()
        hunting = Signal()
        timed_out = Signal()
        with m.If(~receiving | rv):
            m.d.sync += tcount.eq(0)
        with m.Else():
            m.d.sync += tcount.eq(tcount + 1)
        m.d.comb += timed_out.eq(receiving & ~rv & (tcount == self.frame_timeout - 1))
        with m.If(rxu.error | rxu.overrun | (rv & ~receiving & ~hunting)):
            m.d.sync += rx_errors.eq(rx_errors + 1)
        m.d.comb += [self.idle.eq(hunting & rxu.idle & ~rv & txu.idle),
                     # executing or answering: bytes arriving now are discarded
                     self.answering.eq((~hunting & ~receiving) | ~txu.idle)]

        def on_timeout():
            with m.If(timed_out):
                m.d.sync += [status.eq(proto.Status.TIMEOUT), resp_len.eq(0), timeouts.eq(timeouts + 1)]
                m.d.comb += self.error.eq(1)
                m.next = "R_SYNC"

        def send(byte, then, update_crc=True):
            m.d.comb += [txu.i.valid.eq(1), txu.i.payload.eq(byte)]
            with m.If(txu.i.ready):
                if update_crc:
                    m.d.comb += crc_byte.eq(byte)
                    m.d.sync += crc.eq(crc_next)
                then()

        def respond(st, n=0, source=SRC_IDENT):
            m.d.sync += [status.eq(st), resp_len.eq(n), src.eq(source)]
            if not (isinstance(st, int) and st == proto.Status.OK):
                m.d.sync += frame_errors.eq(frame_errors + 1)
                m.d.comb += self.error.eq(1)
            m.next = "R_SYNC"

        with m.FSM():
            # --- frame decoder --------------------------------------------------------------------
            with m.State("HUNT"):
                m.d.comb += hunting.eq(1)
                with m.If(rv & (rb == proto.SYNC_REQ)):
                    m.d.sync += [crc.eq(0xFFFF), hcnt.eq(0), cmd.eq(0), tag.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                m.d.comb += receiving.eq(1)
                on_timeout()
                with m.If(rv):
                    m.d.sync += [crc.eq(crc_next), hcnt.eq(hcnt + 1)]
                    with m.Switch(hcnt):
                        with m.Case(0):
                            m.d.sync += cmd.eq(rb)
                        with m.Case(1):
                            m.d.sync += tag.eq(rb)
                        with m.Case(2):
                            m.d.sync += len_lo.eq(rb)
                        with m.Case(3):
                            n = Cat(len_lo, rb)
                            m.d.sync += [length.eq(n), ptr.eq(0)]
                            with m.If(n > self.max_payload):
                                respond(proto.Status.BAD_LENGTH)
                            with m.Elif(n == 0):
                                m.next = "CRC0"
                            with m.Else():
                                m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                m.d.comb += receiving.eq(1)
                on_timeout()
                with m.If(rv):
                    m.d.comb += [bwr.addr.eq(ptr), bwr.data.eq(rb), bwr.en.eq(1)]
                    m.d.sync += [crc.eq(crc_next), ptr.eq(ptr + 1)]
                    with m.If(ptr == length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                m.d.comb += receiving.eq(1)
                on_timeout()
                with m.If(rv):
                    m.d.sync += crc_lo.eq(rb)
                    m.next = "CRC1"
            with m.State("CRC1"):
                m.d.comb += receiving.eq(1)
                on_timeout()
                with m.If(rv):
                    with m.If(Cat(crc_lo, rb) != crc):
                        m.d.sync += [status.eq(proto.Status.BAD_CRC), resp_len.eq(0),
                                     crc_errors.eq(crc_errors + 1)]
                        m.d.comb += self.error.eq(1)
                        m.next = "R_SYNC"
                    with m.Else():
                        m.d.sync += [frames_ok.eq(frames_ok + 1), ptr.eq(0)]
                        m.next = "EXEC"

            # --- command engine -------------------------------------------------------------------
            with m.State("EXEC"):
                no_payload = length == 0
                with m.Switch(cmd):
                    with m.Case(proto.Cmd.IDENTIFY, proto.Cmd.STATUS, proto.Cmd.READ, proto.Cmd.CLEAR,
                                proto.Cmd.RUN):
                        with m.If(~no_payload):
                            respond(proto.Status.BAD_LENGTH)
                        with m.Elif(cmd == proto.Cmd.IDENTIFY):
                            respond(proto.Status.OK, geo.identify_len, SRC_IDENT)
                        with m.Elif(cmd == proto.Cmd.STATUS):
                            m.d.sync += up_latch.eq(uptime)
                            respond(proto.Status.OK, proto.STATUS_LEN, SRC_STATUS)
                        with m.Elif(cmd == proto.Cmd.READ):
                            respond(proto.Status.OK, geo.output_bytes, SRC_OUT)
                        with m.Elif(cmd == proto.Cmd.CLEAR):
                            m.d.comb += core.clear.eq(1)
                            m.d.sync += loaded.eq(0)
                            respond(proto.Status.OK)
                        with m.Else():
                            m.d.sync += resp_len.eq(4)
                            m.next = "RUN_START"
                    with m.Case(proto.Cmd.SET_NET_ID):
                        with m.If(length != proto.NET_ID_BYTES):
                            respond(proto.Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "NID_RD"
                    with m.Case(proto.Cmd.WRITE):
                        with m.If(length < proto.WRITE_HEADER):
                            respond(proto.Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "W_HDR_RD"
                    with m.Case(proto.Cmd.LOAD):
                        with m.If((length == 0) | ((length - 1)[0] if eb == 2 else C(0, 1))):
                            respond(proto.Status.BAD_LENGTH)
                        with m.Else():
                            m.next = "L_FLAGS_RD"
                    with m.Default():
                        respond(proto.Status.UNKNOWN_CMD)

            with m.State("NID_RD"):
                m.next = "NID_WR"
            with m.State("NID_WR"):
                m.d.comb += [nid_wr.addr.eq(ptr), nid_wr.data.eq(brd.data), nid_wr.en.eq(1)]
                m.d.sync += ptr.eq(ptr + 1)
                with m.If(ptr == proto.NET_ID_BYTES - 1):
                    m.d.sync += dirty.eq(0)
                    respond(proto.Status.OK)
                with m.Else():
                    m.next = "NID_RD"

            # WRITE: header, checks, then a validating pass and an applying pass over the values.
            with m.State("W_HDR_RD"):
                m.next = "W_HDR_GET"
            with m.State("W_HDR_GET"):
                m.d.sync += [hdr.word_select(ptr[:3], 8).eq(brd.data), ptr.eq(ptr + 1)]
                with m.If(ptr == proto.WRITE_HEADER - 1):
                    m.next = "W_CHECK1"
                with m.Else():
                    m.next = "W_HDR_RD"
            with m.State("W_CHECK1"):
                with m.If((layer >= L) | (target > proto.TARGET_THRESHOLD)):
                    respond(proto.Status.RANGE)
                with m.Else():
                    m.next = "W_CHECK2"
            with m.State("W_CHECK2"):
                end = col + count
                bad = Signal()
                with m.Switch(target):
                    with m.Case(proto.TARGET_WEIGHT):
                        m.d.comb += bad.eq((row >= n_in_l) | (end > n_l))
                    with m.Case(proto.TARGET_BIAS):
                        m.d.comb += bad.eq((row != 0) | (end > n_l))
                    with m.Default():
                        m.d.comb += bad.eq((row != 0) | (col != 0) | (count != 1) | is_readout)
                with m.If((count == 0) | (expected_len != length)):
                    respond(proto.Status.BAD_LENGTH)
                with m.Elif(bad):
                    respond(proto.Status.RANGE)
                with m.Else():
                    m.d.sync += [apply.eq(0), vcount.eq(0), ptr.eq(proto.WRITE_HEADER)]
                    m.next = "W_NEXT"
            with m.State("W_NEXT"):
                with m.If(vcount == count):
                    with m.If(~apply):
                        m.d.sync += [apply.eq(1), vcount.eq(0), ptr.eq(proto.WRITE_HEADER)]
                    with m.Else():
                        m.d.sync += dirty.eq(1)
                        respond(proto.Status.OK)
                with m.Else():
                    m.d.sync += [val_raw.eq(0), vbyte.eq(0)]
                    m.next = "W_VAL_RD"
            with m.State("W_VAL_RD"):
                m.next = "W_VAL_GET"
            with m.State("W_VAL_GET"):
                m.d.sync += [val_raw.word_select(vbyte, 8).eq(brd.data), ptr.eq(ptr + 1), vbyte.eq(vbyte + 1)]
                with m.If(vbyte == vb - 1):
                    m.next = "W_VAL_DONE"
                with m.Else():
                    m.next = "W_VAL_RD"
            with m.State("W_VAL_DONE"):
                with m.If(~apply):
                    with m.If(~in_range):
                        respond(proto.Status.RANGE)
                    with m.Else():
                        m.d.sync += vcount.eq(vcount + 1)
                        m.next = "W_NEXT"
                with m.Else():
                    m.d.comb += core.cfg.valid.eq(1)
                    with m.If(core.cfg.ready):
                        m.d.sync += [vcount.eq(vcount + 1), cfg_writes.eq(cfg_writes + 1)]
                        m.next = "W_NEXT"

            # LOAD: flags, a validating pass, the capacity check, then the applying pass.
            with m.State("L_FLAGS_RD"):
                m.next = "L_FLAGS_GET"
            with m.State("L_FLAGS_GET"):
                m.d.sync += [flags.eq(brd.data), ptr.eq(1), apply.eq(0)]
                with m.If((brd.data & (0xFF ^ proto.LOAD_FLAGS)) != 0):
                    respond(proto.Status.RANGE)
                with m.Else():
                    m.next = "L_NEXT"
            with m.State("L_NEXT"):
                with m.If(ptr == length):
                    with m.If(~apply):
                        have = Mux(flags[0], 0, loaded)
                        with m.If(have + nwords > self.max_events):
                            respond(proto.Status.OVERFLOW)
                        with m.Else():
                            m.d.sync += [apply.eq(1), ptr.eq(1)]
                            with m.If(flags[0]):
                                m.d.comb += core.clear.eq(1)
                                m.d.sync += loaded.eq(0)
                    with m.Elif(flags[1]):
                        m.d.sync += resp_len.eq(4 + geo.output_bytes)
                        m.next = "RUN_START"
                    with m.Else():
                        respond(proto.Status.OK)
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
                        respond(proto.Status.RANGE)
                    with m.Else():
                        m.next = "L_NEXT"
                with m.Else():
                    m.d.comb += core.load.valid.eq(1)
                    with m.If(core.load.ready):
                        m.d.sync += loaded.eq(loaded + 1)
                        m.next = "L_NEXT"

            with m.State("RUN_START"):
                m.d.comb += core.start.eq(1)
                m.next = "RUN_WAIT1"
            with m.State("RUN_WAIT1"):
                m.next = "RUN_WAIT"
            with m.State("RUN_WAIT"):
                with m.If(core.done):
                    m.d.sync += [last_cycles.eq(core.cycles), status.eq(proto.Status.OK), src.eq(SRC_RUNOUT)]
                    m.next = "R_SYNC"

            # --- response encoder ----------------------------------------------------------------
            with m.State("R_SYNC"):
                def after_sync():
                    m.d.sync += [crc.eq(0xFFFF), hcnt.eq(0), idx.eq(0)]
                    m.next = "R_HDR"
                send(proto.SYNC_RESP, after_sync, update_crc=False)
            with m.State("R_HDR"):
                resp_len16 = Signal(16)
                m.d.comb += resp_len16.eq(resp_len)
                header = Cat(cmd, tag, status, resp_len16)
                hb = Signal(8)
                with m.Switch(idx[:3]):
                    for i in range(5):
                        with m.Case(i):
                            m.d.comb += hb.eq(header.word_select(i, 8))

                def after_hdr():
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == 4):
                        m.d.sync += [idx.eq(0), k.eq(0), j.eq(0)]
                        with m.If(resp_len == 0):
                            m.next = "R_CRC0"
                        with m.Else():
                            m.next = "R_FETCH"
                send(hb, after_hdr)
            with m.State("R_FETCH"):
                # Memory reads and out_addr take effect one cycle later.
                m.next = "R_SEND"
            with m.State("R_SEND"):
                def after_byte():
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(in_out):
                        m.d.sync += j.eq(j + 1)
                        with m.If(j == cb + mb - 1):
                            m.d.sync += [j.eq(0), k.eq(k + 1)]
                    with m.If(idx == resp_len - 1):
                        m.next = "R_CRC0"
                    with m.Else():
                        m.next = "R_FETCH"
                send(src_byte, after_byte)
            with m.State("R_CRC0"):
                def after_crc0():
                    m.next = "R_CRC1"
                send(crc[:8], after_crc0, update_crc=False)
            with m.State("R_CRC1"):
                def after_crc1():
                    m.next = "HUNT"
                send(crc[8:], after_crc1, update_crc=False)

        return m
