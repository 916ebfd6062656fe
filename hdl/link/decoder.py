"""FrameDecoder: request bytes in, checked frames (or rejections) out. Byte-level twin:
:class:`spikegate.model.link.FrameDecoder`."""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...model.protocol import REQUEST_HEADER, SYNC_REQ, Status
from ..read_reg import late
from .signatures import BufferRead, FrameInfo, ResponseInfo, RxEvents, crc16_processor, small

__all__ = ["FrameDecoder", "FrameDecoderSignature", "payload_bank", "payload_depth", "payload_word_bits"]


def payload_bank(max_payload: int) -> int:
    """Bytes of one bank of a streaming decoder's payload buffer: ``max_payload`` rounded up to a
    power of two, so the bank is chosen by one address bit above the pointer's."""
    return 1 << (max_payload - 1).bit_length()


def payload_depth(max_payload: int, stream: bool) -> int:
    """Words of the decoder's payload buffer: ``max_payload``, or two banks when streaming."""
    return 2 * payload_bank(max_payload) if stream else max_payload


def payload_word_bits(small_bit: bool) -> int:
    """Bits of a payload buffer word: the byte, and with ``small_bit`` its ``small`` flag."""
    return 9 if small_bit else 8


class FrameDecoderSignature(wiring.Signature):
    """Ports of :class:`FrameDecoder` (``max_payload``: the payload buffer's size in bytes)."""
    def __init__(self, max_payload: int):
        super().__init__({
            "i": In(stream.Signature(8)),
            "line_error": In(1),
            "frame": Out(stream.Signature(FrameInfo(max_payload))),
            "reject": Out(stream.Signature(ResponseInfo())),
            "release": In(1),
            "buf": In(BufferRead(max_payload)),
            "hunting": Out(1),
            "listening": Out(1),
            "settled": Out(1),
            "events": Out(RxEvents()),
        })


