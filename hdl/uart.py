"""8N1 UART receiver and transmitter; bit-exact twins in :mod:`spikegate.model.uart`.

Both run from the ``sync`` clock with ``divisor`` cycles per bit, a multiple of 1/256 (see
:func:`spikegate.model.uart.baud_divisor`): a fractional divider gives each bit ``q`` or ``q + 1``
cycles so that every edge is less than a cycle from its ideal time. The receiver samples each bit once,
in its middle, which tolerates a sender rate error of at least 2 % either way
(:func:`spikegate.model.uart.rx_tolerance`) and needs no oversampling clock.
"""
from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..model.uart import FRAC_BITS, period_of

__all__ = ["UARTRx", "UARTTx"]


class _BitTimer:
    """The fractional divider both directions share: a down counter of whole cycles and ``frac``,
    the fraction (1/256 cycle) at which the current interval ideally ends. At its last cycle
    the next interval lasts ``q + carry(frac + r)`` cycles, ``P = q * 256 + r`` being the bit
    period, and ends at fraction ``(frac + r) % 256``."""

    def __init__(self, m, period):
        self.q, self.r = period >> FRAC_BITS, period & ((1 << FRAC_BITS) - 1)
        self.cnt = Signal(range(self.q + 1))
        self.frac = Signal(FRAC_BITS)
        step = Signal(FRAC_BITS + 1)
        m.d.comb += step.eq(self.frac + self.r)
        self.step = step
        # cnt == 0, kept in a register of its own (timing: the transmitter's ready, which the
        # encoder's CRC and the answer source act on, then starts from flip-flops).
        self.at_edge = Signal(init=1)

    def count(self, m):
        m.d.sync += [self.cnt.eq(self.cnt - 1), self.at_edge.eq(self.cnt == 1)]

    def next_bit(self, m):
        """In the cycle ``at_edge``: load the interval that starts with the next cycle."""
        whole = self.q - 1 + self.step[FRAC_BITS]
        m.d.sync += [self.cnt.eq(whole), self.at_edge.eq(whole == 0), self.frac.eq(self.step[:FRAC_BITS])]

    def load(self, m, cycles: int, frac: int):
        """Start a fresh interval of ``cycles`` whole cycles that ideally ends at fraction ``frac``."""
        m.d.sync += [self.cnt.eq(cycles - 1), self.at_edge.eq(cycles == 1), self.frac.eq(frac)]


class UARTRx(wiring.Component):
    """Receiver: ``line`` is the (asynchronous) rx pin; ``o`` streams the bytes received.

    A byte that completes while the previous one still waits in ``o`` is dropped with an
    ``overrun`` pulse; a low stop bit gives an ``error`` pulse, and the receiver then waits for the
    line to go high again (a break gives one error, not a flood of zero bytes).
    ``synchronise=False`` leaves out the two-flop synchroniser (only for a line that is already
    synchronous to ``sync``, as in cycle-exact tests against the twin).
    """
    line: In(1, init=1)
    o: Out(stream.Signature(8))
    error: Out(1)
    overrun: Out(1)
    idle: Out(1)

    def __init__(self, divisor, *, synchronise: bool = True):
        self.period = period_of(divisor)
        self.divisor = divisor
        self.synchronise = synchronise
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        half = self.period // 2
        line = Signal(init=1)
        if self.synchronise:
            m.submodules.sync = FFSynchronizer(self.line, line, init=1)
        else:
            m.d.comb += line.eq(self.line)
        prev = Signal(init=1)
        m.d.sync += prev.eq(line)
        bt = _BitTimer(m, self.period)
        nbit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(prev & ~line):
                    # Sample k comes floor((half + k * period) / 256) cycles after this one.
                    bt.load(m, half >> FRAC_BITS, half & ((1 << FRAC_BITS) - 1))
                    m.next = "START"
            with m.State("START"):
                bt.count(m)
                with m.If(bt.at_edge):
                    bt.next_bit(m)
                    m.d.sync += nbit.eq(0)
                    # A start bit shorter than half a bit is a glitch, not a byte.
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                bt.count(m)
                with m.If(bt.at_edge):
                    bt.next_bit(m)
                    m.d.sync += [shreg.eq(Cat(shreg[1:], line)), nbit.eq(nbit + 1)]
                    with m.If(nbit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                bt.count(m)
                with m.If(bt.at_edge):
                    with m.If(line):
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.comb += self.overrun.eq(1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter: bytes from ``i`` go out on ``line``; consecutive bytes leave no gap, and the
    divider's fraction runs on across them (a byte started from idle starts at fraction 0).

    A byte taken from ``i`` waits in a holding register until the shifter is free, so ``i.ready``
    is a flip-flop and the sender's handshake logic ends there, not in the shifter's enables
    (timing: the response encoder -> the shift register was the iCEBreaker builds' critical path).
    The start bit goes out two cycles after the byte is taken from idle; the next byte is taken
    while one shifts, so back-to-back bytes still leave no gap."""
    i: In(stream.Signature(8))
    line: Out(1, init=1)
    idle: Out(1)

    def __init__(self, divisor):
        self.period = period_of(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        busy = Signal()
        bt = _BitTimer(m, self.period)
        nbit = Signal(range(10))
        shreg = Signal(10, init=1)
        held, hold = Signal(), Signal(8)
        last = Signal()
        m.d.comb += [
            last.eq(busy & bt.at_edge & (nbit == 9)),
            self.i.ready.eq(~held),
            self.line.eq(shreg[0]),
            self.idle.eq(~busy & ~held),
        ]
        with m.If(busy):
            bt.count(m)
            with m.If(bt.at_edge):
                bt.next_bit(m)
                m.d.sync += [nbit.eq(nbit + 1), shreg.eq(Cat(shreg[1:], C(1, 1)))]
                with m.If(nbit == 9):
                    m.d.sync += busy.eq(0)
        with m.If(self.i.valid & ~held):
            m.d.sync += [hold.eq(self.i.payload), held.eq(1)]
        # Starting in the stop bit's last cycle makes back-to-back bytes gapless.
        with m.If(held & (~busy | last)):
            m.d.sync += [busy.eq(1), held.eq(0), nbit.eq(0), shreg.eq(Cat(C(0, 1), hold, C(1, 1)))]
            with m.If(~busy):
                # From idle the first bit starts at fraction 0: it lasts q cycles and ends at r.
                bt.load(m, bt.q, bt.r)
        return m
