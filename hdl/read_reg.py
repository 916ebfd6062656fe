"""The register behind a block RAM read (``HardwareConfig.registered_reads``).

An ECP5 DP16KD takes 5.8 ns from clock to data at speed grade 6 (docs/timing.md), so any logic
behind a read leaves little of a 10 ns cycle. With the option, each read's data goes into a
flip-flop first and the logic starts from there, a cycle later (:func:`late`), and a deep weight
memory is built as narrow slices, so that no wide multiplexer sits between the blocks and that
flip-flop (:func:`weight_slices`). A slice (or a whole memory) still deeper than one block is built
from block-deep parts, each part's word registered before the multiplexer that picks the part
(:func:`sliced_ports`; ``model.blocks.weight_parts``): the core then has two read stages. Without
the option, nothing is added: the netlist is the one built before the option existed.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Mux, Signal, unsigned
from amaranth.lib.memory import Memory

from ..model.blocks import slice_depth, weight_parts, weight_slice_bits
from ..model.layer import LayerGeometry, ceil_log2
from .spram import MemPort

__all__ = ["late", "late_tapped", "weight_slices", "sliced_ports"]


def late(m, value, stages: int, name: str, *, reset_less: bool = False):
    """``value`` registered ``stages`` times (0: ``value`` itself, no signal added), as ``name``;
    ``reset_less`` for data, whose flip-flop then has nothing in front of it."""
    for k in range(stages):
        reg = Signal(value.shape(), name=name if stages == 1 else f"{name}_{k}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def late_tapped(m, value, stages: int, name: str):
    """``(first, last)``: ``value`` after its first register (``name``) and after all ``stages``
    (the rest ``name`` + "r"); ``value`` itself for both when ``stages`` is 0. With two read stages
    the idle-time reads take the first, so their latencies do not change (model.hardware)."""
    first = late(m, value, min(stages, 1), name)
    return first, late(m, first, stages - min(stages, 1), f"{name}r")


def weight_slices(geo: LayerGeometry, words: list[int], attrs: dict) -> list[list[Memory]]:
    """The weight memory of initial contents ``words`` as slices of
    :func:`~spikegate.model.blocks.weight_slice_bits` bits (slice k: bits k*s .. k*s+s-1 of every
    word; one slice of whole words when it keeps them whole), each a list of its block-deep parts
    (:func:`~spikegate.model.blocks.weight_parts`; part j: words j*d .. j*d+d-1), or [] to keep the
    memory one :class:`Memory` (whole words, one block deep)."""
    sb, parts = weight_slice_bits(geo), weight_parts(geo)
    if sb is None and parts == 1:
        return []
    sb = sb or geo.lanes * geo.weight_bits
    depth, d = geo.n_in * geo.groups, slice_depth(sb)
    mask = (1 << sb) - 1
    return [[Memory(shape=unsigned(sb), depth=min(d, depth - j * d), attrs=attrs,
                    init=[(w >> (k * sb)) & mask for w in words[j * d:(j + 1) * d]])
             for j in range(parts)]
            for k in range(geo.lanes * geo.weight_bits // sb)]


def sliced_ports(m, slices: list[list[Memory]], geo: LayerGeometry) -> tuple[MemPort, MemPort]:
    """(read port, write port) of the weight memory built as ``slices`` (:func:`weight_slices`), all
    at the same address; a narrow slice lies within one lane, so the lane's write enable is the
    slice's, and a slice of whole words takes every lane's, a lane at a time. With parts, each
    part's word is registered and the part is picked behind those registers by the address's high
    bits, registered as long: the read port's data then comes a cycle later; a write goes to the
    part its high bits name."""
    W, wb = geo.lanes * geo.weight_bits, geo.weight_bits
    addr_bits = max(1, ceil_log2(geo.n_in * geo.groups))
    rd, wr = MemPort(addr_bits, W, geo.lanes), MemPort(addr_bits, W, geo.lanes)
    sb = W // len(slices)
    parts = len(slices[0])
    low = ceil_log2(slices[0][0].depth) if parts > 1 else addr_bits
    if parts > 1:
        # the part a read picks, known when its word leaves the part's register
        pick = late(m, rd.addr[low:], 2, "weight_part")
    data = []
    for k, mems in enumerate(slices):
        words = []
        for j, mem in enumerate(mems):
            name = f"weights_{k}" if parts == 1 else f"weights_{k}_{j}"
            m.submodules[name] = mem
            lanes = max(1, sb // wb)  # lanes a slice holds: 1, or all of them (whole words)
            r, w = mem.read_port(), mem.write_port(granularity=min(sb, wb))
            en = wr.en[k * sb // wb:k * sb // wb + lanes]
            if parts > 1:
                en = en & (wr.addr[low:] == j).replicate(lanes)
            r_addr, w_addr = (rd.addr, wr.addr) if parts == 1 else (rd.addr[:low], wr.addr[:low])
            m.d.comb += [r.addr.eq(r_addr), w.addr.eq(w_addr), w.data.eq(wr.data[k * sb:(k + 1) * sb]), w.en.eq(en)]
            words.append(r.data if parts == 1 else late(m, r.data, 1, f"{name}_word", reset_less=True))
        word = words[0]
        for j in range(1, parts):
            word = Mux(pick == j, words[j], word)
        data.append(word)
    m.d.comb += rd.data.eq(Cat(*data))
    return rd, wr
