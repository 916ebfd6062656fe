"""iCE40 UltraPlus SB_SPRAM256KA tiles: a layer's weight memory built from them, one tile, and the
tile's cycle model for Amaranth's simulator (``HardwareConfig.weight_ram``/``input_ram = "spram"``)."""
from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.layer import ceil_log2

__all__ = ["MemPort", "spram_weight_ports", "spram_tile", "SPRAM256KAModel"]


def spram_weight_ports(m, geo, primitive):
    """A layer's weight memory (``geo``) as SB_SPRAM256KA tiles (16 bits x 16 K words each) behind
    read/write-port-like records; ``primitive`` as :func:`spram_tile`'s.

    Single-ported: reads (run) and writes (cfg, idle only; a plastic layer's learning writes,
    which the engine schedules between its reads) never happen in the same cycle, so one
    address serves both. The per-lane write enable becomes the per-nibble MASKWREN
    (weight_bits is a multiple of 4, checked by HardwareConfig.geometry). Words of 4 or 8 bits
    are packed ``geo.spram_pack`` to an SPRAM word: the low address bits pick the slot, which
    a write enables by nibble mask and a read selects a cycle later, after the registered
    DATAOUT, so the read latency stays one cycle.
    """
    P, wb = geo.lanes, geo.weight_bits
    W, D, pack = P * wb, geo.n_in * geo.groups, geo.spram_pack
    slot_bits = ceil_log2(pack)
    words = -(-D // pack)
    cols, rows = -(-W // 16), -(-words // 16384)
    addr_bits = max(1, ceil_log2(D))
    rd = MemPort(addr_bits, W, P)
    wr = MemPort(addr_bits, W, P)
    word = Signal(addr_bits)
    m.d.comb += word.eq(Mux(wr.en.any(), wr.addr, rd.addr))
    addr = Signal(max(addr_bits - slot_bits, 15))
    slot = word[:slot_bits]
    m.d.comb += addr.eq(word[slot_bits:])
    nib_en = Signal(cols * 4)
    lane_nibbles = Cat(*[e.replicate(wb // 4) for e in wr.en])
    m.d.comb += nib_en.eq(lane_nibbles << (slot * (W // 4)) if slot_bits else lane_nibbles)
    wdata = Signal(cols * 16)
    m.d.comb += wdata.eq(wr.data.replicate(pack))
    row_q = Signal(range(max(rows, 2)))
    if rows > 1:
        m.d.sync += row_q.eq(addr[14:])
    slot_q = Signal(max(1, len(slot)))
    if slot_bits:
        m.d.sync += slot_q.eq(slot)
    outs = []
    for r in range(rows):
        selected = (addr[14:] == r) if rows > 1 else Const(1)
        row_out = []
        for c in range(cols):
            row_out.append(spram_tile(m, f"spram_r{r}c{c}", primitive, address=addr[:14],
                                      datain=wdata[c * 16:(c + 1) * 16], maskwren=nib_en[c * 4:(c + 1) * 4],
                                      wren=wr.en.any() & selected))
        outs.append(Cat(*row_out))
    tile_word = Signal(cols * 16)
    if rows == 1:
        m.d.comb += tile_word.eq(outs[0])
    else:
        with m.Switch(row_q):
            for r in range(rows):
                with m.Case(r):
                    m.d.comb += tile_word.eq(outs[r])
    m.d.comb += rd.data.eq(tile_word.word_select(slot_q, W) if slot_bits else tile_word)
    return rd, wr


def spram_tile(m, name: str, primitive, *, address, datain, maskwren, wren) -> Signal:
    """One SB_SPRAM256KA tile, powered and awake, as submodule ``name``: the primitive (``primitive``
    True) or its cycle model (``"model"``). Returns its registered 16-bit DATAOUT."""
    dout = Signal(16, name=f"{name}_data")
    ports = dict(ADDRESS=address, DATAIN=datain, MASKWREN=maskwren, WREN=wren,
                 CHIPSELECT=Const(1), STANDBY=Const(0), SLEEP=Const(0), POWEROFF=Const(1))
    if primitive == "model":
        tile = m.submodules[name] = SPRAM256KAModel()
        m.d.comb += [getattr(tile, k).eq(v) for k, v in ports.items()]
        m.d.comb += dout.eq(tile.DATAOUT)
    else:
        m.submodules[name] = Instance("SB_SPRAM256KA", i_CLOCK=ClockSignal(), o_DATAOUT=dout,
                                      **{f"i_{k}": v for k, v in ports.items()})
    return dout


class SPRAM256KAModel(wiring.Component):
    """Cycle model of the iCE40 SB_SPRAM256KA (as in Yosys' cells_sim.v, powered and awake), so the
    SPRAM tiling, address multiplexing and nibble masks can be checked in Amaranth's simulator.
    DATAOUT is registered: a read (CHIPSELECT, not WREN) shows mem[ADDRESS] the next cycle; a
    write updates the enabled nibbles (DATAOUT is undefined then: 0 here, never used)."""

    def __init__(self):
        super().__init__({
            "ADDRESS": In(14), "DATAIN": In(16), "MASKWREN": In(4), "WREN": In(1), "CHIPSELECT": In(1),
            "STANDBY": In(1), "SLEEP": In(1), "POWEROFF": In(1), "DATAOUT": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=16, depth=16384, init=[])
        rd = mem.read_port()
        wr = mem.write_port(granularity=4)
        m.d.comb += [
            rd.addr.eq(self.ADDRESS), rd.en.eq(self.CHIPSELECT & ~self.WREN),
            wr.addr.eq(self.ADDRESS), wr.data.eq(self.DATAIN),
            wr.en.eq(Mux(self.CHIPSELECT & self.WREN, self.MASKWREN, 0)),
            self.DATAOUT.eq(rd.data),
        ]
        return m


class MemPort:
    """The subset of a memory port the weight memories and the input buffer drive: addr, data, and
    one write enable per lane; its signals named ``name``_addr, ... when ``name`` is given."""

    def __init__(self, addr_bits, width, lanes=1, name: str | None = None):
        prefix = f"{name}_" if name else ""
        self.addr = Signal(addr_bits, name=f"{prefix}addr")
        self.data = Signal(width, name=f"{prefix}data")
        self.en = Signal(lanes, name=f"{prefix}en")
