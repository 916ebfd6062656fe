"""The CHECKSUM answer, computed from a network: what a board holding ``net`` must answer.

CRC-32 (ISO-HDLC, ``zlib.crc32``) over every weight, bias and threshold value of the core, layer by
layer: the weights ``W[i, j]`` row by row (input i, then neuron j), the biases ``bias[j]``, then the
threshold (not for a readout layer). The order is the contract's: a conv layer's ``W`` is its kernel
(row (c, dy, dx), output channel j; a pooling layer's the kernel its core runs,
``model.conv_layer.pool_as_conv``) and its biases are per output channel; a dense layer after a conv
layer keeps row i at the packed address of input i (``model.conv_layer.hardware_rows_of``), which
is where the board reads it, in the order of i. Each value is encoded as in a WRITE frame: a little-endian
two's-complement integer of ``ceil(weight_bits / 8)`` bytes (weights) or ``ceil(membrane_bits / 8)``
bytes (biases, thresholds) of its layer. docs/protocol.md describes the command.
"""
from __future__ import annotations

import zlib

import numpy as np

from ..conv_layer import hardware_rows_of, pool_as_conv
from ..network import Network
from ..protocol import CfgTarget, value_bits
from .frames import value_bytes

__all__ = ["param_rows", "checksum_stream", "expected_checksum", "checksum_cycles"]


def _encode(values, nbytes: int) -> bytes:
    a = np.asarray(values, dtype=np.int64).reshape(-1)
    return (a.astype("<i8").view(np.uint8).reshape(-1, 8)[:, :nbytes]).tobytes()


def param_rows(geometry, l: int) -> np.ndarray:
    """The hardware row that holds each contract weight row of layer ``l`` (``geometry``: the core's
    per-layer LayerGeometry): a dense layer after a conv layer keeps row i at the packed address of
    input i; every other layer at i."""
    prev = geometry[l - 1].conv if l else None
    if prev is not None and geometry[l].conv is None:
        return hardware_rows_of(prev.out_fields, prev.spec.out_shape)
    return np.arange(geometry[l].conv.spec.kernel_rows if geometry[l].conv is not None else geometry[l].n_in)


def checksum_stream(net: Network, read=None, geometry=None) -> bytes:
    """The bytes the CRC covers, in order (see the module docstring). ``read(layer, target, row,
    col)``, if given, supplies the values instead of ``net`` (the core twin's ``param``), which
    then only gives the structure; ``geometry`` (the core's, ``HardwareConfig.geometry``) then
    places the rows (:func:`param_rows`), needed when a dense layer follows a conv layer."""
    out = bytearray()
    for l, layer in enumerate(net.layers):
        layer = pool_as_conv(layer)
        wb = value_bytes(value_bits(layer, CfgTarget.WEIGHT))
        vb = value_bytes(value_bits(layer, CfgTarget.BIAS))
        if read is None:
            w, b, t = layer.weights, layer.bias, [layer.threshold]
        else:
            rows, cols = param_rows(geometry, l) if geometry is not None else range(layer.n_in), layer.weights.shape[1]
            w = [read(l, CfgTarget.WEIGHT, int(i), j) for i in rows for j in range(cols)]
            b = [read(l, CfgTarget.BIAS, 0, j) for j in range(layer.bias.size)]
            t = [read(l, CfgTarget.THRESHOLD, 0, 0)]
        out += _encode(w, wb) + _encode(b, vb)
        if not layer.readout:
            out += _encode(t, vb)
    return bytes(out)


def expected_checksum(net: Network, read=None, geometry=None) -> int:
    """The CRC-32 a board answers to CHECKSUM when it holds ``net``'s weights, biases and thresholds
    (or, with ``read``, the values ``read`` returns: see :func:`checksum_stream`)."""
    return zlib.crc32(checksum_stream(net, read, geometry))


def checksum_cycles(net: Network) -> int:
    """Clock cycles of a CHECKSUM on the gateware, from the cycle the command engine takes the frame
    to the cycle its answer header is offered to the encoder: 3 + the sum over every value of
    (2 + its byte count) -- two cycles to read a value, one per byte into the CRC."""
    total = 3
    for layer in map(pool_as_conv, net.layers):
        wb = value_bytes(value_bits(layer, CfgTarget.WEIGHT))
        vb = value_bytes(value_bits(layer, CfgTarget.BIAS))
        total += layer.weights.size * (2 + wb) + layer.bias.size * (2 + vb) + (0 if layer.readout else 2 + vb)
    return total
