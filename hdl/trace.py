"""The trace memory of :class:`~spikegate.hdl.core.NetworkCore` (``trace_depth > 0``): the ``mon``
words of a run, readable afterwards through ``trace_addr``/``trace_data``.

One bank per group of layers of ``core.trace_banks``, each a block RAM with one write port:
the sequential schedule has one bank for all layers (one layer emits at a time), the inflight
schedule one per layer (layers emit in the same cycle). The banks are read back one after the
other, so ``trace_count`` counts the words kept in all of them.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Signal

from ..model.layer import bits_for, ceil_log2

__all__ = ["trace_banks"]


def trace_banks(m, core, idle) -> None:
    """Trace banks (one write port each): bank b records the mon words of its layers (one of
    them emits in a cycle); read back bank after bank, ``trace_count`` words in all."""
    depth = core.trace_depth
    addr_bits = max(1, ceil_log2(depth))
    counts, overs, reads = [], [], []
    for b, (mem, layers) in enumerate(zip(core.trace_mems, core.trace_banks)):
        m.submodules[f"trace_mem{b}" if len(core.trace_mems) > 1 else "trace_mem"] = mem
        wr, rd = mem.write_port(), mem.read_port()
        count = Signal(bits_for(depth), name=f"trace_count{b}")
        over = Signal(name=f"trace_over{b}")
        word = Signal(core.mon_layout, name=f"trace_word{b}")
        for l in layers:
            with m.If(core.mon[l].valid):
                m.d.comb += word.eq(core.mon[l])
        m.d.comb += [wr.addr.eq(count), wr.data.layer.eq(word.layer), wr.data.step.eq(word.step),
                     wr.data.base.eq(word.base), wr.data.word.eq(word.word)]
        with m.If(idle & core.start):
            m.d.sync += [count.eq(0), over.eq(0)]
        with m.Elif(word.valid):
            with m.If(count == depth):
                m.d.sync += over.eq(1)
            with m.Else():
                m.d.comb += wr.en.eq(1)
                m.d.sync += count.eq(count + 1)
        counts.append(count)
        overs.append(over)
        reads.append(rd)
    # Bank b holds words [sum of the counts before it, + its count) of the read-back order.
    below = Const(0, core.trace_count.shape())
    sel = Signal(range(len(reads)))
    sel_q = Signal.like(sel)
    for b, (rd, count) in enumerate(zip(reads, counts)):
        m.d.comb += rd.addr.eq((core.trace_addr - below)[:addr_bits])
        if b:
            with m.If(core.trace_addr >= below):
                m.d.comb += sel.eq(b)
        below = below + count
    m.d.sync += sel_q.eq(sel)
    m.d.comb += [core.trace_count.eq(below), core.trace_overflow.eq(Cat(*overs).any()),
                 core.trace_data.eq(reads[0].data)]
    for b, rd in enumerate(reads[1:], 1):
        with m.If(sel_q == b):
            m.d.comb += core.trace_data.eq(rd.data)
