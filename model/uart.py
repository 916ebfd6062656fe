"""Bit-level twin of :mod:`spikegate.hdl.uart`: 8N1 serial frames, one line level per clock cycle.

A byte on the line is a start bit (0), eight data bits LSB first and a stop bit (1); every bit lasts
``divisor`` clock cycles (divisor = clk_freq / baud, rounded to the nearest integer, at least 4).

The receiver (``UARTRx``) waits for a falling edge, checks the start bit is still low half a bit
later (a shorter glitch is ignored), then samples each data bit and the stop bit in the middle of
its bit period. A low stop bit is a framing error: the byte is dropped and counted, and the
receiver waits for the line to return high before it looks for the next start bit, so a stuck-low
line (a "break") yields one error, not a stream of zero bytes.
"""
from __future__ import annotations

import numpy as np

__all__ = ["UARTTx", "UARTRx", "baud_divisor"]


def baud_divisor(clk_freq: int, baud: int) -> int:
    """Clock cycles per bit; raises ValueError when the clock cannot carry that baud rate."""
    if isinstance(clk_freq, bool) or not isinstance(clk_freq, (int, np.integer)) or clk_freq <= 0:
        raise ValueError(f"clk_freq = {clk_freq!r} is not valid; valid: a positive integer in Hz")
    if isinstance(baud, bool) or not isinstance(baud, (int, np.integer)) or baud <= 0:
        raise ValueError(f"baud = {baud!r} is not valid; valid: a positive integer in bit/s")
    div = (int(clk_freq) + int(baud) // 2) // int(baud)
    if div < 4:
        raise ValueError(f"baud = {baud} is too fast for clk_freq = {clk_freq} Hz: {clk_freq / baud:.2f} "
                         f"cycles per bit; valid: at least 4 cycles per bit (baud <= {clk_freq // 4})")
    err = abs(clk_freq / div - baud) / baud
    if err > 0.02:
        raise ValueError(f"baud = {baud} cannot be made from clk_freq = {clk_freq} Hz: the nearest rate is "
                         f"{clk_freq / div:.0f} bit/s ({err:.1%} off); valid: within 2%")
    return div


class UARTTx:
    """Serialiser: ``levels(data)`` is the tx line, one value per cycle, for back-to-back bytes."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor = {divisor} is not valid; valid: >= 4")
        self.divisor = int(divisor)

    def levels(self, data: bytes) -> np.ndarray:
        bits = []
        for b in data:
            bits += [0] + [(b >> i) & 1 for i in range(8)] + [1]
        return np.repeat(np.array(bits, dtype=np.uint8), self.divisor)


class UARTRx:
    """Deserialiser over a sampled line: ``decode(levels)`` -> (bytes, framing errors)."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"divisor = {divisor} is not valid; valid: >= 4")
        self.divisor = int(divisor)

    def decode(self, levels) -> tuple[bytes, int]:
        lv = np.asarray(levels, dtype=np.uint8)
        d, half = self.divisor, self.divisor // 2
        out, errors, i, prev = bytearray(), 0, 0, 1
        n = len(lv)
        while i < n:
            if not (prev == 1 and lv[i] == 0):
                prev = lv[i]
                i += 1
                continue
            # Falling edge at cycle i: sample the start bit half a bit later.
            t = i + half
            if t >= n:
                break
            if lv[t] != 0:
                prev, i = lv[t], t + 1
                continue
            value = 0
            for k in range(8):
                t += d
                if t >= n:
                    return bytes(out), errors
                value |= int(lv[t]) << k
            t += d
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
