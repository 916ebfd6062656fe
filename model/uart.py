"""Bit-level twin of :mod:`spikegate.hdl.uart`: 8N1 serial frames, one line level per clock cycle.

A byte on the line is a start bit (0), eight data bits LSB first and a stop bit (1). A bit lasts
``divisor`` clock cycles, a multiple of 1/256 (``FRAC_BITS`` = 8 fraction bits): the bit period
in those units is ``P = round(256 * clk_freq / baud)`` (:func:`bit_period`). Bits are whole
cycles, so a fractional divider spreads the fraction over the bits: bit ``j`` of a stream of
back-to-back bytes (``j`` counts every bit since the first start bit) covers the cycles from
``floor(j * P / 256)`` to ``floor((j + 1) * P / 256) - 1``. Every edge is thus less than one cycle
away from its ideal time, and the average rate is ``256 * clk_freq / P`` whatever the byte count.

The receiver (``UARTRx``) waits for a falling edge (first cycle ``c`` with the line low after a
high cycle), and samples bit ``k`` (0 = start, 1..8 data, 9 = stop) in cycle
``c + floor((P // 2 + k * P) / 256)``: the start bit must still be low there (a shorter glitch is
ignored), and a low stop bit is a framing error: the byte is dropped and counted, and the receiver
waits for the line to return high before it looks for the next start bit, so a stuck-low line (a
"break") yields one error, not a stream of zero bytes. For a whole ``divisor`` these are the
old rules: ``divisor // 2`` cycles to the start bit's sample, then ``divisor`` cycles per bit.

Which (clock, baud) pairs are valid (:func:`check_baud`): at least ``MIN_CYCLES_PER_BIT`` cycles
per bit, so the transmitter's edges are within a quarter bit of ideal, and a receiver that samples
every bit strictly inside it for any sender whose rate is within ``RX_TOLERANCE`` (2 %) of
``baud`` (:func:`rx_tolerance` computes the exact interval from the sample cycles).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["UARTTx", "UARTRx", "baud_divisor", "bit_period", "period_of", "check_baud", "rx_sample_offsets",
           "rx_tolerance", "FRAC_BITS", "MIN_CYCLES_PER_BIT", "RX_TOLERANCE", "BITS_PER_BYTE"]

FRAC_BITS = 8
ONE = 1 << FRAC_BITS
MIN_CYCLES_PER_BIT = 4
# The receiver must sample every bit inside it for senders this far (either way) from the baud.
RX_TOLERANCE = Fraction(2, 100)
BITS_PER_BYTE = 10


def _positive_int(name, value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} = {value!r} is not valid; valid: a positive integer in {what}")
    return int(value)


def bit_period(clk_freq: int, baud: int) -> int:
    """The bit period in 1/256 cycle, ``round(256 * clk_freq / baud)``; ValueError for a pair the
    UART cannot run (:func:`check_baud`)."""
    clk = _positive_int("clk_freq", clk_freq, "Hz")
    b = _positive_int("baud", baud, "bit/s")
    period = (2 * clk * ONE + b) // (2 * b)
    check_baud(clk, b, period)
    return period


def baud_divisor(clk_freq: int, baud: int) -> Fraction:
    """Clock cycles per bit (a multiple of 1/256) for ``HostLink`` and the UARTs; raises
    ValueError when the clock cannot carry that baud rate."""
    return Fraction(bit_period(clk_freq, baud), ONE)


def period_of(divisor) -> int:
    """``divisor`` (cycles per bit: an int, or a Fraction whose denominator divides 256) as a
    bit period in 1/256 cycle; ValueError unless it is at least ``MIN_CYCLES_PER_BIT``."""
    ok = not isinstance(divisor, bool) and isinstance(divisor, (int, np.integer, Fraction))
    if ok:
        p = Fraction(divisor) * ONE
        ok = p.denominator == 1 and p >= MIN_CYCLES_PER_BIT * ONE
    if not ok:
        raise ValueError(f"divisor = {divisor!r} is not valid; valid: clock cycles per bit >= "
                         f"{MIN_CYCLES_PER_BIT}, an integer or a Fraction in steps of 1/{ONE}")
    return int(p)


def rx_sample_offsets(period: int) -> list[int]:
    """Cycles from the falling edge's detection to the receiver's sample of bit k = 0..9."""
    return [(period // 2 + k * period) >> FRAC_BITS for k in range(BITS_PER_BYTE)]


def rx_tolerance(clk_freq: int, baud: int, period: int) -> tuple[Fraction, Fraction]:
    """The open interval ``(lo, hi)`` of sender rate errors (sender baud / ``baud`` - 1) for which
    every sample point lies strictly inside its bit.

    The sender's falling edge comes ``e`` in [0, 1) cycles before the cycle that sees it (the
    synchroniser delays every sample alike), and its bit k spans ``[k * q, (k + 1) * q)`` cycles
    from the edge, ``q = clk_freq / sender_baud``. Sample k at ``s_k + e`` is inside for every
    ``e`` iff ``k * q < s_k`` and ``s_k + 1 < (k + 1) * q``.
    """
    s = rx_sample_offsets(period)
    q_lo = max(Fraction(s[k] + 1, k + 1) for k in range(BITS_PER_BYTE))
    q_hi = min(Fraction(s[k], k) for k in range(1, BITS_PER_BYTE))
    nominal = Fraction(clk_freq, baud)
    return nominal / q_hi - 1, nominal / q_lo - 1


def check_baud(clk_freq: int, baud: int, period: int) -> None:
    """Refuse a (clock, baud) pair whose bit period ``period`` (1/256 cycle) is too short for the
    transmitter or leaves the receiver less than ``RX_TOLERANCE`` either way."""
    cycles = period / ONE
    if period < MIN_CYCLES_PER_BIT * ONE:
        raise ValueError(f"baud = {baud} is too fast for clk_freq = {clk_freq} Hz: {cycles:.2f} cycles per bit; "
                         f"valid: at least {MIN_CYCLES_PER_BIT} cycles per bit "
                         f"(baud <= {clk_freq // MIN_CYCLES_PER_BIT} at this clock)")
    lo, hi = rx_tolerance(clk_freq, baud, period)
    if lo >= -RX_TOLERANCE or hi <= RX_TOLERANCE:
        raise ValueError(f"baud = {baud} with clk_freq = {clk_freq} Hz ({cycles:.3f} cycles per bit): the receiver "
                         f"samples every bit inside it only for senders from {float(lo):+.2%} to {float(hi):+.2%} "
                         f"of the baud; valid: pairs that tolerate +-{float(RX_TOLERANCE):.0%}")


def _bit_lengths(period: int, nbits: int, start: int = 0) -> np.ndarray:
    """Cycles of each of ``nbits`` bits of a gapless stream, from fixed-point phase ``start``."""
    edges = (start + np.arange(nbits + 1, dtype=np.int64) * period) >> FRAC_BITS
    return np.diff(edges)


class UARTTx:
    """Serialiser: ``levels(data)`` is the tx line, one value per cycle, for back-to-back bytes."""

    def __init__(self, divisor):
        self.period = period_of(divisor)

    def levels(self, data: bytes) -> np.ndarray:
        bits = []
        for b in data:
            bits += [0] + [(b >> i) & 1 for i in range(8)] + [1]
        return np.repeat(np.array(bits, dtype=np.uint8), _bit_lengths(self.period, len(bits)))


class UARTRx:
    """Deserialiser over a sampled line: ``decode(levels)`` -> (bytes, framing errors)."""

    def __init__(self, divisor):
        self.period = period_of(divisor)

    def decode(self, levels) -> tuple[bytes, int]:
        lv = np.asarray(levels, dtype=np.uint8)
        offs = rx_sample_offsets(self.period)
        out, errors, i, prev = bytearray(), 0, 0, 1
        n = len(lv)
        while i < n:
            if not (prev == 1 and lv[i] == 0):
                prev = lv[i]
                i += 1
                continue
            # Falling edge seen at cycle i: bit k is sampled at i + offs[k].
            t = i + offs[0]
            if t >= n:
                break
            if lv[t] != 0:
                prev, i = lv[t], t + 1
                continue
            value = 0
            for k in range(8):
                t = i + offs[1 + k]
                if t >= n:
                    return bytes(out), errors
                value |= int(lv[t]) << k
            t = i + offs[9]
            if t >= n:
                break
            if lv[t] == 1:
                out.append(value)
                prev, i = 1, t + 1
            else:
                errors += 1
                # Wait for the line to go high again before hunting for the next start bit.
                j = t
                while j < n and lv[j] == 0:
                    j += 1
                prev, i = 1, j + 1
        return bytes(out), errors
