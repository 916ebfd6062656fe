"""A recurrent layer's word buffer: its spike words of step t-1 replayed as events of step t.

The gateware of :class:`spikegate.model.recurrence.RecurrentEvents` (layout and order there). The
sweep's non-zero spike words are written in order into a block RAM of G entries (the word and the
row group ``base / P + g`` of its first neuron in the weight memory's recurrent region); at the
next step the layer's integration takes them as events before its feed-forward ones, one per
lane set, lowest lane first, each held for G cycles like a feed-forward event. ``rewind`` (the
cycle the integration ends) starts the buffer over for the coming sweep's words; ``reset_state``
(a run's start) empties it: s(-1) = 0.

The read port looks one entry ahead (its address is the next cycle's read pointer), so the head
word is on its data every cycle and words follow each other without a bubble; reads and writes
never meet (writes come in the sweep, reads in the integration), so the memory needs no
collision logic.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.layer import LayerGeometry, ceil_log2
from ..model.recurrence import recurrent_base
from .synapse import BLOCK_RAM_NO_COLLISION
from .word_queue import word_events

__all__ = ["RecurrentEvents"]


class RecurrentEvents(wiring.Component):
    def __init__(self, geometry: LayerGeometry):
        self.geo = geo = geometry
        P = geo.lanes
        self.row_group_bits = geo.rec_word_bits - P
        super().__init__({
            "reset_state": In(1),
            "rewind": In(1),
            "spikes": In(data.StructLayout({"valid": 1, "group": geo.group_bits, "word": P})),
            # Weight-memory rows (the synapse array's ``addr``) of the buffered spikes.
            "events": Out(stream.Signature(max(1, ceil_log2(geo.rows)))),
        })
        self.mem = Memory(shape=unsigned(geo.rec_word_bits), depth=geo.groups, init=[], attrs=BLOCK_RAM_NO_COLLISION)

    def elaborate(self, platform):
        m = Module()
        geo = self.geo
        P, G, rgb = geo.lanes, geo.groups, self.row_group_bits
        m.submodules.mem = self.mem
        wr, rd = self.mem.write_port(), self.mem.read_port()
        wp = Signal(range(G + 1))
        rp = Signal(range(G + 1))
        rp1 = Signal(range(G + 2), init=1)  # rp + 1, registered: no carry chain on the read address

        base_group = recurrent_base(geo.n_in, P) // P
        m.d.comb += [
            wr.addr.eq(wp),
            wr.data.eq(Cat((self.spikes.group + base_group)[:rgb], self.spikes.word)),
            wr.en.eq(self.spikes.valid),
        ]
        with m.If(self.spikes.valid):
            m.d.sync += wp.eq(wp + 1)

        pop = Signal()
        rp_next = Signal.like(rp)
        m.d.comb += rp_next.eq(rp)
        with m.If(pop):
            m.d.comb += rp_next.eq(rp1)
        m.d.sync += [rp.eq(rp_next), rp1.eq(rp_next + 1)]
        m.d.comb += rd.addr.eq(rp_next)

        row_group = rd.data[:rgb]
        word = rd.data[rgb:]
        address, last, consumed = word_events(m, row_group, word, self.events.valid & self.events.ready, P)
        m.d.comb += [
            self.events.valid.eq(rp != wp),
            self.events.payload.eq(address),
            pop.eq(last),
        ]
        with m.If(self.rewind | self.reset_state):
            m.d.sync += [wp.eq(0), rp.eq(0), rp1.eq(1), consumed.eq(0)]
        return m
