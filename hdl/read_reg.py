"""The register behind a block RAM read (``HardwareConfig.registered_reads``).

An ECP5 DP16KD takes 5.8 ns from clock to data at speed grade 6 (docs/timing.md), so any logic
behind a read leaves little of a 10 ns cycle. With the option, each read's data goes into a
flip-flop first and the logic starts from there, a cycle later (:func:`late`), and a deep weight
memory is built as narrow slices, so that no wide multiplexer sits between the blocks and that
flip-flop (:func:`weight_slices`). Without it, nothing is added: the netlist is the one built
before the option existed.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Signal, unsigned
from amaranth.lib.memory import Memory

from ..model.blocks import weight_slice_bits
from ..model.layer import LayerGeometry, ceil_log2
from .spram import MemPort

__all__ = ["late", "weight_slices", "sliced_ports"]


def late(m, value, stages: int, name: str, *, reset_less: bool = False):
    """``value`` registered ``stages`` times (0: ``value`` itself, no signal added), as ``name``;
    ``reset_less`` for data, whose flip-flop then has nothing in front of it."""
    for k in range(stages):
        reg = Signal(value.shape(), name=name if stages == 1 else f"{name}_{k}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def weight_slices(geo: LayerGeometry, words: list[int], attrs: dict) -> list[Memory]:
    """The weight memory of initial contents ``words`` as slices of
    :func:`~spikegate.model.blocks.weight_slice_bits` bits
    (slice k: bits k*s .. k*s+s-1 of every word), or [] to keep it whole."""
    sb = weight_slice_bits(geo)
    if sb is None:
        return []
    mask = (1 << sb) - 1
    return [Memory(shape=unsigned(sb), depth=geo.n_in * geo.groups, attrs=attrs,
                   init=[(w >> (k * sb)) & mask for w in words])
            for k in range(geo.lanes * geo.weight_bits // sb)]


def sliced_ports(m, slices: list[Memory], geo: LayerGeometry) -> tuple[MemPort, MemPort]:
    """(read port, write port) of the weight memory built as ``slices``, all at the same address;
    a slice lies within one lane, so the lane's write enable is the slice's."""
    W, wb = geo.lanes * geo.weight_bits, geo.weight_bits
    addr_bits = max(1, ceil_log2(geo.n_in * geo.groups))
    rd, wr = MemPort(addr_bits, W, geo.lanes), MemPort(addr_bits, W, geo.lanes)
    sb = W // len(slices)
    data = []
    for k, mem in enumerate(slices):
        m.submodules[f"weights_{k}"] = mem
        r, w = mem.read_port(), mem.write_port()
        m.d.comb += [r.addr.eq(rd.addr), w.addr.eq(wr.addr), w.data.eq(wr.data[k * sb:(k + 1) * sb]),
                     w.en.eq(wr.en[k * sb // wb])]
        data.append(r.data)
    m.d.comb += rd.data.eq(Cat(*data))
    return rd, wr
