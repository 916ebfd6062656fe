"""LIFNeuronUnit: gateware vs its twin vs the contract (model.lif.lif_step), bit for bit."""
import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import HealthCheck, given, settings, strategies as st

from spikegate.hdl.neuron import LIFNeuronUnit
from spikegate.model import lif
from spikegate.model.layer import NEURON_STAGES, ceil_log2
from spikegate.model.network import Layer, Leak, signed_range
from spikegate.model.neuron import LIFNeuronUnit as Twin


def _layer(n_in, wb, vb, leak, reset, refractory, readout, theta):
    w = np.zeros((n_in, 1), np.int64)
    return Layer(weights=w, threshold=0 if readout else theta, weight_bits=wb, membrane_bits=vb, leak=leak,
                 reset="zero" if readout else reset, refractory=0 if readout else refractory, readout=readout)


def _vectors(layer, rng, count):
    """Membranes, refractory counters, exact sums and biases, with the rails and their neighbours."""
    vlo, vhi = signed_range(layer.membrane_bits)
    A = layer.weight_bits + ceil_log2(layer.n_in + 1)
    alo, ahi = -layer.n_in * (1 << (layer.weight_bits - 1)), layer.n_in * ((1 << (layer.weight_bits - 1)) - 1)
    edges_v = [vlo, vlo + 1, -1, 0, 1, vhi - 1, vhi, layer.threshold, layer.threshold + 1]
    edges_a = [alo, ahi, 0, -1, 1]
    v = np.concatenate([np.array(edges_v), rng.integers(vlo, vhi + 1, count)])
    n = len(v)
    acc = np.concatenate([rng.choice(edges_a, len(edges_v)), rng.integers(alo, ahi + 1, count)])
    bias = rng.integers(vlo, vhi + 1, n) // rng.integers(1, 4, n)
    bias[: len(edges_v)] = rng.choice([vlo, vhi, 0], len(edges_v))
    r = rng.integers(0, layer.refractory + 1, n) if layer.refractory else np.zeros(n, np.int64)
    r[::3] = 0
    assert A >= 2
    return v, r, acc, bias


def check_unit(layer, seed, count=40):
    rng = np.random.default_rng(seed)
    v, r, acc, bias = _vectors(layer, rng, count)
    theta = layer.threshold
    ref_v, ref_r, ref_s = _contract(layer, v, r, acc, bias)
    tw_v, tw_r, tw_s = Twin.from_layer(layer)(v, r, acc, bias, theta)
    assert np.array_equal(tw_v, ref_v) and np.array_equal(tw_r, ref_r) and np.array_equal(tw_s, ref_s)

    got = _run(LIFNeuronUnit.from_layer(layer), theta, v, r, acc, bias)
    for k in range(len(v)):
        assert tuple(got[k]) == (ref_v[k], ref_r[k], int(ref_s[k])), (
            f"v={v[k]} r={r[k]} acc={acc[k]} bias={bias[k]}: gateware {tuple(got[k])}, "
            f"contract {(ref_v[k], ref_r[k], int(ref_s[k]))}")


def _contract(layer, v, r, acc, bias):
    """The contract: ``layer``'s step with syn = acc, a bias per neuron."""
    lay = Layer(weights=np.zeros((layer.n_in, len(v)), np.int64), bias=bias, threshold=layer.threshold,
                weight_bits=layer.weight_bits, membrane_bits=layer.membrane_bits, leak=layer.leak,
                reset=layer.reset, refractory=layer.refractory, readout=layer.readout)
    return lif.lif_step(lay, v, r, acc)


def _run(dut, theta, v, r, acc, bias):
    """The unit's (v_next, r_next, spike) for each neuron, fed one a cycle."""
    got = []

    async def bench(ctx):
        # One neuron a cycle, as in a sweep; neuron k's result is out NEURON_STAGES cycles later.
        ctx.set(dut.theta, theta)
        for k in range(len(v) + NEURON_STAGES):
            if k < len(v):
                ctx.set(dut.v, int(v[k]))
                ctx.set(dut.r, int(r[k]))
                ctx.set(dut.acc, int(acc[k]))
                ctx.set(dut.bias, int(bias[k]))
            await ctx.tick()
            if k + 1 >= NEURON_STAGES:
                got.append((ctx.get(dut.v_next), ctx.get(dut.r_next), ctx.get(dut.spike)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) >= len(v)
    return np.array(got, dtype=np.int64)[:len(v)]


LEAKS = [Leak.none(), Leak.shift(1), Leak.shift(3), Leak.shift(15), Leak.multiply(3, 2), Leak.multiply(0, 4),
         Leak.multiply(16, 4), Leak.multiply(40000, 16)]


@pytest.mark.parametrize("leak", LEAKS, ids=lambda lk: f"{lk.kind}-{lk.k}-{lk.m}-{lk.frac_bits}")
@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_leak_forms_and_resets(leak, reset):
    check_unit(_layer(5, 6, 16, leak, reset, 3, False, 100), seed=1)


@pytest.mark.parametrize("vb", [3, 8, 32])
def test_theta_next_to_rail_and_saturation(vb):
    vlo, vhi = signed_range(vb)
    # theta = vhi - 1: only a membrane saturated at the top rail fires.
    check_unit(_layer(7, 4 if vb < 8 else 8, vb, Leak.none(), "subtract", 0, False, vhi - 1), seed=2)
    check_unit(_layer(7, 4 if vb < 8 else 8, vb, Leak.shift(1), "zero", 2, False, 0), seed=3)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_the_top_rail_as_threshold_never_fires(reset):
    # A winner-take-all layer's lanes compare with theta = hi (hdl.learning_engine), outside the
    # contract's thresholds, so that the sweep never fires: not even a sum above hi, which
    # saturates to hi. theta = hi - 1 fires exactly the sums that saturate to hi, so the contract
    # at hi - 1 gives the expected membranes.
    vhi = signed_range(8)[1]
    layer = _layer(7, 8, 8, Leak.none(), reset, 0, False, vhi - 1)
    v, r, acc, bias = _vectors(layer, np.random.default_rng(5), 200)
    ref_v, _, ref_s = _contract(layer, v, r, acc, bias)
    assert ref_s.sum() >= 5  # sums at or above hi are among the vectors
    got = _run(LIFNeuronUnit.from_layer(layer), vhi, v, r, acc, bias)
    assert not got[:, 2].any()
    assert np.array_equal(got[:, 0], np.where(ref_s, vhi, ref_v))


def test_readout_unit():
    check_unit(_layer(9, 8, 12, Leak.multiply(7, 3), "zero", 0, True, 0), seed=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n_in=st.integers(1, 300), wb=st.integers(2, 16),
       vb=st.integers(3, 32), leak_kind=st.sampled_from(["none", "shift", "multiply"]),
       reset=st.sampled_from(["zero", "subtract"]), refractory=st.sampled_from([0, 1, 2, 7, 255]),
       readout=st.booleans(), data=st.data())
def test_random_units(seed, n_in, wb, vb, leak_kind, reset, refractory, readout, data):
    if leak_kind == "shift":
        leak = Leak.shift(data.draw(st.integers(1, vb)))
    elif leak_kind == "multiply":
        f = data.draw(st.integers(1, 16))
        leak = Leak.multiply(data.draw(st.integers(0, 1 << f)), f)
    else:
        leak = Leak.none()
    theta = data.draw(st.integers(0, signed_range(vb)[1] - 1))
    check_unit(_layer(n_in, wb, vb, leak, reset, refractory, readout, theta), seed=seed, count=20)
