"""The testbenches' bounded waits (tests/waits.py): a wait returns the ticks it took, and one whose
condition never holds fails after its limit, naming what it waited for, instead of hanging."""
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from waits import until, within


def _run(bench):
    m = Module()
    count = Signal(8)
    m.d.sync += count.eq(count + 1)
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def testbench(ctx):
        await bench(ctx, count)

    sim.add_testbench(testbench)
    sim.run()


def test_until_returns_the_ticks_taken_and_takes_none_when_it_holds_already():
    seen = []

    async def bench(ctx, count):
        seen.append(await until(ctx, lambda: ctx.get(count) == 5, "count 5"))
        seen.append(await until(ctx, lambda: ctx.get(count) == 5, "count 5 again"))
        seen.append(ctx.get(count))

    _run(bench)
    assert seen == [5, 0, 5]


def test_a_wait_that_never_ends_fails_naming_it_after_its_limit():
    ticks = []

    async def bench(ctx, count):
        await until(ctx, lambda: ctx.get(count) == 300, "count 300 (8 bits)", limit=50)

    with pytest.raises(AssertionError, match=r"^no count 300 \(8 bits\) within 50 cycles$"):
        _run(bench)

    async def loop(ctx, count):
        for _ in within("the end of the loop", 7):
            ticks.append(ctx.get(count))
            await ctx.tick()

    with pytest.raises(AssertionError, match="no the end of the loop within 7 cycles"):
        _run(loop)
    assert ticks == list(range(7))
