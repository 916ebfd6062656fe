"""hdl.encode.InputEncoder against its twin (Amaranth simulator): the load words of every encoding,
with and without back-pressure, and its exact cycle count; the digits test split (a sample of it
here, the whole split under ``slow``)."""
import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegate import datasets
from spikegate.hdl.encode import InputEncoder
from spikegate.hdl.link.signatures import small
from spikegate.model.encode import ON_CHIP, InputEncoder as Twin, bernoulli_state, quantise
from spikegate.model.protocol import Encoding
from waits import within
from conftest import run_testbench

BASE = 3  # levels start here in the byte memory, as after a command header


class Harness(wiring.Component):
    """The encoder and a level memory (with ``registered``, read through a flip-flop as the link's
    payload buffer is then)."""
    def __init__(self, n_in, T, registered=False):
        self.depth = BASE + n_in
        self.enc = InputEncoder(n_in, T, self.depth, registered=registered)
        super().__init__({"wr_addr": wiring.In(range(self.depth)), "wr_data": wiring.In(8), "wr_en": wiring.In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.enc = enc = self.enc
        m.submodules.mem = mem = Memory(shape=8, depth=self.depth, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        data = rd.data
        if enc.registered:
            data = Signal(8)
            m.d.sync += data.eq(rd.data)
        m.d.comb += [wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data), wr.en.eq(self.wr_en),
                     rd.addr.eq(enc.buf.addr), enc.buf.data.eq(data), enc.buf.small.eq(small(data))]
        return m


def run_encoder(n_in, T, samples, *, stall_seed=None, registered=False):
    """samples: [(levels, encoding name, state)] -> [(words, busy cycles)]"""
    dut = Harness(n_in, T, registered)
    enc = dut.enc
    rng = np.random.default_rng(stall_seed)
    out = []

    async def bench(ctx):
        for q, encoding, state in samples:
            for a, b in enumerate(q):
                ctx.set(dut.wr_addr, BASE + a)
                ctx.set(dut.wr_data, int(b))
                ctx.set(dut.wr_en, 1)
                await ctx.tick()
            ctx.set(dut.wr_en, 0)
            ctx.set(enc.encoding, Encoding[encoding.upper()])
            ctx.set(enc.state, state)
            ctx.set(enc.base, BASE)
            ctx.set(enc.start, 1)
            await ctx.tick()
            ctx.set(enc.start, 0)
            words, busy = [], 0
            for _ in within("the encoder's end (busy low)"):
                ready = 1 if stall_seed is None else int(rng.random() < 0.6)
                ctx.set(enc.o.ready, ready)
                if not ctx.get(enc.busy):
                    break
                busy += 1
                if ready and ctx.get(enc.o.valid):
                    words.append((ctx.get(enc.o.payload.addr), ctx.get(enc.o.payload.end_of_step)))
                await ctx.tick()
            out.append((words, busy))

    run_testbench(dut, bench, period=1e-6)
    return out


def check(n_in, T, samples, stall_seed=None, registered=False):
    twin = Twin(n_in, T)
    got = run_encoder(n_in, T, samples, stall_seed=stall_seed, registered=registered)
    for (q, encoding, state), (words, busy) in zip(samples, got):
        assert words == twin.words(np.asarray(q), encoding, state), (q, encoding, state)
        if stall_seed is None:
            assert busy == twin.cycles


@pytest.mark.parametrize("registered", [False, True])
def test_small_cases_every_encoding(registered):
    """(``registered``: the levels and remainders read through a flip-flop, a cycle ahead.)"""
    q = [0, 1, 127, 128, 254, 255]
    samples = [(q, e, 0x12345678 if e == "bernoulli" else 0) for e in ON_CHIP]
    samples.append(([1, 4, 5, 0, 0, 255], "bernoulli", 1))      # README's worked draws come first
    check(6, 9, samples, registered=registered)
    check(1, 1, [([255], e, 1) for e in ON_CHIP], registered=registered)
    # one and two inputs, rate: a remainder is read back n_in + 1 cycles after it is written, the
    # same cycle with one input and registered reads (a transparent read there)
    for n in (1, 2):
        check(n, 5, [([97] * n, "rate", 0), ([200] * n, "rate", 0)], registered=registered)
        check(n, 5, [([97] * n, "rate", 0)], stall_seed=3, registered=registered)
    # latency's rounding edges: (255 - q)(T - 1) - 255 t = +127 (q = 128 fires at t = 0) and -127
    # (q = 127 fires at t = 1)
    assert Twin(2, 2).words(np.array([128, 127]), "latency") == [(0, 0), (0, 1), (1, 0), (0, 1)]
    check(2, 2, [([128, 127], "latency", 0)], registered=registered)
    # long runs: the latency quotient's remainder wraps (T - 1 = 255, 254, 299), one level at each step
    for T in (256, 255, 300):
        check(3, T, [([1, 128, 255], e, 99) for e in ON_CHIP], registered=registered)


def test_latency_every_level_with_an_end_of_step_every_other_cycle():
    """One input: the end of step comes every second cycle, the least time the registered
    remainder wrap of the latency thresholds has to catch up; every level, every T up to 12."""
    for T in range(2, 13):
        check(1, T, [([q], "latency", 0) for q in range(256)])


def unxorshift32(y):
    """The state whose xorshift32 step is ``y`` (each of the three steps undone)."""
    def undo(y, shift, left):
        x, k = y, shift
        while k < 32:
            x ^= ((y << k) & 0xFFFFFFFF) if left else (y >> k)
            k += shift
        return x
    return undo(undo(undo(y, 5, True), 17, False), 13, True)


def test_bernoulli_boundary_draw():
    """d = 257 q is the largest draw that fires (probability 2^-16 a draw: set up, not sampled)."""
    from spikegate.model.encode import xorshift32
    q = 100
    fire, miss = unxorshift32((257 * q << 16) | 1), unxorshift32(((257 * q + 1) << 16) | 1)
    assert xorshift32(fire) >> 16 == 257 * q and xorshift32(miss) >> 16 == 257 * q + 1
    assert Twin(1, 1).words(np.array([q]), "bernoulli", fire) == [(0, 0), (0, 1)]
    assert Twin(1, 1).words(np.array([q]), "bernoulli", miss) == [(0, 1)]
    check(1, 1, [([q], "bernoulli", fire), ([q], "bernoulli", miss)])


def test_bernoulli_zero_draw():
    """d = 0 fires every level but 0: d <= 257 q alone would fire level 0 too (probability 2^-16 a
    draw: set up, not sampled)."""
    from spikegate.model.encode import xorshift32
    zero = unxorshift32(1)
    assert xorshift32(zero) >> 16 == 0
    assert (0, 0) not in Twin(2, 1).words(np.array([0, 1]), "bernoulli", zero)
    assert Twin(2, 1).words(np.array([1, 0]), "bernoulli", zero)[0] == (0, 0)
    check(2, 1, [([0, 1], "bernoulli", zero), ([1, 0], "bernoulli", zero), ([0, 0], "bernoulli", zero)])


@settings(max_examples=6, deadline=None)
@given(n_in=st.integers(1, 9), T=st.integers(1, 12), registered=st.booleans(), data=st.data())
def test_random_levels_and_stalls(n_in, T, registered, data):
    samples = [(data.draw(st.lists(st.integers(0, 255), min_size=n_in, max_size=n_in)), e,
                data.draw(st.integers(1, 2**32 - 1))) for e in ON_CHIP]
    check(n_in, T, samples, stall_seed=data.draw(st.integers(0, 1000)), registered=registered)
    check(n_in, T, samples, registered=registered)


def digits_samples(idx):
    net = datasets.load_network(None)
    _, x, _ = datasets.select(net, "digits", "test", None, None)
    q = quantise(x)
    return net, [(q[i], e, bernoulli_state(5, i) if e == "bernoulli" else 0) for i in idx for e in ON_CHIP]


def test_digits_sampled():
    net, samples = digits_samples([0, 101, 444])
    check(net.n_inputs, net.timesteps, samples)


@pytest.mark.slow
def test_digits_whole_split():
    net = datasets.load_network(None)
    n = len(datasets.select(net, "digits", "test", None, None)[2])
    net, samples = digits_samples(range(n))
    check(net.n_inputs, net.timesteps, samples)
