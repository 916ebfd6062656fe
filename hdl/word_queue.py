"""WordQueue: the spike-word queue between two layers, stored in block RAM.

A first-word-fall-through queue whose storage is one ``amaranth.lib.memory.Memory`` with a
synchronous read port, and whose output register (``r.payload``) *is* that port's read register:
the one register stage :data:`~spikegate.model.layer.WORD_FIFO_STAGES` counts. A word written in
cycle c is on ``r`` (``r.valid``) from cycle c + 2, as with the flip-flop FIFO plus output
register it replaces; the cycle-exact twin is :class:`spikegate.model.word_queue.WordQueue`.

Why block RAM: a SyncFIFO's asynchronous read becomes flip-flops and a read multiplexer on the
iCE40 (no LUT RAM there): for a 784-128-10 network at 2 lanes, ~512 FF and ~570 LUT. Why not
SyncFIFOBuffered: its synchronous LUT-RAM read trips Yosys' ABC9 on the ECP5.

Capacity: ``depth`` rounded up to a power of two (block RAM words cost nothing, and the pointers
then wrap by overflow). The pointers carry one bit more than the address, so a full queue and an
empty one differ; ``w.ready`` is low while full and a write then is ignored.

Fenced (``fenced=True``, the inflight schedule of hdl/core.py): the reader sees only the words
written before the last ``seal`` cycle, so a producer can write step t while the consumer reads
step t-1 from the same queue. In a ``seal`` cycle the fence moves to the write pointer and the read
register already loads against it, so a word written before that cycle is on ``r`` one cycle after it.

Registered (``registered=True``, ``HardwareConfig.registered_reads``): ``r.payload`` is a flip-flop
behind the block RAM instead of its read register, with the same cycles. The block RAM is read a
cycle ahead, at the row the register will load next (the read pointer as it is after this
cycle's load), and a word written in the cycle of that read, which the read cannot see, is taken
from a register of the write instead.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..model.layer import ceil_log2
from ..model.word_queue import WordQueue as WordQueueTwin
from .synapse import BLOCK_RAM_NO_COLLISION

__all__ = ["WordQueue", "chain_layers", "word_events"]


class WordQueue(wiring.Component):
    """``w``: words in (``w.ready`` = not full). ``r``: the oldest word, registered; ``r.ready``
    pops it, and the next word (if any) is on ``r`` the following cycle."""

    def __init__(self, width: int, depth: int, *, fenced: bool = False, registered: bool = False):
        # The twin checks the parameters (one rule, one place) and fixes the capacity.
        self.twin = WordQueueTwin(width, depth, fenced=fenced)
        self.width, self.depth, self.capacity = width, depth, self.twin.capacity
        self.fenced, self.registered = fenced, registered
        super().__init__({"w": In(stream.Signature(width)), "r": Out(stream.Signature(width)),
                          **({"seal": In(1)} if fenced else {})})

    def elaborate(self, platform):
        m = Module()
        k = ceil_log2(self.capacity)
        # A read and a write of one row in one cycle happen only when the queue is empty (the
        # row read is then not the head) or full (no write is accepted): no bypass logic needed.
        m.submodules.mem = mem = Memory(shape=self.width, depth=self.capacity, init=[],
                                        attrs=BLOCK_RAM_NO_COLLISION)
        wr = mem.write_port()
        rd = mem.read_port()
        wr_ptr = Signal(k + 1)
        rd_ptr = Signal(k + 1)
        empty = Signal()
        limit = wr_ptr
        if self.fenced:
            fence = Signal(k + 1)
            limit = Signal(k + 1)
            m.d.comb += limit.eq(fence)
            with m.If(self.seal):
                m.d.comb += limit.eq(wr_ptr)
                m.d.sync += fence.eq(wr_ptr)
        m.d.comb += [
            empty.eq(limit == rd_ptr),
            self.w.ready.eq((wr_ptr[:k] != rd_ptr[:k]) | (wr_ptr[k] == rd_ptr[k])),
            wr.addr.eq(wr_ptr[:k]),
            wr.data.eq(self.w.payload),
            wr.en.eq(self.w.valid & self.w.ready),
        ]
        with m.If(wr.en):
            m.d.sync += wr_ptr.eq(wr_ptr + 1)

        # The read register loads when it is empty or being popped; it then holds a word iff the
        # queue had one (a row written last cycle is already readable: the write port is synchronous).
        load = ~self.r.valid | self.r.ready
        with m.If(load):
            m.d.sync += self.r.valid.eq(~empty)
            with m.If(~empty):
                m.d.sync += rd_ptr.eq(rd_ptr + 1)
        if not self.registered:
            m.d.comb += [rd.addr.eq(rd_ptr[:k]), rd.en.eq(load), self.r.payload.eq(rd.data)]
            return m
        # rd_ptr after this cycle, from a register of rd_ptr + 1 (no carry chain after the pop).
        rd_ptr1 = Signal(k + 1, init=1)
        rd_next = Signal(k + 1)
        m.d.comb += rd_next.eq(Mux(load & ~empty, rd_ptr1, rd_ptr))
        m.d.sync += rd_ptr1.eq(rd_next + 1)
        # The write of the cycle of the read (a full queue takes none, so the row is the head's).
        wrote, w_row, w_word = Signal(), Signal(k), Signal(self.width)
        m.d.sync += [wrote.eq(wr.en), w_row.eq(wr.addr), w_word.eq(wr.data)]
        head = Signal(self.width)
        m.d.comb += [rd.addr.eq(rd_next[:k]), self.r.payload.eq(head)]
        with m.If(load):
            m.d.sync += head.eq(Mux(wrote & (w_row == rd_ptr[:k]), w_word, rd.data))
        return m


def word_events(m: Module, group, word, take, lanes: int):
    """Serialise spike word ``word`` of neuron group ``group`` into events, lowest lane first, as a
    layer consumes them: returns ``(address, last, consumed)``. ``address`` = Cat(lane, group) is
    the event on offer; ``last`` is high in a cycle that ``take``s the word's last event (the word
    is then done); ``consumed`` is the register of lanes already taken, cleared then (a caller may
    clear it too, with a later statement). The lowest-bit search starts from ``word``, which
    callers keep in a register (the queue's read register), so it adds no memory-read path."""
    P, lane_bits = lanes, (lanes - 1).bit_length()
    consumed, rem = Signal(P, name="consumed"), Signal(P, name="remaining")
    low = Signal(max(1, lane_bits), name="low_lane")
    m.d.comb += rem.eq(word & ~consumed)
    for k in reversed(range(P)):
        with m.If(rem[k]):
            m.d.comb += low.eq(k)
    # The word is done when at most one lane remains: a balanced tree over the remaining lanes,
    # beside the lowest-lane search rather than behind it (timing: through that search and a
    # shift, ``consumed`` -> the queue's read pointer took 8 LUT levels, an iCEBreaker
    # 784-128-10 build's critical path).
    several = Signal(name="several_left")
    m.d.comb += several.eq(_two_or_more(rem)[1])
    last = Signal(name="last_event")
    with m.If(take):
        bit = Signal(P)
        m.d.comb += bit.eq(Const(1, P) << low)
        with m.If(~several):
            m.d.comb += last.eq(1)
            m.d.sync += consumed.eq(0)
        with m.Else():
            m.d.sync += consumed.eq(consumed | bit)
    return (Cat(low[:lane_bits], group) if lane_bits else group), last, consumed


def _two_or_more(bits):
    """``(any, two or more)`` of ``bits`` as a balanced tree: log2(len) levels, linear size."""
    if len(bits) == 1:
        return bits[0], Const(0, 1)
    half = len(bits) // 2
    (a_lo, m_lo), (a_hi, m_hi) = _two_or_more(bits[:half]), _two_or_more(bits[half:])
    return a_lo | a_hi, m_lo | m_hi | (a_lo & a_hi)


def chain_layers(m: Module, layers, geos, inflight: bool, seal) -> None:
    """Layer l's spike words into a queue, the queue's set bits into layer l+1's input events,
    for every pair of consecutive layer cores (``geos`` their geometries). ``inflight``: the
    queues are fenced and hold two steps, their fences move on ``seal``; otherwise layer l+1
    starts when layer l is done (docs/architecture.md, "Gateware: NetworkCore")."""
    for l in range(len(layers) - 1):
        prod, cons = layers[l], layers[l + 1]
        geo = geos[l]
        P = geo.lanes
        # The queue's output register (WORD_FIFO_STAGES) is its block RAM's read register: the
        # lowest-bit search and the consumer's weight address start from a register.
        queue = WordQueue(width=geo.group_bits + P, depth=geo.groups * (2 if inflight else 1), fenced=inflight,
                          registered=bool(geo.read_stages))
        m.submodules[f"words{l}"] = queue
        m.d.comb += [
            queue.w.payload.eq(Cat(prod.spikes.group, prod.spikes.word)),
            queue.w.valid.eq(prod.spikes.valid),
        ]
        if inflight:
            m.d.comb += queue.seal.eq(seal)
        else:
            m.d.comb += cons.start.eq(prod.done)
        head, head_valid = queue.r.payload, queue.r.valid
        head_pop = queue.r.ready
        address, last, _ = word_events(m, head[:geo.group_bits], head[geo.group_bits:],
                                       cons.events.valid & cons.events.ready, P)
        m.d.comb += [
            cons.events.valid.eq(head_valid),
            cons.events.payload.eq(address),
            cons.events_end.eq(~head_valid),
            head_pop.eq(last),
        ]
