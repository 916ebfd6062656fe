"""Twin of :class:`spikegate.hdl.synapse.SynapseArray`: weight memory + P-lane accumulators.

Memory layout (shared with the gateware, which is initialised from :meth:`weight_words`):
word ``i * G + g`` holds ``W[i, g*P : (g+1)*P]``, lane k in bits ``[k*wb, (k+1)*wb)`` as
two's complement; lanes past the last neuron hold 0. One read therefore returns the weights
from one input to P neurons, and an input event costs G = ceil(n / P) reads.
"""
from __future__ import annotations

import numpy as np

from .network import Layer

__all__ = ["SynapseArray", "pack_lanes", "unpack_lanes"]


def pack_lanes(values, bits: int) -> int:
    """Pack signed lane values into one memory word, lane 0 in the least significant bits."""
    word, mask = 0, (1 << bits) - 1
    for k, x in enumerate(values):
        word |= (int(x) & mask) << (k * bits)
    return word


def unpack_lanes(word: int, bits: int, lanes: int) -> np.ndarray:
    mask, half = (1 << bits) - 1, 1 << (bits - 1)
    out = np.empty(lanes, dtype=np.int64)
    for k in range(lanes):
        x = (int(word) >> (k * bits)) & mask
        out[k] = x - (1 << bits) if x & half else x
    return out


class SynapseArray:
    """Weights of one layer grouped in P-lane words, and the layer's exact accumulators."""

    def __init__(self, layer: Layer, lanes: int, zero: bool = False):
        """``zero``: the memory starts all-zero (SPRAM has no initial contents: the host loads the
        weights through the cfg port)."""
        self.n_in, self.n, self.lanes = layer.n_in, layer.n, lanes
        self.groups = -(-layer.n // lanes)
        self.weight_bits = layer.weight_bits
        padded = np.zeros((layer.n_in, self.groups * lanes), dtype=np.int64)
        if not zero:
            padded[:, :layer.n] = layer.weights
        # weights[i, g, k] = W[i, g*P + k]: the memory's contents as an array.
        self.weights = padded.reshape(layer.n_in, self.groups, lanes)
        self.acc = np.zeros((self.groups, lanes), dtype=np.int64)

    def weight_words(self) -> list[int]:
        return [pack_lanes(self.weights[i, g], self.weight_bits)
                for i in range(self.n_in) for g in range(self.groups)]

    def write_weight(self, row: int, col: int, value: int) -> None:
        self.weights[row, col // self.lanes, col % self.lanes] = value

    def integrate(self, i: int) -> None:
        """One input event: G reads, each added to its group's P accumulators."""
        self.acc += self.weights[i]

    def take(self, g: int) -> np.ndarray:
        """Sweep read of group g: return its sums and clear them for the next step."""
        out = self.acc[g].copy()
        self.acc[g] = 0
        return out
