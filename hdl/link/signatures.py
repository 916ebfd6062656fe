"""The interfaces between the host link's blocks: what a frame, a response header and the decoder's
events look like on the wires between :class:`FrameDecoder`, :class:`CommandEngine` and
:class:`ResponseEncoder`, plus the CRC they share."""
from amaranth.hdl import Cat, Const, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.crc import catalog
from amaranth.lib.wiring import In, Out

from ...model.protocol import CRC_INIT, LOAD_FLAGS, layout_len

__all__ = ["FrameInfo", "ResponseInfo", "RxEvents", "BufferRead", "small", "byte_zero", "crc16_processor",
           "cat_fields"]

# A payload byte is "small" when only its low SMALL_BITS bits may be set: LOAD's flags byte must be.
SMALL_BITS = 2
assert LOAD_FLAGS == (1 << SMALL_BITS) - 1


class FrameInfo(data.StructLayout):
    """A request frame whose CRC matched; its payload waits in the decoder's buffer."""
    def __init__(self, max_payload: int):
        super().__init__({"cmd": 8, "tag": 8, "length": range(max_payload + 1)})


class ResponseInfo(data.StructLayout):
    """A response header; ``length`` payload bytes follow on the encoder's ``data`` stream."""
    def __init__(self):
        super().__init__({"cmd": 8, "tag": 8, "status": 8, "length": 16})


class RxEvents(data.StructLayout):
    """One-cycle pulses from the decoder, counted in the status block."""
    def __init__(self):
        super().__init__({"frame_ok": 1, "crc_error": 1, "length_error": 1, "timeout": 1, "rx_error": 1})


class BufferRead(wiring.Signature):
    """Read port of the payload buffer, from the reader's side: ``data`` is the byte at ``addr``
    of the previous cycle, ``small`` is :func:`small` of it. (With registered reads, of two cycles
    before: the readers then address it a cycle ahead, :class:`~spikegate.hdl.link.ahead.Ahead`.)

    ``small`` can be kept in the buffer beside each byte, so that the tests of a byte just read
    start at a block RAM output rather than behind a LUT tree over its 8 bits (timing: the zero
    test in front of the encoder's spike decision and LOAD's flags check in front of the engine's
    next state were the OrangeCrab's critical paths)."""
    def __init__(self, depth: int):
        super().__init__({"addr": Out(range(depth)), "data": In(8), "small": In(1)})


def small(byte):
    """Whether ``byte`` has no bit set above its low ``SMALL_BITS`` (LOAD's flags are those)."""
    return byte[SMALL_BITS:] == 0


def byte_zero(buf):
    """Whether the byte a :class:`BufferRead` port reads is zero: one LUT from ``small``."""
    return buf.small & (buf.data[:SMALL_BITS] == 0)


def crc16_processor():
    """CRC-16/CCITT-FALSE over bytes (the protocol's frame check), from Amaranth's catalogue."""
    params = catalog.CRC16_CCITT_FALSE(data_width=8)
    assert params.compute(b"") == CRC_INIT  # the protocol's initial value, no final XOR
    return params.create()


def cat_fields(fields, values: dict):
    """``Cat`` of ``values`` (field name -> Value) laid out as the byte table ``fields`` of
    :mod:`spikegate.model.protocol`, each zero-extended to its field's width."""
    parts = []
    for f in fields:
        v = values[f.name]
        width = 8 * f.size
        if len(v) > width:
            raise ValueError(f"field {f.name} has {width} bits; {len(v)} do not fit")
        parts.append(Cat(v.as_unsigned(), Const(0, unsigned(width - len(v)))) if len(v) < width else v.as_unsigned())
    word = Cat(*parts)
    assert len(word) == 8 * layout_len(fields)
    return word
