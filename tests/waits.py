"""Bounded waits for Amaranth testbenches: a design that never answers fails its test, naming what
the bench waited for, instead of hanging the suite (no wait without a deadline).

``within`` bounds a loop whose body does more than wait (drives a stream, records a line)::

    for _ in within("done", limit):
        ...
        if ctx.get(dut.done):
            break
        await ctx.tick()

``until`` is the plain wait: tick until a condition holds.
"""

# The default bound, in cycles, of one wait: the longest single wait of the benches that use it (a run
# or a checksum walk of the tests' small networks) is a few thousand cycles.
WAIT_LIMIT = 100_000


def within(what: str, limit: int = WAIT_LIMIT):
    """``range(limit)`` for a loop that ends with ``break`` when ``what`` happens; running out of it
    raises AssertionError naming ``what``."""
    yield from range(limit)
    raise AssertionError(f"no {what} within {limit} cycles")


async def until(ctx, cond, what: str, limit: int = WAIT_LIMIT) -> int:
    """Tick until ``cond()`` holds, testing it before each tick (so no tick when it holds already);
    returns the ticks taken."""
    for n in within(what, limit):
        if cond():
            return n
        await ctx.tick()
