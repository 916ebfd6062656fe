"""Ahead: a read pointer whose next value addresses a memory, for ``HardwareConfig.registered_reads``.

With registered reads a block RAM's data goes into a flip-flop before any logic (timing: the
ECP5's DP16KD takes 5.8 ns from clock to data; docs/timing.md), so it reaches its reader two
cycles after the address instead of one. Where the reader's pointer is a register whose next value
is known a cycle early (it is: it is that register's input), the memory is addressed with that next
value, and the data arrives in the same cycle as it did from the pointer itself: no cycle count
changes. Plain logic with no twin of its own.
"""
from amaranth.hdl import Mux, Signal

__all__ = ["Ahead"]


class Ahead:
    """The register ``q`` (a Signal the caller made), moved with :meth:`to` and :meth:`step`, and
    :attr:`addr`, the address to read a memory at so that its data reaches the reader one cycle
    after ``q`` holds it, as a plain synchronous read of ``q`` does.

    Without ``registered``, :meth:`to` and :meth:`step` make plain synchronous assignments and
    ``addr`` is ``q``: the gateware is exactly what it was without the option. With it, they drive
    ``d``, the value ``q`` takes in the next cycle (``q`` holds by default), and ``addr`` is ``d``.
    The read then lags its address by two cycles and ``addr`` leads ``q`` by one: data at ``q``'s
    address, one cycle after ``q`` holds it, whether ``q`` just moved or has held for a while.

    A step takes one multiplexer after the decision: ``q + 1`` comes from a flip-flop kept beside
    ``q`` (``q1``), and only the loads and the hold share the choice of ``value`` (timing: the
    ULX3S's critical paths ran from the command engine's and the answer source's states through a
    multiplexer level per assignment, then an adder, into a far block RAM's address; docs/timing.md)."""

    def __init__(self, m, q: Signal, *, registered: bool):
        self.m, self.q, self.registered = m, q, bool(registered)
        if self.registered:
            self.d = Signal.like(q, name=f"{q.name}_next")
            self.q1 = Signal.like(q, name=f"{q.name}_plus1", init=(q.init + 1) % (1 << len(q)))
            self.inc = Signal(name=f"{q.name}_inc")
            # q unless a load sets it: the hold and the loads are one choice, the step another
            # (a separate load flag, d = inc ? q1 : (load ? value : q), made Yosys 0.70's ABC9 fail
            # an assertion on the OrangeCrab's (32, 8) digits build: tests/test_synth.py)
            self.value = Signal.like(q, name=f"{q.name}_value")
            m.d.comb += [self.value.eq(self.q), self.d.eq(Mux(self.inc, self.q1, self.value))]
            m.d.sync += [self.q.eq(self.d), self.q1.eq(self.d + 1)]
        else:
            self.d = None

    @property
    def addr(self):
        return self.d if self.registered else self.q

    def to(self, value) -> list:
        """``q`` takes ``value`` in the next cycle (inside the caller's ``If``/``State``): returns the
        statements to add to ``m.d.sync`` where the caller assigns its other registers, so that
        without ``registered`` the module is built statement for statement as before; with it, the
        load goes to ``d`` (comb) here and the list is empty. A later call in the same cycle wins,
        as a later assignment does."""
        if self.registered:
            self.m.d.comb += [self.inc.eq(0), self.value.eq(value)]
            return []
        return [self.q.eq(value)]

    def step(self) -> list:
        """``q`` takes ``q + 1`` (in ``q``'s width) in the next cycle; as :meth:`to`."""
        if self.registered:
            self.m.d.comb += self.inc.eq(1)
            return []
        return [self.q.eq(self.q + 1)]
