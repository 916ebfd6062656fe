"""Twin of :class:`spikegate.hdl.delay.DelayedSynapseArray`: a delayed layer's weights, delays and
per-delay accumulator slots.

README "Temporal layers", step 2: a spike of input i at step t reaches neuron j at t + D[i, j].
The gateware keeps S = D_max + 1 accumulator slots per neuron (D_max: the layer's own largest
delay): slot s of neuron j holds the exact partial sum of the step that lands in it. An input event
at step t costs its G cycles at once, like an undelayed one: weight word (i, g) and delay word
(i, g) are read together and lane k adds its weight into slot (t + D[i, gP + k]) mod S. The sweep
of step t reads slot t mod S of every group and clears it. So a delayed spike costs nothing while
it waits and nothing when it lands (the sweep reads that slot anyway); the work per event is that
of an undelayed event.

Layout: each lane k has its own accumulator memory, word ``s * 2^ceil(log2 G) + g`` for slot s and
group g (a concatenation, no multiply: ``slot_words`` = (S - 1) * 2^ceil(log2 G) + G words); the
current slot t mod S is a register that steps after every layer step, and a delay memory word
holds D per lane (``bits_for(S - 1)`` bits), so a lane's slot is one small add and one wrap (- S).
The delay path costs DELAY_STAGES more cycles per layer step (the delay word's read, then the
registered slot address, before the accumulator read).

A run starts from empty slots, but spikes of the previous run that would land at step >= T are
still in theirs: the layer's first step of a run clears all ``slot_words`` words (one per cycle,
every lane at once) before its integration: ``clear_cycles`` = ``slot_words``, once per run (S * G
when G is a power of two). Layers whose delays are all 0 are plain layers (no slots).
"""
from __future__ import annotations

import numpy as np

from .recurrence import synapse_layer
from .synapse import SynapseArray, pack_lanes

__all__ = ["DELAY_STAGES", "DelayedSynapseArray", "delay_slots", "delay_words", "slot_stride"]

# Register stages the delay path adds in front of the accumulator read: the delay word's read
# (with the weight word's) and the registered slot address.
DELAY_STAGES = 2


def delay_slots(layer) -> int:
    """S = the layer's largest delay + 1 accumulator slots, or 0 when it has no non-zero delay."""
    tp = layer.temporal
    if tp is None or tp.delays is None or tp.max_delay == 0:
        return 0
    return tp.max_delay + 1


def slot_stride(groups: int) -> int:
    """Accumulator words from one slot to the next: G rounded up to a power of two."""
    return 1 << (groups - 1).bit_length() if groups > 1 else 1


def delay_rows(layer, lanes: int) -> np.ndarray:
    """The delays per weight-memory row (int64 [rows, n]): D, then zeros for the padding and the
    recurrent rows of a recurrent layer (recurrent terms have no delay)."""
    rows = synapse_layer(layer, lanes).n_in
    out = np.zeros((rows, layer.n), np.int64)
    out[:layer.n_in] = layer.temporal.delays
    return out


def delay_words(layer, lanes: int, bits: int) -> list[int]:
    """The delay memory's contents: word ``i * G + g`` holds ``D[i, gP + k]`` in lane k (``bits``
    bits each, unsigned); lanes past the last neuron hold 0."""
    G = -(-layer.n // lanes)
    d = np.zeros((delay_rows(layer, lanes).shape[0], G * lanes), np.int64)
    d[:, :layer.n] = delay_rows(layer, lanes)
    d = d.reshape(-1, G, lanes)
    return [pack_lanes(d[i, g], bits) for i in range(d.shape[0]) for g in range(G)]


class DelayedSynapseArray(SynapseArray):
    """:class:`~spikegate.model.synapse.SynapseArray` with per-lane delays and S accumulator slots.

    ``integrate``/``take`` keep their meaning for the layer's current step; ``advance`` moves to
    the next step (after the sweep), ``reset`` marks the slots dirty (a run's start) and
    ``clear_if_dirty`` empties them (the first step's CLEAR)."""

    def __init__(self, layer, lanes: int):
        super().__init__(synapse_layer(layer, lanes), lanes)
        self.slots = delay_slots(layer)
        d = np.zeros((self.n_in, self.groups * lanes), np.int64)
        d[:, :layer.n] = delay_rows(layer, lanes)
        self.delays = d.reshape(self.n_in, self.groups, lanes)
        self.acc = np.zeros((self.slots, self.groups, lanes), np.int64)
        self.slot = 0
        self.dirty = True
        self._g, self._k = np.indices((self.groups, lanes))

    def reset(self) -> None:
        self.slot, self.dirty = 0, True

    def clear_if_dirty(self) -> bool:
        """The first step of a run clears every slot; True if it did (LayerGeometry.clear_cycles)."""
        if not self.dirty:
            return False
        self.acc[:] = 0
        self.dirty = False
        return True

    def integrate(self, i: int) -> None:
        """Input row i's event: lane k of group g adds its weight into slot (t + D) mod S."""
        self.acc[(self.slot + self.delays[i]) % self.slots, self._g, self._k] += self.weights[i]

    def take(self, g: int) -> np.ndarray:
        out = self.acc[self.slot, g].copy()
        self.acc[self.slot, g] = 0
        return out

    def advance(self) -> None:
        self.slot = (self.slot + 1) % self.slots
