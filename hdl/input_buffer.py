"""The core's input buffer: in one iCE40 SB_SPRAM256KA tile (``HardwareConfig.input_ram = "spram"``),
and its head word in a flip-flop (``HardwareConfig.registered_reads``).

The buffer is written only while the core is idle (``load``) and read only from the cycle after
``start`` on (a load in the very cycle of ``start`` is not part of the port contract), so the
tile's single port serves both: the write address wins in a cycle with a write, the read address
otherwise. DATAOUT is registered, so reads keep the block RAM's one-cycle latency and the core's
look-ahead read of the next word (hdl.core) works unchanged. A block RAM of 8,192 words of 11 bits
(rate-coded MNIST at T = 32 on a conv-first network) costs 24 of the UP5K's 30 blocks.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal

from ..model.hardware import SPRAM_WIDTH
from .spram import MemPort, spram_tile

__all__ = ["spram_buffer_ports", "input_head"]


def spram_buffer_ports(m, width: int, primitive) -> tuple[MemPort, MemPort]:
    """(write port, read port) of a buffer of ``width``-bit words in one SPRAM tile (HardwareConfig.geometry
    checks that it fits: at most 16,384 words of at most 16 bits). ``primitive``: True instantiates
    SB_SPRAM256KA, ``"model"`` its cycle model (hdl.spram.SPRAM256KAModel)."""
    wr, rd = MemPort(14, width, name="ib_wr"), MemPort(14, width, name="ib_rd")
    dout = spram_tile(m, "input_spram", primitive, address=Mux(wr.en, wr.addr, rd.addr),
                      datain=Cat(wr.data, Const(0, SPRAM_WIDTH - width)), maskwren=Const(0b1111, 4), wren=wr.en)
    m.d.comb += rd.data.eq(dout[:width])
    return wr, rd


def input_head(m, rd, head, idle, pop, rd_ptr, rd_ptr1, rd_next) -> list:
    """Registered reads: ``head`` (a flip-flop) holds the word at ``rd_ptr`` in every cycle of a run,
    as the look-ahead read port's data does without the option, with the same cycles. The port
    reads one word further ahead, at ``rd_next + 1`` (``rd_ptr1`` is the register of
    ``rd_next + 1``): the word a pop in the next cycle moves to the head. While the core is idle
    it reads ``rd_ptr`` = 0 instead, and the head takes that word until the cycle after the one
    that sees ``start``, so a load just before ``start`` is seen. Returns the statements that
    rewind the extra pointer with ``rd_ptr`` at the end of a run."""
    rd_ptr2 = Signal.like(rd_ptr, init=2, name="rd_ptr2")
    m.d.sync += rd_ptr2.eq(rd_next + 2)
    refresh = Signal(name="input_refresh")
    m.d.sync += refresh.eq(idle)
    m.d.comb += rd.addr.eq(Mux(idle, rd_ptr, Mux(pop, rd_ptr2, rd_ptr1)))
    with m.If(refresh | pop):
        m.d.sync += head.eq(rd.data)
    return [rd_ptr2.eq(2)]
