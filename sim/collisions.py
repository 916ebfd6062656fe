"""Simulate the block RAMs as synthesis builds them: a read that collides with a write returns garbage.

The gateware marks most memories ``no_rw_check`` (``hdl.synapse.BLOCK_RAM_NO_COLLISION``): its
schedule never uses a word read in the cycle that word is written, so the board builds tell Yosys
such a read may return anything (``boards.flow.synth_options``) and no soft logic is added to
make it return the old word. Amaranth's simulator, and the Verilog it writes, return the old word,
so a schedule that did use such a read would pass every simulation and fail on the board.

:class:`CollisionPoison` closes that gap. Passed as the elaboration platform (``Memory.elaborate``
asks a platform with ``get_memory`` to build each memory), it builds every ``no_rw_check``
memory so that a synchronous read colliding with a write (same domain, same address, both
enabled) returns the old word with every written lane inverted, for as long as the port holds
that read. Any use of such a word then changes the result. Memories without the attribute are
built exactly as Amaranth builds them.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Fragment, MemoryInstance, Module, Mux, Signal, Value

from ..hdl.synapse import NO_RW_CHECK

__all__ = ["CollisionPoison", "poisoned"]


def _instance(memory, read_data) -> MemoryInstance:
    """``memory``'s ports on one MemoryInstance, read port k driving ``read_data[k]``."""
    inst = MemoryInstance(data=memory.data, attrs=memory.attrs)
    writes = {w: inst.write_port(domain=w.domain, addr=w.addr, data=w.data, en=w.en) for w in memory.write_ports}
    for r, data in zip(memory.read_ports, read_data):
        inst.read_port(domain=r.domain, addr=r.addr, data=data, en=r.en,
                       transparent_for=tuple(writes[w] for w in r.transparent_for))
    return inst


class CollisionPoison:
    """Elaboration platform for simulation only; see the module docstring. ``hits`` counts the
    memories it poisoned (so a test can check that it was used)."""

    def __init__(self):
        self.hits = 0

    def get_memory(self, memory):
        if not memory.attrs.get(NO_RW_CHECK):
            return _instance(memory, [r.data for r in memory.read_ports])
        self.hits += 1
        m = Module()
        raw = [Signal(len(Value.cast(r.data)), name=f"raw{k}") for k, r in enumerate(memory.read_ports)]
        m.submodules.mem = _instance(memory, raw)
        for k, (r, data) in enumerate(zip(memory.read_ports, raw)):
            flip = self._flip(m, r, memory.write_ports, len(data), k)
            m.d.comb += Value.cast(r.data).eq(data ^ flip)
        return m

    @staticmethod
    def _flip(m, r, writes, width: int, k: int):
        """The bits port ``r``'s data inverts: the lanes written at its address in the cycle of
        the read it shows (0 for an asynchronous port, which sees the write's result)."""
        if r.domain == "comb":
            return Const(0, width)
        lanes = Const(0, width)
        for w in writes:
            if w.domain != r.domain or w in r.transparent_for:
                continue
            en = Value.cast(w.en)
            gran = width // len(en)
            mask = Cat(*(en[i].replicate(gran) for i in range(len(en))))
            lanes = lanes | Mux(Value.cast(r.addr) == Value.cast(w.addr), mask, 0)
        flip = Signal(width, name=f"collision{k}")
        with m.If(r.en):  # the port holds its word (and its poison) while not enabled
            m.d[r.domain] += flip.eq(lanes)
        return flip


def poisoned(dut, platform: CollisionPoison | None = None) -> Fragment:
    """``dut`` elaborated for Amaranth's simulator with its colliding reads poisoned, as in every
    Verilog the simulators run (``platform``: a caller's CollisionPoison, to count its hits)."""
    return Fragment.get(dut, CollisionPoison() if platform is None else platform)
