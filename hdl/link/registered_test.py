"""RegisteredTest: conditions the command engine decides on, taken into flip-flops ahead of the
cycle that reads them (timing). Plain logic with no twin of its own: it changes no cycle count."""
from amaranth.hdl import Elaboratable, Module, Signal

__all__ = ["RegisteredTest"]


class RegisteredTest(Elaboratable):
    """``test(f)``: a flip-flop holding ``f(value)`` as it was in the last cycle ``when`` was high.
    The command engine takes its frame-length tests this way in every cycle it waits for a frame,
    the last of which accepts it; they hold for the whole command, since the engine waits again
    only after it. A submodule, so that
    tests asked for inside an FSM state are still taken in every state."""

    def __init__(self, value, when):
        self.value, self.when = value, when
        self._tests = []

    def __call__(self, f) -> Signal:
        flag = Signal()
        self._tests.append((flag, f(self.value)))
        return flag

    def elaborate(self, platform):
        m = Module()
        with m.If(self.when):
            m.d.sync += [flag.eq(test) for flag, test in self._tests]
        return m
