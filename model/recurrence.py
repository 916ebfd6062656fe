"""Twin of :class:`spikegate.hdl.recurrence.RecurrentEvents`: a recurrent layer's own spikes of step
t-1 as integration events of step t.

The recurrent weights ``Wr`` live in a second region of the layer's weight memory: rows
``base .. base + n - 1`` after the feed-forward rows ``0 .. n_in - 1``, with ``base`` = n_in
rounded up to a multiple of the lane count P (the rows between hold zeros and are never read), so
an event's row ``base + g*P + k`` is the concatenation of a row group and the lane k, no adder.
The layer's sweep writes its non-zero spike words into a word buffer (G words); the next step's
integration replays them, lowest lane first, before the feed-forward events: each spike costs G
cycles, like a feed-forward event (README "Temporal layers"; docs/architecture.md).
"""
from __future__ import annotations

import numpy as np

__all__ = ["RecurrentEvents", "recurrent_base", "synapse_layer"]


def recurrent_base(n_in: int, lanes: int) -> int:
    """First weight row of the recurrent region: n_in rounded up to a multiple of ``lanes``."""
    return -(-n_in // lanes) * lanes


def synapse_layer(layer, lanes: int):
    """The layer whose weights the synapse array holds: ``layer`` itself, or for a recurrent layer
    one with the rows ``[W; 0; Wr]`` (feed-forward, padding to :func:`recurrent_base`, recurrent)."""
    tp = layer.temporal
    if tp is None or tp.recurrent is None:
        return layer
    pad = np.zeros((recurrent_base(layer.n_in, lanes) - layer.n_in, layer.n), np.int64)
    return layer.replace(weights=np.vstack([layer.weights, pad, tp.recurrent]), temporal=None)


class RecurrentEvents:
    """The word buffer: what the sweep of step t-1 wrote, replayed as weight rows at step t."""

    def __init__(self, n_in: int, lanes: int):
        self.base, self.lanes = recurrent_base(n_in, lanes), lanes
        self.words: list[tuple[int, int]] = []

    def reset(self) -> None:
        """s(-1) = 0: a run starts with an empty buffer."""
        self.words = []

    def rows(self) -> list[int]:
        """The weight rows of the buffered spikes, in the gateware's order (word by word, lowest lane first)."""
        P = self.lanes
        return [self.base + g * P + k for g, w in self.words for k in range(P) if (w >> k) & 1]

    def store(self, words: list[tuple[int, int]]) -> None:
        """The sweep's non-zero spike words (g, word), in sweep order; replaces the replayed ones."""
        self.words = list(words)
