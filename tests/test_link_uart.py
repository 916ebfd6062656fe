"""UART gateware against its bit-level twin (Amaranth simulator)."""
import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st, HealthCheck

from spikegate.hdl.uart import UARTRx, UARTTx
from spikegate.model import uart as twin


def run_tx(data: bytes, divisor: int) -> np.ndarray:
    dut = UARTTx(divisor)
    levels = []

    async def bench(ctx):
        i = 0
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, data[0])
        # Record from the first cycle after the first byte is accepted.
        started = False
        while True:
            ready = ctx.get(dut.i.ready)
            await ctx.tick()
            if started:
                levels.append(ctx.get(dut.line))
            if ready:
                if not started:
                    started = True
                    levels.append(ctx.get(dut.line))
                i += 1
                if i < len(data):
                    ctx.set(dut.i.payload, data[i])
                else:
                    ctx.set(dut.i.valid, 0)
            if i >= len(data) and ctx.get(dut.idle):
                break

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(levels[:len(data) * 10 * divisor], dtype=np.uint8)


def run_rx(levels, divisor: int, synchronise: bool):
    dut = UARTRx(divisor, synchronise=synchronise)
    got, errors = bytearray(), [0]

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for v in list(levels) + [1] * (3 * divisor):
            ctx.set(dut.line, int(v))
            # error is combinational: read it in the cycle whose line value it judges.
            errors[0] += ctx.get(dut.error)
            await ctx.tick()
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return bytes(got), errors[0]


@pytest.mark.parametrize("divisor", [4, 5, 9])
def test_tx_matches_twin(divisor):
    data = bytes([0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80])
    assert np.array_equal(run_tx(data, divisor), twin.UARTTx(divisor).levels(data))


@pytest.mark.parametrize("divisor,synchronise", [(4, False), (7, True)])
def test_rx_clean_bytes(divisor, synchronise):
    data = bytes(range(0, 256, 17)) + b"\xa5\x5a"
    line = np.concatenate([[1] * 5, twin.UARTTx(divisor).levels(data)])
    assert run_rx(line, divisor, synchronise) == (data, 0)
    assert twin.UARTRx(divisor).decode(line) == (data, 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(divisor=st.sampled_from([4, 6]),
       pieces=st.lists(st.one_of(
           st.binary(min_size=1, max_size=3).map(lambda b: ("bytes", b)),
           st.lists(st.integers(0, 1), min_size=1, max_size=30).map(lambda b: ("noise", b)),
           st.integers(1, 40).map(lambda n: ("break", n))), min_size=1, max_size=5))
def test_rx_garbage_matches_twin(divisor, pieces):
    """Glitches, breaks, wrong stop bits and random levels: the gateware decodes exactly what the
    twin decodes, and counts the same framing errors."""
    line = [1, 1]
    for kind, v in pieces:
        if kind == "bytes":
            line += list(twin.UARTTx(divisor).levels(v))
        elif kind == "noise":
            line += list(np.repeat(v, 2))
        else:
            line += [0] * (v * divisor) + [1] * 2
    line += [1] * (12 * divisor)
    hw = run_rx(line, divisor, synchronise=False)
    assert hw == twin.UARTRx(divisor).decode(line)


def test_baud_divisor_errors():
    assert twin.baud_divisor(12_000_000, 115_200) == 104
    with pytest.raises(ValueError, match="baud = 4000000 is too fast"):
        twin.baud_divisor(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match="baud"):
        twin.baud_divisor(12_000_000, 0)
    with pytest.raises(ValueError, match="divisor = 3"):
        UARTTx(3)
