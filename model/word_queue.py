"""Twin of :class:`spikegate.hdl.word_queue.WordQueue`: the spike-word queue between layers.

Cycle by cycle: the outputs (``r_valid``, ``r_payload``, ``w_ready``) are those of the state at
the start of a cycle; :meth:`WordQueue.clock` then applies the cycle's inputs. The head register
loads when it is empty or popped, from the words stored *before* this cycle's write, so a word
written in cycle c is at the head from cycle c + 2 at the earliest
(:data:`~spikegate.model.layer.WORD_FIFO_STAGES` = 1 register after the storage).
:class:`spikegate.model.core.NetworkCore` counts that register in ``LAYER_OVERHEAD``.

Fenced (``fenced=True``, the inflight schedule): the head register loads only words stored before
the fence; a ``seal`` cycle moves the fence to the end of the storage (before that cycle's write),
and the head already loads against the new fence in that cycle.

Spike words (``word_lanes=P``): the payload's top P bits are a spike word, and an accepted word
with none of them set is not stored (the gateware writes it to the free row, unqueued).
"""
from __future__ import annotations

from collections import deque

from .layer import ceil_log2

__all__ = ["WordQueue", "queue_capacity"]


def queue_capacity(depth: int) -> int:
    """Words a queue asked to hold ``depth`` stores: a power of two, so its pointers wrap by overflow."""
    return 1 << ceil_log2(depth)


class WordQueue:
    """Storage of ``capacity`` words (``depth`` rounded up to a power of two) plus the head register."""

    def __init__(self, width: int, depth: int, *, fenced: bool = False, word_lanes: int = 0):
        for name, value in (("width", width), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"WordQueue {name} must be an integer >= 1, got {value!r}")
        if type(word_lanes) is not int or not 0 <= word_lanes <= width:
            raise ValueError(f"WordQueue word_lanes={word_lanes!r} is not valid; valid: an integer from 0 (no "
                             f"spike word) to {width} (the payload's width)")
        self.width, self.depth = width, depth
        # Spike words in the top word_lanes bits: an accepted word with none of them set is dropped.
        self._word_shift = width - word_lanes if word_lanes else width
        self.capacity = queue_capacity(depth)
        self._stored: deque[int] = deque()
        self._head: int | None = None
        self.fenced = fenced
        self._visible = 0  # fenced: the stored words before the fence

    @property
    def w_ready(self) -> bool:
        return len(self._stored) < self.capacity

    @property
    def r_valid(self) -> bool:
        return self._head is not None

    @property
    def r_payload(self) -> int | None:
        """The head word, or None when ``r_valid`` is low (the gateware's payload is then stale)."""
        return self._head

    def clock(self, w_valid: bool, w_payload: int, r_ready: bool, seal: bool = False) -> None:
        """One clock edge with these inputs; a write while full is ignored, as is ``r_ready`` with no head.
        ``seal`` (fenced queues only) moves the fence first."""
        accept = w_valid and self.w_ready
        if seal or not self.fenced:
            self._visible = len(self._stored)
        if self._head is None or r_ready:
            self._head = self._stored.popleft() if self._visible else None
            self._visible -= self._head is not None
        word = int(w_payload) & ((1 << self.width) - 1)
        if accept and (self._word_shift == self.width or word >> self._word_shift):
            self._stored.append(word)
