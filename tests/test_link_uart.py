"""UART gateware against its bit-level twin (Amaranth simulator), at whole and fractional
divisors, and the receiver's tolerance of a drifting sender."""
from fractions import Fraction
from math import floor

import numpy as np
import pytest
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st, HealthCheck

from spikegate.hdl.uart import UARTRx, UARTTx
from spikegate.model import uart as twin
from waits import within


def run_tx(data: bytes, divisor: int) -> np.ndarray:
    dut = UARTTx(divisor)
    levels = []

    async def bench(ctx):
        i = 0
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, data[0])
        # Record from the first cycle after the first byte is accepted: the byte is in the
        # holding register then, and the start bit begins a cycle later.
        started = False
        for _ in within(f"the transmitter's idle after {len(data)} bytes"):
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
    assert levels[0] == 1, "the line left idle in the cycle the byte waits in the holding register"
    levels = levels[1:]
    return np.array(levels[:(len(data) * 10 * twin.period_of(divisor)) >> twin.FRAC_BITS], dtype=np.uint8)


def run_rx(levels, divisor: int, synchronise: bool):
    dut = UARTRx(divisor, synchronise=synchronise)
    got, errors = bytearray(), [0]

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        for v in list(levels) + [1] * int(3 * divisor):
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


# Fractional divisors of the boards' default links: iCEBreaker 16.125 MHz and ULX3S 35 MHz at
# 3 Mbaud, and one just above the 4-cycle floor.
FRACTIONAL = [Fraction(43, 8), twin.baud_divisor(35_000_000, 3_000_000), Fraction(1063, 256)]


@pytest.mark.parametrize("divisor", [4, 5, 9] + FRACTIONAL)
def test_tx_matches_twin(divisor):
    data = bytes([0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80])
    assert np.array_equal(run_tx(data, divisor), twin.UARTTx(divisor).levels(data))


@pytest.mark.parametrize("divisor,synchronise", [(4, False), (7, True), (Fraction(43, 8), True),
                                                 (Fraction(1063, 256), False)])
