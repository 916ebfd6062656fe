"""8N1 UART receiver and transmitter; bit-exact twins in :mod:`spikegate.model.uart`.

Both run from the ``sync`` clock with ``divisor`` cycles per bit (see
:func:`spikegate.model.uart.baud_divisor`). The receiver samples each bit once, in its middle,
which tolerates a baud mismatch of a few percent and needs no oversampling clock.
"""
from amaranth.hdl import C, Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor = {divisor!r} is not valid; valid: an integer >= 4 (clock cycles per bit)")


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

    def __init__(self, divisor: int, *, synchronise: bool = True):
        _check_divisor(divisor)
        self.divisor = divisor
        self.synchronise = synchronise
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        line = Signal(init=1)
        if self.synchronise:
            m.submodules.sync = FFSynchronizer(self.line, line, init=1)
        else:
            m.d.comb += line.eq(self.line)
        prev = Signal(init=1)
        m.d.sync += prev.eq(line)
        cnt = Signal(range(d))
        nbit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.idle.eq(1)
                with m.If(prev & ~line):
                    m.d.sync += cnt.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), nbit.eq(0)]
                    # A start bit shorter than half a bit is a glitch, not a byte.
                    with m.If(line):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
                    m.d.sync += [cnt.eq(d - 1), shreg.eq(Cat(shreg[1:], line)), nbit.eq(nbit + 1)]
                    with m.If(nbit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.sync += cnt.eq(cnt - 1)
                with m.If(cnt == 0):
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
    """Transmitter: bytes from ``i`` go out on ``line``; consecutive bytes leave no gap."""
    i: In(stream.Signature(8))
    line: Out(1, init=1)
    idle: Out(1)

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        busy = Signal()
        cnt = Signal(range(d))
        nbit = Signal(range(10))
        shreg = Signal(10, init=1)
        last = Signal()
        m.d.comb += [
            last.eq(busy & (cnt == 0) & (nbit == 9)),
            # Accepting in the stop bit's last cycle makes back-to-back bytes gapless.
            self.i.ready.eq(~busy | last),
            self.line.eq(shreg[0]),
            self.idle.eq(~busy),
        ]
        with m.If(busy):
            m.d.sync += cnt.eq(cnt - 1)
            with m.If(cnt == 0):
                m.d.sync += [cnt.eq(d - 1), nbit.eq(nbit + 1), shreg.eq(Cat(shreg[1:], C(1, 1)))]
                with m.If(nbit == 9):
                    m.d.sync += busy.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), cnt.eq(d - 1), nbit.eq(0), shreg.eq(Cat(C(0, 1), self.i.payload, C(1, 1)))]
        return m