class FrameDecoder(wiring.Component):
    """Hunts for the sync byte, reads the header, stores the payload in its buffer and checks the
    CRC before anything downstream sees the frame.

    Ports:

    - ``i`` (stream in): received bytes; always ready (bytes that arrive while a frame is being
      executed or answered are dropped and reported as ``events.rx_error``).
    - ``line_error`` (in): a UART framing error or overrun, reported as ``events.rx_error``.
    - ``frame`` (stream out, :class:`FrameInfo`): a frame whose CRC matched; its payload is in the
      buffer, read through ``buf``.
    - ``reject`` (stream out, :class:`ResponseInfo`, ``length`` 0): a frame answered here without
      reaching the engine: BAD_LENGTH (``len > max_payload``), BAD_CRC, or TIMEOUT (no byte for
      ``frame_timeout`` cycles inside a frame; ``cmd``/``tag`` as received so far).
    - ``release`` (in): the answer to the last frame or rejection has been sent; hunt again.
    - ``buf`` (in, :class:`BufferRead`): read port of the payload buffer.
    - ``hunting``, ``listening`` (out): waiting for a sync byte; hunting or inside a frame.
    - ``settled`` (out): every frame handed to the engine has been answered (always high without
      ``stream``, where the decoder hunts only then).
    - ``events`` (out, :class:`RxEvents`): pulses for the status counters.

    ``stream`` (docs/protocol.md, "Streaming"): the payload buffer has two banks. The engine reads
    the bank of the frame it executes while the decoder receives and checks the next frame into the
    other, and hands it over when the engine takes it (answers stay in order: the engine takes a
    frame only when the last one's answer is on its way). A rejection waits until every frame
    handed over before it has been answered. Without ``stream`` the decoder hunts again only after
    each answer (``release``), and bytes that arrive meanwhile are dropped.

    ``small_bit``: the buffer keeps ``buf.small`` beside each byte, a 9-bit word (free where a
    block RAM's words are 9 bits wide, as on ECP5 and Gowin: :func:`spikegate.boards.fit.choose_small_bit`);
    without it ``small`` is taken from the byte as it is read. The bytes and cycles are the same.

    ``registered`` (``HardwareConfig.registered_reads``): the buffer's read word goes into a
    flip-flop before ``buf`` sees it, so a byte arrives two cycles after its address; every reader
    then addresses it a cycle ahead (:class:`~spikegate.hdl.link.ahead.Ahead`), and no cycle count
    changes.
    """

    def __init__(self, max_payload: int, frame_timeout: int, *, stream: bool = False, small_bit: bool = True,
                 registered: bool = False):
        self.max_payload, self.frame_timeout = max_payload, frame_timeout
        self.stream, self.small_bit, self.registered = bool(stream), bool(small_bit), bool(registered)
        super().__init__(FrameDecoderSignature(max_payload))

    def elaborate(self, platform):
        m = Module()
        ptr = Signal(range(self.max_payload + 1))
        wr, rd, rejecting = self._payload_buffer(m, ptr)
        m.submodules.crc = crc = crc16_processor()
        byte, valid = self.i.payload, self.i.valid
        read = rd.data
        if self.registered:
            # timing: the block RAM's data into a flip-flop first, the readers' logic after it
            read = late(m, rd.data, 1, "read", reset_less=True)
        m.d.comb += [self.i.ready.eq(1), self.buf.data.eq(read[:8]), crc.data.eq(byte)]
        if self.small_bit:
            m.d.comb += self.buf.small.eq(read[8])
        else:
            m.d.comb += self.buf.small.eq(small(read))

        cmd, tag, len_lo = Signal(8), Signal(8), Signal(8)
        # The CRC's low byte is judged when it arrives (the CRC is complete by then), so the last
        # byte meets an 8-bit compare, not a 16-bit one, on its way to the engine (timing).
        lo_ok = Signal()
        # ptr == length - 1 as a flag that moves with ptr (timing: the subtraction and the compare
        # ran on into the next-state logic; with the engine's tests registered this became the
        # MNIST iCEBreaker build's critical path): set from the length as it arrives, then from
        # the pointer it is about to take.
        at_last = Signal()
        length = Signal(range(self.max_payload + 1))
        hcnt = Signal(range(REQUEST_HEADER))
        status = Signal(8)
        m.d.comb += [self.frame.payload.cmd.eq(cmd), self.frame.payload.tag.eq(tag),
                     self.frame.payload.length.eq(length),
                     self.reject.payload.cmd.eq(cmd), self.reject.payload.tag.eq(tag),
                     self.reject.payload.status.eq(status)]

        receiving = Signal()
        tcount = Signal(range(self.frame_timeout + 1))
        timed_out = Signal()
        with m.If(~receiving | valid):
            m.d.sync += tcount.eq(0)
        with m.Else():
            m.d.sync += tcount.eq(tcount + 1)
        m.d.comb += [timed_out.eq(receiving & ~valid & (tcount == self.frame_timeout - 1)),
                     self.listening.eq(self.hunting | receiving),
                     self.events.rx_error.eq(self.line_error | (valid & ~self.listening)),
                     self.events.timeout.eq(timed_out)]

        def reject(st):
            m.d.sync += status.eq(st)
            m.next = "REJECT"

        def on_timeout():
            m.d.comb += receiving.eq(1)
            with m.If(timed_out):
                reject(Status.TIMEOUT)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.hunting.eq(1)
                with m.If(valid & (byte == SYNC_REQ)):
                    m.d.comb += crc.start.eq(1)
                    m.d.sync += [hcnt.eq(0), cmd.eq(0), tag.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                on_timeout()
                with m.If(valid):
                    m.d.comb += crc.valid.eq(1)
                    m.d.sync += hcnt.eq(hcnt + 1)
                    with m.Switch(hcnt):
                        with m.Case(0):
                            m.d.sync += cmd.eq(byte)
                        with m.Case(1):
                            m.d.sync += tag.eq(byte)
                        with m.Case(2):
                            m.d.sync += len_lo.eq(byte)
                        with m.Case(3):
                            n = Cat(len_lo, byte)
                            m.d.sync += [length.eq(n), ptr.eq(0), at_last.eq(n == 1)]
                            with m.If(n > self.max_payload):
                                m.d.comb += self.events.length_error.eq(1)
                                reject(Status.BAD_LENGTH)
                            with m.Elif(n == 0):
                                m.next = "CRC0"
                            with m.Else():
                                m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                on_timeout()
                with m.If(valid):
                    m.d.comb += [wr.data.eq(Cat(byte, small(byte)) if self.small_bit else byte),
                                 wr.en.eq(1), crc.valid.eq(1)]
                    m.d.sync += [ptr.eq(ptr + 1), at_last.eq(ptr + 2 == length)]
                    with m.If(at_last):
                        m.next = "CRC0"
            with m.State("CRC0"):
                on_timeout()
                with m.If(valid):
                    m.d.sync += lo_ok.eq(byte == crc.crc[:8])
                    m.next = "CRC1"
            with m.State("CRC1"):
                on_timeout()
                with m.If(valid):
                    with m.If(~lo_ok | (byte != crc.crc[8:])):
                        m.d.comb += self.events.crc_error.eq(1)
                        reject(Status.BAD_CRC)
                    with m.Else():
                        # Offered at once, so the engine starts in the next cycle.
                        m.d.comb += [self.events.frame_ok.eq(1), self.frame.valid.eq(1)]
                        with m.If(self.frame.ready):
                            m.next = "HUNT" if self.stream else "WAIT"
                        with m.Else():
                            m.next = "FRAME"
            with m.State("FRAME"):
                m.d.comb += self.frame.valid.eq(1)
                with m.If(self.frame.ready):
                    m.next = "HUNT" if self.stream else "WAIT"
            with m.State("REJECT"):
                # (streaming: after the answers to every frame handed over before it)
                m.d.comb += self.reject.valid.eq(self.settled)
                with m.If(self.settled & self.reject.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                m.d.comb += rejecting.eq(1)
                with m.If(self.release):
                    m.next = "HUNT"
        return m

    @property
    def word_bits(self) -> int:
        return payload_word_bits(self.small_bit)

    def _payload_buffer(self, m, ptr):
        """The payload buffer's ports, addressed by ``ptr`` (write) and ``buf.addr`` (read); one bank
        without ``stream``, two with it. Returns the ports and ``rejecting`` (comb, to be driven
        high while a release would be a rejection's, not a frame's)."""
        handed, rejecting = Signal(), Signal()
        m.d.comb += handed.eq(self.frame.valid & self.frame.ready)
        m.submodules.buf = buf = Memory(shape=self.word_bits, depth=payload_depth(self.max_payload, self.stream),
                                        init=[])
        wr, rd = buf.write_port(), buf.read_port()
        if not self.stream:
            m.d.comb += [wr.addr.eq(ptr), rd.addr.eq(self.buf.addr), self.settled.eq(1)]
            return wr, rd, rejecting
        abits = payload_bank(self.max_payload).bit_length() - 1
        # wbank: the bank being received into; the engine reads the other one. A hand-off flips it:
        # the engine takes a frame only when idle, so the bank it leaves is free. The hand-off is
        # counted from a flip-flop (handed_q), a cycle later, with wbank = flipped ^ handed_q, so no
        # register's input waits on the CRC compare behind frame.valid (timing: the last CRC byte
        # -> frame.valid -> these registers was an iCEBreaker digits build's critical path).
        handed_q = Signal()
        flipped = Signal()
        wbank = Signal()
        m.d.sync += [handed_q.eq(handed), flipped.eq(wbank)]
        m.d.comb += [wbank.eq(flipped ^ handed_q),
                     wr.addr.eq(Cat(ptr[:abits], wbank)), rd.addr.eq(Cat(self.buf.addr[:abits], ~wbank))]
        # frames handed to the engine whose answers are not yet sent: the one being answered and
        # the one the engine executes (a release in WAIT is a rejection's); counted, like wbank,
        # with the hand-off a cycle late, which handed_q makes up for.
        pending = Signal(2)
        done = self.release & ~rejecting
        m.d.sync += pending.eq(pending + handed_q - done)
        m.d.comb += self.settled.eq((pending == 0) & ~handed_q)
        return wr, rd, rejecting