def test_rx_clean_bytes(divisor, synchronise):
    data = bytes(range(0, 256, 17)) + b"\xa5\x5a"
    line = np.concatenate([[1] * 5, twin.UARTTx(divisor).levels(data)])
    assert run_rx(line, divisor, synchronise) == (data, 0)
    assert twin.UARTRx(divisor).decode(line) == (data, 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(divisor=st.sampled_from([4, 6, Fraction(43, 8), Fraction(1063, 256)]),
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
            line += [0] * int(v * divisor) + [1] * 2
    line += [1] * int(12 * divisor)
    hw = run_rx(line, divisor, synchronise=False)
    assert hw == twin.UARTRx(divisor).decode(line)


def test_baud_divisor_errors():
    # A fractional divider: 104 + 43/256 cycles per bit (the old whole-cycle rule rounded to 104,
    # 0.16 % slow); 3 Mbaud from the iCEBreaker's 16.125 MHz is exactly 5 3/8 cycles per bit.
    assert twin.baud_divisor(12_000_000, 115_200) == Fraction(26667, 256)
    assert twin.baud_divisor(16_125_000, 3_000_000) == Fraction(43, 8)
    assert twin.baud_divisor(12_000_000, 3_000_000) == 4
    with pytest.raises(ValueError, match="baud = 4000000 is too fast for clk_freq = 12000000 Hz.*baud <= 3000000"):
        twin.baud_divisor(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match="baud"):
        twin.baud_divisor(12_000_000, 0)
    with pytest.raises(ValueError, match="divisor = 3"):
        UARTTx(3)
    with pytest.raises(ValueError, match=r"divisor = Fraction\(13, 3\) is not valid"):
        UARTRx(Fraction(13, 3))


def sender_line(data: bytes, clk: int, baud: int, drift: Fraction, phase: Fraction) -> list:
    """The line as a sender at ``baud * (1 + drift)`` drives it, sampled once per cycle; its
    first start bit begins ``3 + phase`` cycles in (transcribed from the 8N1 definition, not the twin)."""
    bit = Fraction(clk) / (baud * (1 + drift))
    bits = [v for b in data for v in [0] + [(b >> i) & 1 for i in range(8)] + [1]]
    t0 = 3 + phase
    n = int(t0 + len(bits) * bit) + 3 * int(bit) + 8
    return [1 if c < t0 or floor((c - t0) / bit) >= len(bits) else bits[floor((c - t0) / bit)] for c in range(n)]


# (clock, baud) pairs: every board's default link, and clocks a faster design may run.
RATES = [(16_125_000, 3_000_000), (12_000_000, 3_000_000), (35_000_000, 3_000_000), (27_000_000, 3_000_000),
         (40_000_000, 921_600), (48_000_000, 3_000_000), (100_000_000, 3_000_000), (75_000_000, 3_000_000),
         (12_000_000, 115_200), (13_000_000, 3_000_000), (12_345_678, 2_000_000)]


@pytest.mark.parametrize("clk,baud", RATES)
def test_rx_sample_points_inside_bits_at_drift_limits(clk, baud):
    """At both documented drift limits (sender rate -2 % and +2 %), each of the ten sample points
    lies strictly inside its bit, for a sender edge anywhere within the cycle before the one that
    sees it; and rx_tolerance reports an interval wider than the limits."""
    period = twin.bit_period(clk, baud)
    lo, hi = twin.rx_tolerance(clk, baud, period)
    assert lo < -twin.RX_TOLERANCE and hi > twin.RX_TOLERANCE
    for drift in (-twin.RX_TOLERANCE, twin.RX_TOLERANCE):
        bit = Fraction(clk) / (baud * (1 + drift))
        for k in range(10):
            sample = floor(Fraction(period // 2 + k * period, 256))
            # The edge came e cycles before the cycle that saw it, 0 <= e < 1: check both ends.
            for e in (Fraction(0), Fraction(255, 256)):
                assert k * bit < sample + e < (k + 1) * bit, (clk, baud, drift, k, e)


@settings(max_examples=40, deadline=None)
@given(rate=st.sampled_from(RATES), drift=st.sampled_from([-twin.RX_TOLERANCE, twin.RX_TOLERANCE]),
       phase=st.fractions(0, Fraction(255, 256)), data=st.binary(min_size=1, max_size=6))
def test_rx_twin_decodes_drifting_sender(rate, drift, phase, data):
    clk, baud = rate
    line = sender_line(data, clk, baud, drift, phase)
    assert twin.UARTRx(twin.baud_divisor(clk, baud)).decode(line) == (data, 0)


@pytest.mark.parametrize("clk,baud,drift", [(16_125_000, 3_000_000, Fraction(-2, 100)),
                                            (16_125_000, 3_000_000, Fraction(2, 100)),
                                            (12_000_000, 3_000_000, Fraction(2, 100)),
                                            (35_000_000, 3_000_000, Fraction(-2, 100))])
def test_rx_gateware_decodes_drifting_sender(clk, baud, drift):
    data = bytes([0x00, 0xFF, 0x55, 0xAA, 0x0F, 0xF0, 0x01, 0x80])
    line = sender_line(data, clk, baud, drift, Fraction(1, 3))
    div = twin.baud_divisor(clk, baud)
    assert run_rx(line, div, synchronise=False) == (data, 0) == twin.UARTRx(div).decode(line)


def test_slow_sender_beyond_tolerance_is_misread():
    """The check can fail: far outside the tolerance the same receiver misreads the bytes."""
    clk, baud = 16_125_000, 3_000_000
    data = bytes([0x0F, 0xF0, 0x55])
    line = sender_line(data, clk, baud, Fraction(-8, 100), Fraction(0))
    assert twin.UARTRx(twin.baud_divisor(clk, baud)).decode(line) != (data, 0)


def test_build_refuses_bad_baud_before_any_tool(capsys):
    """Bad (clock, baud) pairs and rates beyond a board's bridge fail before elaboration, naming
    the rate, the clock and what is valid; the CLI prints one line and exits non-zero."""
    from spikegate.boards.build import build
    from spikegate.boards.targets import get_board
    from spikegate.boards.top import link_baud
    from spikegate.cli import main
    assert link_baud(get_board("icebreaker"), None, 16.125e6) == 3_000_000
    assert link_baud(get_board("orangecrab"), None, 40e6) == 921_600
    with pytest.raises(ValueError, match="baud = 12000000 is too fast for clk_freq = 40000000 Hz.*"
                                         "baud <= 10000000.*lower --baud or raise --clock"):
        build("orangecrab", baud=12_000_000)
    with pytest.raises(ValueError, match="baud = 4000000 is not valid for the ULX3S 85F.*at most 3000000"):
        build("ulx3s", baud=4_000_000)
    with pytest.raises(ValueError, match="baud = 0 is not valid"):
        link_baud(get_board("icebreaker"), 0, 16.125e6)
    assert main(["build", "--board", "tangnano9k", "--baud", "4000000"]) != 0
    err = capsys.readouterr().err
    assert "Traceback" not in err and "baud = 4000000 is not valid for the Sipeed Tang Nano 9K" in err


def test_hostlink_at_fractional_rate_matches_twin():
    """The whole HostLink (synchroniser included) at 5 3/8 cycles per bit, the iCEBreaker's 3 Mbaud
    at 16.125 MHz scaled down: requests from a sender at the nominal rate, the answers decoded from
    tx equal the byte-level twin's, a bulk WRITE included."""
    from spikegate.hdl.link import HostLink
    from spikegate.model import link as proto
    from spikegate.model.link import CfgTarget, Cmd, encode_request
    from spikegate.model.protocol import WRITE_ROW_MAJOR
    from spikegate.model.random import random_network
    clk, baud = 430_000, 80_000
    net = random_network(5, (6, 4, 3), readout=True, timesteps=2, weight_bits=8, membrane_bits=12)
    hw = HostLink(net, lanes=2, clk_freq=clk, baud=baud, max_payload=64, max_events=16)
    tw = proto.HostLink(net, lanes=2, clk_freq=clk, baud=baud, max_payload=64, max_events=16)
    assert hw.divisor == Fraction(43, 8)
    write = bytes([0, CfgTarget.WEIGHT | WRITE_ROW_MAJOR, 1, 0, 3, 0, 6, 0]) + bytes([1, 2, 3, 4, 5, 0xFB])
    script = [encode_request(Cmd.IDENTIFY, 1), encode_request(Cmd.WRITE, 2, write), encode_request(Cmd.CHECKSUM, 3)]
    tx = []

    async def bench(ctx):
        for frame in script:
            for v in sender_line(frame, clk, baud, Fraction(0), Fraction(1, 2)):
                ctx.set(hw.rx, v)
                await ctx.tick()
                tx.append(ctx.get(hw.tx))
            quiet = 0
            for _ in within(f"{40 * 6} idle cycles after a frame"):
                if quiet == 40 * 6:
                    break
                await ctx.tick()
                tx.append(ctx.get(hw.tx))
                quiet = quiet + 1 if ctx.get(hw.idle) else 0

    sim = Simulator(hw)
    sim.add_clock(1 / clk)
    sim.add_testbench(bench)
    sim.run()
    got, errors = twin.UARTRx(hw.divisor).decode(np.array(tx))
    assert errors == 0
    assert got == b"".join(tw.feed(f) for f in script)
    assert tw.net.layers[0].weights[1, 3] == 1 and list(tw.net.layers[0].weights[2]) == [2, 3, 4, 5]


@settings(max_examples=60, deadline=None)
@given(clk=st.integers(1_000_000, 200_000_000), cycles=st.fractions(4, 40),
       drift=st.sampled_from([-twin.RX_TOLERANCE, twin.RX_TOLERANCE]), phase=st.fractions(0, Fraction(255, 256)),
       data=st.binary(min_size=1, max_size=3))
def test_any_pair_with_four_cycles_per_bit_is_valid_and_exact(clk, cycles, drift, phase, data):
    """Every (clock, baud) pair with at least 4 cycles per bit passes the check, and its receiver
    decodes a sender drifting by either limit at any phase; fewer than 4 are refused."""
    baud = max(1, int(clk / cycles))
    period = (2 * clk * 256 + baud) // (2 * baud)
    if period < 4 * 256:
        with pytest.raises(ValueError, match=f"baud = {baud} is too fast for clk_freq = {clk} Hz"):
            twin.bit_period(clk, baud)
        return
    assert twin.bit_period(clk, baud) == period
    line = sender_line(data, clk, baud, drift, phase)
    assert twin.UARTRx(twin.baud_divisor(clk, baud)).decode(line) == (data, 0)
