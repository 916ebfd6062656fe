"""CurrentUnit (a CUBA layer's synaptic current lane): gateware vs its twin vs a scalar
transcription of README "Temporal layers", step 3, bit for bit."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from spikegate.hdl.current import CurrentUnit
from spikegate.model.current import CURRENT_STAGES, CurrentUnit as Twin
from spikegate.model.network import Leak


def scalar_current(c: int, acc: int, bias: int, lk: Leak, bits: int) -> int:
    """c <- sat_V(leak_C(c) + b + syn), written from README with Python integers (>> floors)."""
    if lk.kind == "shift":
        c = c - (c >> lk.k)
    elif lk.kind == "multiply":
        c = (c * lk.m) >> lk.frac_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return min(max(c + bias + acc, lo), hi)


def check(lk: Leak, bits: int, acc_bits: int, seed: int, count: int = 40):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    alo, ahi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    edges = [lo, lo + 1, -1, 0, 1, hi - 1, hi]
    c = np.concatenate([edges, rng.integers(lo, hi + 1, count)])
    acc = np.concatenate([rng.choice([alo, ahi, 0, -1, 1], len(edges)), rng.integers(alo, ahi + 1, count)])
    bias = np.concatenate([rng.choice([lo, hi, 0], len(edges)), rng.integers(lo, hi + 1, count)])
    want = [scalar_current(int(a), int(b), int(d), lk, bits) for a, b, d in zip(c, acc, bias)]
    assert Twin(membrane_bits=bits, leak=lk)(c, acc, bias).tolist() == want

    dut = CurrentUnit(membrane_bits=bits, acc_bits=acc_bits, leak=lk)
    got = []

    async def bench(ctx):
        # One neuron a cycle, as in a sweep; neuron k's current is out CURRENT_STAGES cycles later.
        for k in range(len(c) + CURRENT_STAGES):
            if k < len(c):
                ctx.set(dut.c, int(c[k]))
                ctx.set(dut.acc, int(acc[k]))
                ctx.set(dut.bias, int(bias[k]))
            await ctx.tick()
            if k + 1 >= CURRENT_STAGES:
                got.append(ctx.get(dut.c_next))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert got[:len(c)] == want, [(int(c[k]), int(acc[k]), int(bias[k]), got[k], want[k])
                                  for k in range(len(c)) if got[k] != want[k]][:5]


@pytest.mark.parametrize("lk", [Leak.none(), Leak.shift(1), Leak.shift(4), Leak.shift(16), Leak.multiply(3, 2),
                                Leak.multiply(0, 4), Leak.multiply(16, 4), Leak.multiply(3277, 12)],
                         ids=lambda lk: f"{lk.kind}-{lk.k}-{lk.m}-{lk.frac_bits}")
def test_current_leak_forms(lk):
    check(lk, bits=16, acc_bits=12, seed=1)


@pytest.mark.parametrize("bits, acc_bits", [(3, 5), (4, 4), (8, 14), (32, 20)])
def test_current_saturates_at_both_rails(bits, acc_bits):
    check(Leak.shift(1), bits, acc_bits, seed=bits)
    check(Leak.multiply(7, 3), bits, acc_bits, seed=bits + 1)
