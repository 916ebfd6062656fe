"""The CHECKSUM answer, computed from a network: what a board holding ``net`` must answer.

CRC-32 (ISO-HDLC, ``zlib.crc32``) over every weight, bias and threshold value of the core, layer by
layer: the weights ``W[i, j]`` row by row (input i, then neuron j), the biases ``bias[j]``, then the
threshold (not for a readout layer). Each value is encoded as in a WRITE frame: a little-endian
two's-complement integer of ``ceil(weight_bits / 8)`` bytes (weights) or ``ceil(membrane_bits / 8)``
bytes (biases, thresholds) of its layer. docs/protocol.md describes the command.
"""
from __future__ import annotations

import zlib

import numpy as np

from ..network import Network
from ..protocol import CfgTarget, value_bits
from .frames import value_bytes

__all__ = ["checksum_stream", "expected_checksum", "checksum_cycles"]


def _encode(values, nbytes: int) -> bytes:
    a = np.asarray(values, dtype=np.int64).reshape(-1)
    return (a.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :nbytes]).tobytes()


def checksum_stream(net: Network, read=None) -> bytes:
    """The bytes the CRC covers, in order (see the module docstring). ``read(layer, target, row,
    col)``, if given, supplies the values instead of ``net`` (the core twin's ``param``), which
    then only gives the structure."""
    out = bytearray()
    for l, layer in enumerate(net.layers):
        wb = value_bytes(value_bits(layer, CfgTarget.WEIGHT))
        vb = value_bytes(value_bits(layer, CfgTarget.BIAS))
        if read is None:
            w, b, t = layer.weights, layer.bias, [layer.threshold]
        else:
            w = [read(l, CfgTarget.WEIGHT, i, j) for i in range(layer.n_in) for j in range(layer.n)]
            b = [read(l, CfgTarget.BIAS, 0, j) for j in range(layer.n)]
            t = [read(l, CfgTarget.THRESHOLD, 0, 0)]
        out += _encode(w, wb) + _encode(b, vb)
        if not layer.readout:
            out += _encode(t, vb)
    return bytes(out)


def expected_checksum(net: Network, read=None) -> int:
    """The CRC-32 a board answers to CHECKSUM when it holds ``net``'s weights, biases and thresholds
    (or, with ``read``, the values ``read`` returns: see :func:`checksum_stream`)."""
    return zlib.crc32(checksum_stream(net, read))


def checksum_cycles(net: Network) -> int:
    """Clock cycles of a CHECKSUM on the gateware, from the cycle the command engine takes the frame
    to the cycle its answer header is offered to the encoder: 3 + the sum over every value of
    (2 + its byte count) -- two cycles to read a value, one per byte into the CRC."""
    total = 3
    for layer in net.layers:
        wb = value_bytes(value_bits(layer, CfgTarget.WEIGHT))
        vb = value_bytes(value_bits(layer, CfgTarget.BIAS))
        total += layer.weights.size * (2 + wb) + layer.n * (2 + vb) + (0 if layer.readout else 2 + vb)
    return total
