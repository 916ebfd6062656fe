"""Twin of :class:`spikegate.hdl.layer.LayerCore`: one event-driven, time-multiplexed layer.

A layer step: every input event (the address of an input that spiked) costs G = ceil(n / P)
integration cycles, one per P-neuron group; then one sweep over the G groups applies bias,
leak, fire and reset (:class:`~spikegate.model.neuron.LIFNeuronUnit`) and emits the non-zero
P-lane spike words. ``LAYER_OVERHEAD`` cycles per layer step come on top (see
:mod:`spikegate.hdl.layer` for where they go).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .current import CURRENT_STAGES, CurrentUnit
from .network import Layer
from .neuron import LIFNeuronUnit
from .recurrence import RecurrentEvents, recurrent_base, synapse_layer
from .synapse import SynapseArray

__all__ = ["LayerCore", "LayerGeometry", "LAYER_OVERHEAD", "NEURON_STAGES", "ISSUE_STAGES", "WORD_FIFO_STAGES", "ceil_log2", "bits_for"]

# Register stages of the neuron update (leak and drive, sum, saturation, fire and reset): the
# sweep writes group g back NEURON_STAGES cycles after its memories answer.
NEURON_STAGES = 4
# The register in front of the memories: an op's weight address i * G + g (and a sweep's group)
# is registered before it addresses the block RAMs.
ISSUE_STAGES = 1
# The spike-word FIFO between layers has a registered output: a word is readable 2 cycles after
# it is written, so a layer's done waits one cycle after its last write-back.
WORD_FIFO_STAGES = 1
# Per layer step: one cycle in which the idle layer sees its start, one in which integration
# sees the end of the step's events, and the pipeline drain (issue register, memory read,
# neuron stages, FIFO output register). The drain's last cycle is the next layer's start
# cycle, so it is counted there: E*G + G + 8 per layer step.
LAYER_OVERHEAD = 2 + ISSUE_STAGES + NEURON_STAGES + WORD_FIFO_STAGES


def ceil_log2(x: int) -> int:
    return (int(x) - 1).bit_length() if x > 1 else 0


def bits_for(x: int) -> int:
    """Bits of an unsigned register that holds 0..x."""
    return max(1, int(x).bit_length())


@dataclass(frozen=True)
class LayerGeometry:
    """Widths and sizes of one layer's gateware, derived from the layer and its lane count."""
    n_in: int
    n: int
    lanes: int
    weight_bits: int
    membrane_bits: int
    refractory: int
    count_bits: int  # 0: no spike counters (hidden or readout layer)
    weight_ram: str = "block"  # "spram": iCE40 SB_SPRAM256KA, no initial contents (load via cfg)
    # Temporal layers (model/temporal.py) with gateware: a synaptic current (CUBA), recurrence.
    current: bool = False
    recurrent: bool = False
    # A conv2d layer's schedule (model.conv_layer.ConvGeometry); None: dense. Where it is set, the
    # sizes and the cycle term below are the conv layer's.
    conv: object = None

    @property
    def rows(self) -> int:
        """Weight-memory rows: n_in, plus the recurrent region (model/recurrence.py) if any."""
        return recurrent_base(self.n_in, self.lanes) + self.n if self.recurrent else self.n_in

    @property
    def rec_word_bits(self) -> int:
        """A recurrent word-buffer entry: the row group of the word's first neuron, and the word."""
        return bits_for(self.rows // self.lanes) + self.lanes

    @property
    def drain_stages(self) -> int:
        """Cycles a layer step costs beyond its events and the sweep's G: LAYER_OVERHEAD, + CURRENT_STAGES if CUBA."""
        return LAYER_OVERHEAD + (CURRENT_STAGES if self.current else 0)

    @property
    def spram_pack(self) -> int:
        """Weight words per 16-bit SPRAM word: a word of 4 or 8 bits (P * weight_bits) shares an
        SPRAM word with its neighbours (word a in slot a mod k of SPRAM word a // k), so 784 x 128
        weights of 8 bits at 1 lane take 4 tiles, not 7; wider words take whole SPRAM words."""
        width = self.lanes * self.weight_bits
        return 16 // width if width < 16 and 16 % width == 0 else 1

    @property
    def spram_tiles(self) -> int:
        """SB_SPRAM256KA tiles (16 bits x 16384 words) the weight memory takes in "spram" mode."""
        if self.weight_ram != "spram" or self.conv is not None:
            return 0
        words = -(-(self.n_in * self.groups) // self.spram_pack)
        return -(-self.lanes * self.weight_bits // 16) * -(-words // 16384)

    @property
    def groups(self) -> int:
        if self.conv is not None:
            return self.conv.groups
        return -(-self.n // self.lanes)

    @property
    def addr_bits(self) -> int:
        if self.conv is not None:
            return self.conv.addr_bits
        return max(1, ceil_log2(self.n_in))

    @property
    def group_bits(self) -> int:
        if self.conv is not None:
            return self.conv.group_bits
        return max(1, ceil_log2(self.groups))

    @property
    def acc_bits(self) -> int:
        if self.conv is not None:
            return self.conv.acc_bits(self.weight_bits)
        # |sum_i W[i, j] s_i| <= rows * 2^(wb-1): the exact sum never wraps.
        return self.weight_bits + ceil_log2(self.rows + 1)

    @property
    def refr_bits(self) -> int:
        return bits_for(self.refractory)

    def memory_bits(self) -> dict[str, int]:
        if self.conv is not None:
            return self.conv.memory_bits(self.weight_bits, self.membrane_bits,
                                         self.refr_bits if self.refractory else 0, self.count_bits)
        G, P = self.groups, self.lanes
        mem = {
            "weights": self.rows * G * P * self.weight_bits,
            "accumulators": G * P * self.acc_bits,
            "membranes": G * P * self.membrane_bits,
            "bias": G * P * self.membrane_bits,
        }
        if self.refractory:
            mem["refractory"] = G * P * self.refr_bits
        if self.count_bits:
            mem["counts"] = G * P * self.count_bits
        if self.current:
            mem["currents"] = G * P * self.membrane_bits
        if self.recurrent:
            mem["recurrent_words"] = G * self.rec_word_bits
        return mem

    def cycles(self, events, recurrent_events: int = 0) -> int:
        """One layer step: ``events`` is the step's input event count (dense), or for a conv layer
        the events' flat input indices (an event costs the positions it reaches, see
        model.conv_layer); E_rec recurrent events (the layer's own spikes of the step before) cost
        G cycles each like feed-forward ones; then the sweep and the drain (+ CURRENT_STAGES for a
        CUBA layer)."""
        if self.conv is not None:
            return self.conv.cycles(events)
        return (events + recurrent_events) * self.groups + self.groups + self.drain_stages


class LayerCore:
    """The layer's state in the gateware's group layout ([G, P] arrays) and its step."""

    def __init__(self, layer: Layer, geometry: LayerGeometry):
        self.layer, self.geo = layer, geometry
        G, P = geometry.groups, geometry.lanes
        self.synapses = SynapseArray(synapse_layer(layer, P), P, zero=geometry.weight_ram == "spram")
        self.unit = LIFNeuronUnit.from_layer(layer)
        self.bias = np.zeros((G, P), dtype=np.int64)
        self.bias.reshape(-1)[:layer.n] = layer.bias
        self.theta = layer.threshold
        self.v = np.zeros((G, P), dtype=np.int64)
        self.r = np.zeros((G, P), dtype=np.int64)
        self.count = np.zeros((G, P), dtype=np.int64)
        # Lanes past the last neuron exist in the last group but never fire.
        self.lane_mask = (np.arange(G * P) < layer.n).reshape(G, P)
        # Temporal hooks (model/current.py, model/recurrence.py); None on other layers.
        self.current = CurrentUnit.from_layer(layer) if geometry.current else None
        self.c = np.zeros((G, P), dtype=np.int64)
        self.recurrence = RecurrentEvents(layer.n_in, P) if geometry.recurrent else None

    def reset_state(self) -> None:
        self.v[:] = 0
        self.r[:] = 0
        self.count[:] = 0
        self.c[:] = 0
        if self.recurrence is not None:
            self.recurrence.reset()

    @property
    def recurrent_events(self) -> int:
        """E_rec of the coming step: the spikes of the layer's last step if it is recurrent, else 0."""
        return len(self.recurrence.rows()) if self.recurrence is not None else 0

    def step(self, events) -> list[tuple[int, int]]:
        """Integrate the step's input events, sweep, return the non-zero spike words (g, word)."""
        if self.recurrence is not None:
            for row in self.recurrence.rows():
                self.synapses.integrate(row)
        for i in events:
            self.synapses.integrate(int(i))
        words = []
        for g in range(self.geo.groups):
            acc = self.synapses.take(g)
            if self.current is not None:
                self.c[g] = self.current(self.c[g], acc, self.bias[g])
                v, r, s = self.unit(self.v[g], self.r[g], self.c[g], 0, self.theta)
            else:
                v, r, s = self.unit(self.v[g], self.r[g], acc, self.bias[g], self.theta)
            s = s & self.lane_mask[g]
            self.v[g], self.r[g] = v, r
            self.count[g] += s
            word = int(sum(1 << k for k in range(self.geo.lanes) if s[k]))
            if word:
                words.append((g, word))
        if self.recurrence is not None:
            self.recurrence.store(words)
        return words

    @staticmethod
    def events_of(words, lanes: int) -> list[int]:
        """Serialise spike words into the next layer's input events, in the hardware's order."""
        return [g * lanes + k for g, w in words for k in range(lanes) if (w >> k) & 1]

    def neurons(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(-1)[:self.layer.n].copy()
