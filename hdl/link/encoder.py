"""ResponseEncoder: a response header and its payload bytes in, the response frame out. Byte-level
twin: :class:`spikegate.model.link.ResponseEncoder`."""
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...model.protocol import RESPONSE_HEADER, SYNC_RESP
from .signatures import ResponseInfo, crc16_processor

__all__ = ["ResponseEncoder", "ResponseEncoderSignature"]


class ResponseEncoderSignature(wiring.Signature):
    """Ports of :class:`ResponseEncoder`."""
    def __init__(self):
        super().__init__({
            "resp": In(stream.Signature(ResponseInfo())),
            "reject": In(stream.Signature(ResponseInfo())),
            "data": In(stream.Signature(8)),
            "o": Out(stream.Signature(8)),
            "done": Out(1),
        })


class ResponseEncoder(wiring.Component):
    """Frames one response at a time: sync byte, header, payload, CRC-16 of header and payload.

    Ports:

    - ``resp`` (stream in, :class:`ResponseInfo`): a header from the command engine; its
      ``length`` payload bytes then come on ``data``.
    - ``reject`` (stream in, :class:`ResponseInfo`): a header from the frame decoder (``length``
      0); taken first when both wait (they never do: the decoder waits for the answer).
      A header is taken when ``o`` takes the frame's sync byte, which is offered as soon as a
      header is: an answer costs no cycle beyond the transmitter's.
    - ``data`` (stream in): payload bytes.
    - ``o`` (stream out): the frame's bytes, for the UART transmitter.
    - ``done`` (out): pulses when the frame's last byte has been handed to ``o``.
    """

    def __init__(self):
        super().__init__(ResponseEncoderSignature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = crc16_processor()
        hdr = Signal(ResponseInfo())
        idx = Signal(range(RESPONSE_HEADER))
        count = Signal(16)
        # Whether the next DATA byte is the payload's last: a flip-flop, so that the state's
        # enable does not wait on a 16-bit compare behind the transmitter's ready.
        at_last = Signal()
        header_bytes = Signal(8 * RESPONSE_HEADER)
        m.d.comb += header_bytes.eq(Cat(hdr.cmd, hdr.tag, hdr.status, hdr.length))

        def send(byte, then, checked=True):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(byte)]
            with m.If(self.o.ready):
                if checked:
                    m.d.comb += [crc.data.eq(byte), crc.valid.eq(1)]
                then()

        with m.FSM():
            with m.State("IDLE"):
                # The sync byte goes out in the cycle a header is offered, and the header is taken
                # when the transmitter takes the sync byte.
                def take(source):
                    m.d.comb += [source.ready.eq(1), crc.start.eq(1)]
                    m.d.sync += [hdr.eq(source.payload), idx.eq(0), count.eq(0)]
                    m.next = "HDR"
                with m.If(self.reject.valid):
                    send(SYNC_RESP, lambda: take(self.reject), checked=False)
                with m.Elif(self.resp.valid):
                    send(SYNC_RESP, lambda: take(self.resp), checked=False)
            with m.State("HDR"):
                m.d.sync += at_last.eq(hdr.length == 1)

                def after_hdr():
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == RESPONSE_HEADER - 1):
                        with m.If(hdr.length == 0):
                            m.next = "CRC0"
                        with m.Else():
                            m.next = "DATA"
                send(header_bytes.word_select(idx, 8), after_hdr)
            with m.State("DATA"):
                m.d.comb += [self.data.ready.eq(self.o.ready), self.o.valid.eq(self.data.valid),
                             self.o.payload.eq(self.data.payload)]
                with m.If(self.data.valid & self.o.ready):
                    m.d.comb += [crc.data.eq(self.data.payload), crc.valid.eq(1)]
                    m.d.sync += [count.eq(count + 1), at_last.eq(count + 2 == hdr.length)]
                    with m.If(at_last):
                        m.next = "CRC0"
            with m.State("CRC0"):
                def after_crc0():
                    m.next = "CRC1"
                send(crc.crc[:8], after_crc0, checked=False)
            with m.State("CRC1"):
                def after_crc1():
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                send(crc.crc[8:], after_crc1, checked=False)
        return m
