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

Spike words (``word_lanes=P``, registered only): the payload's top P bits are a spike word; a
written word with no lane set is not queued (so a producer may offer every word it sweeps), and
``lead`` is a register loaded with the head that holds the word's lowest set lane, above it "two
or more set", and above that the word without its lowest lane (``rest``), so that
:func:`word_events` offers a word's first event and decides its last one without searching the
word (at 32 lanes those searches, then the pop and the read address or the consumer's weight
address, were the ULX3S 784-128-10 build's critical paths), and finds the next lane from a
register too. Each stored
word's lead comes from the register of its write, so no search follows the layer's fire
decisions either; it is kept in a small memory written a cycle after the word, whose read is
transparent to that write (no collision: the lead is then taken from that write).
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

    def __init__(self, width: int, depth: int, *, fenced: bool = False, registered: bool = False,
                 word_lanes: int = 0):
        if type(word_lanes) is not int or (word_lanes and not (registered and 1 <= word_lanes <= width)):
            raise ValueError(f"WordQueue word_lanes={word_lanes!r} is not valid; valid: 0 (no spike word), or "
                             f"with registered=True an integer from 1 to {width} (the payload's width)")
        # The twin checks the other parameters (one rule, one place) and fixes the capacity.
        self.twin = WordQueueTwin(width, depth, fenced=fenced, word_lanes=word_lanes)
        self.width, self.depth, self.capacity = width, depth, self.twin.capacity
        self.fenced, self.registered = fenced, registered
        self.word_lanes = word_lanes
        super().__init__({"w": In(stream.Signature(width)), "r": Out(stream.Signature(width)),
                          **({"seal": In(1)} if fenced else {}),
                          **({"lead": Out(ceil_log2(word_lanes) + 1 + word_lanes)} if word_lanes else {})})

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
        stored = wr.en
        if self.word_lanes:
            # A zero spike word is written too, to the free row at the write pointer, which the
            # next write takes again: "any lane set" then drives only the pointer, not the block
            # RAM's write enable (at 64 lanes, spike flip-flops -> that OR -> the queue's write was
            # the ULX3S 784-128-10 build's critical path).
            stored = wr.en & self.w.payload[self.width - self.word_lanes:].any()
        with m.If(stored):
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
        fresh = Signal()  # the row loading now was written in the cycle of its read
        m.d.comb += [rd.addr.eq(rd_next[:k]), self.r.payload.eq(head), fresh.eq(wrote & (w_row == rd_ptr[:k]))]
        with m.If(load):
            m.d.sync += head.eq(Mux(fresh, w_word, rd.data))
        if self.word_lanes:
            m.submodules.leads = leads = Memory(shape=len(self.lead), depth=self.capacity, init=[])
            l_wr = leads.write_port()
            l_rd = leads.read_port(transparent_for=(l_wr,))
            w_bits = w_word[self.width - self.word_lanes:]
            w_lead = Cat(_lowest(m, w_bits, "w_low")[:ceil_log2(self.word_lanes)], _two_or_more(w_bits)[1],
                         (w_bits & (w_bits - 1))[:self.word_lanes])
            m.d.comb += [l_wr.addr.eq(w_row), l_wr.data.eq(w_lead), l_wr.en.eq(wrote), l_rd.addr.eq(rd_next[:k])]
            with m.If(load):
                m.d.sync += self.lead.eq(Mux(fresh, w_lead, l_rd.data))
        return m


def _lowest(m: Module, bits, name: str):
    """The index of the lowest set bit of ``bits`` (0 when none is set), at least one bit wide, as
    a balanced tree: each level picks a half's index by whether the lower half has a bit set, one
    LUT4 per index bit, log2(len) levels. (A priority chain of ``m.If`` over 32 lanes took 6-7
    LUT levels with their routes after ``rem & (rem - 1)``: the ULX3S's critical path at 3 of 5
    seeds for digits at lanes (32, 8).)"""
    low = Signal(max(1, ceil_log2(len(bits))), name=name)
    n = 1 << ceil_log2(len(bits))
    padded = Cat(bits, Const(0, n - len(bits)))

    def tree(lo: int, width: int):
        """(any set, lowest set index) of ``padded[lo:lo + width]``; the index is None at width 1."""
        if width == 1:
            return padded[lo], None
        half = width // 2
        (a_lo, i_lo), (a_hi, i_hi) = tree(lo, half), tree(lo + half, half)
        # The upper half's index only when the lower half has none set: none set at all gives 0.
        upper = a_hi & ~a_lo
        index = upper if i_lo is None else Cat(Mux(upper, i_hi, i_lo), upper)
        return a_lo | a_hi, index

    index = tree(0, n)[1]
    m.d.comb += low.eq(0 if index is None else index)
    return low


def word_events(m: Module, group, word, take, lanes: int, head_lead=None):
    """Serialise spike word ``word`` of neuron group ``group`` into events, lowest lane first, as a
    layer consumes them: returns ``(address, last, consumed)``. ``address`` = Cat(lane, group) is
    the event on offer; ``last`` is high in a cycle that ``take``s the word's last event (the word
    is then done); ``consumed`` is the register of lanes already taken, cleared then (a caller may
    clear it too, with a later statement). ``word`` is a register (the queue's head), so the
    searches add no memory-read path. ``head_lead``: a register holding ``word``'s lowest set lane,
    "two or more set" and the word without its lowest lane (:class:`WordQueue`'s ``lead``); the
    event on offer and the last one are then read from registers, each search feeding a register
    only, ``word`` is not read and ``consumed`` is None (no such register)."""
    P, lb = lanes, ceil_log2(lanes)
    if head_lead is not None:
        return _lead_events(m, group, take, lanes, head_lead)
    consumed, rem = Signal(P, name="consumed"), Signal(P, name="remaining")
    m.d.comb += rem.eq(word & ~consumed)
    low = _lowest(m, rem, "low_lane")
    # The word is done when at most one lane remains: a balanced tree over the remaining lanes,
    # beside the lowest-lane search rather than behind it (timing: through that search and a
    # shift, ``consumed`` -> the queue's read pointer took 8 LUT levels, an iCEBreaker 784-128-10
    # build's critical path).
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
    return (Cat(low[:lb], group) if lb else group), last, consumed


def _lead_events(m: Module, group, take, lanes: int, head_lead):
    """:func:`word_events` from the head's ``lead``: until the word's first take the lead's lane
    and "two or more" answer; a take that leaves two or more loads registers with the next lane,
    "two or more left after it" and the lanes after that, from the lanes after the one taken (the
    lead's ``rest``, then those registers'). So each take searches a register: without ``rest``,
    the lanes taken -> the remaining ones -> ``rem & (rem - 1)`` -> the 64-lane search was the
    ULX3S 784-128-10 (64, 4) build's critical path (11.66 ns, 9 LUT levels)."""
    P, lb = lanes, ceil_log2(lanes)
    head_low, head_several, head_rest = head_lead[:lb], head_lead[lb], head_lead[lb + 1:]
    started = Signal(name="word_started")
    later_low, later_several = Signal(max(1, lb), name="low_later"), Signal(name="several_later")
    later_rest = Signal(P, name="rest_later")
    rest = Mux(started, later_rest, head_rest)
    low, several = Signal(max(1, lb), name="low_lane"), Signal(name="several_left")
    m.d.comb += [several.eq(Mux(started, later_several, head_several)),
                 low.eq(Mux(started, later_low, head_low if lb else 0))]
    last = Signal(name="last_event")
    after_next = Signal(P, name="rest_after_next")  # rest without its lowest lane
    m.d.comb += after_next.eq(rest & (rest - 1))
    with m.If(take):
        m.d.comb += last.eq(~several)
        # (two or more in rest as _two_or_more's tree made Yosys' ABC9 fail an assertion on
        # reintegrating its mapping into the ECP5 design; the carry chain it shares does not)
        m.d.sync += [started.eq(several), later_several.eq(after_next.any()),
                     later_low.eq(_lowest(m, rest, "low_next")), later_rest.eq(after_next)]
    return (Cat(low[:lb], group) if lb else group), last, None


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
        registered = bool(geo.read_stages)
        queue = WordQueue(width=geo.group_bits + P, depth=geo.groups * (2 if inflight else 1), fenced=inflight,
                          registered=registered, word_lanes=P if registered else 0)
        m.submodules[f"words{l}"] = queue
        m.d.comb += [
            queue.w.payload.eq(Cat(prod.spikes.group, prod.spikes.word)),
            # A spike-word queue drops zero words itself, off the block RAM's write enable.
            queue.w.valid.eq(prod.swept if registered else prod.spikes.valid),
        ]
        if inflight:
            m.d.comb += queue.seal.eq(seal)
        else:
            m.d.comb += cons.start.eq(prod.done)
        head, head_valid = queue.r.payload, queue.r.valid
        head_pop = queue.r.ready
        address, last, _ = word_events(m, head[:geo.group_bits], head[geo.group_bits:],
                                       cons.events.valid & cons.events.ready, P,
                                       head_lead=queue.lead if registered else None)
        m.d.comb += [
            cons.events.valid.eq(head_valid),
            cons.events.payload.eq(address),
            cons.events_end.eq(~head_valid),
            head_pop.eq(last),
        ]
