"""Idle-time reads of a plastic layer's learning state (traces, threshold offsets, eligibility),
for read-back after training: the twin's ``model.learning_engine.LearningEngine`` holds the same
values (``traces()``, ``neuron_offsets()``, ``elig``).

While the layer is idle its learning memories' read ports are free: ``state_addr`` (kind, row,
col) addresses them and ``state_data`` answers one cycle later, like the ``param`` port. Kinds
(:class:`spikegate.model.learning_engine.LearnState`): OFFSET[col], PRE_TRACE[row],
POST_TRACE[col], ELIGIBILITY[row, col]; a kind the layer does not keep reads as 0.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..model.learning_engine import LearnState
from .synapse import word_address

__all__ = ["state_members", "state_read"]


def state_width(geo) -> int:
    """``state_data``'s signed width: the widest of the layer's traces, offsets and eligibility."""
    lg = geo.learning
    return max(lg.trace_bits + 1, lg.offset_bits + 1, lg.elig_bits)


def state_members(geo, *, row_bits: int, col_bits: int) -> dict:
    return {
        "state_addr": In(data.StructLayout({"kind": LearnState, "row": row_bits, "col": col_bits})),
        "state_data": Out(signed(state_width(geo))),
    }


def state_read(m, eng, *, idle, addr, out, pre_rd, post_rd, off_rd, elig_rd) -> None:
    """Point the learning memories' read ports at ``addr`` while ``idle``; drive ``out`` with the
    value one cycle later (None ports: the layer does not keep that state)."""
    geo = eng.geo
    P, G, tb = geo.lanes, geo.groups, geo.learning.trace_bits
    lane_bits = (P - 1).bit_length()
    group = addr.col[lane_bits:] if lane_bits else addr.col
    with m.If(idle):
        m.d.comb += [pre_rd.addr.eq(addr.row), post_rd.addr.eq(group)]
        if off_rd is not None:
            m.d.comb += off_rd.addr.eq(group)
        if elig_rd is not None:
            m.d.comb += elig_rd.addr.eq(word_address(addr.row, G, group))
    kind_q = Signal(LearnState)
    lane_q = Signal(max(1, lane_bits))
    m.d.sync += [kind_q.eq(addr.kind), lane_q.eq(addr.col[:lane_bits] if lane_bits else 0)]

    def lane(port, width, shape):
        return data.ArrayLayout(shape(width), P)(port.data)[lane_q]

    with m.Switch(kind_q):
        with m.Case(LearnState.PRE_TRACE):
            m.d.comb += out.eq(Cat(pre_rd.data[:tb], Const(0, 1)))
        with m.Case(LearnState.POST_TRACE):
            m.d.comb += out.eq(Cat(lane(post_rd, tb, unsigned), Const(0, 1)))
        if off_rd is not None:
            with m.Case(LearnState.OFFSET):
                m.d.comb += out.eq(Cat(lane(off_rd, geo.learning.offset_bits, unsigned), Const(0, 1)))
        if elig_rd is not None:
            with m.Case(LearnState.ELIGIBILITY):
                m.d.comb += out.eq(lane(elig_rd, geo.learning.elig_bits, signed))
