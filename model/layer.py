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
from .delay import DELAY_STAGES, DelayedSynapseArray, slot_stride
from .learning_engine import LearningEngine, has_offsets, is_rstdp
from .lif import neuron_update
from .network import Layer
from .neuron import LIFNeuronUnit
from .recurrence import RecurrentEvents, recurrent_base, synapse_layer
from .synapse import SynapseArray

__all__ = ["LayerCore", "LayerGeometry", "LearningGeometry", "LAYER_OVERHEAD", "LEARN_DRAIN", "ELIG_DRAIN", "SPRAM_LEARN_WRITE_DELAY", "WTA_DRAIN", "LOGIC_GROUPS", "GROUP_MEMORIES", "NEURON_STAGES", "ISSUE_STAGES", "WORD_FIFO_STAGES", "ceil_log2", "bits_for"]

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
# Stage 5's last weight write lands this many cycles after its issue (issue register, memory
# read, one register of the update arithmetic): the learning layer's done waits for it.
LEARN_DRAIN = ISSUE_STAGES + 2
# rstdp: the eligibility sweep registers the new E before the reward's multiply (R * E), so its
# weight write lands one cycle later than stage 5's: its done waits this much after the last issue.
ELIG_DRAIN = LEARN_DRAIN + 1
# Plastic weights in SPRAM (one port: a cycle reads or writes): the synapse array registers a
# learning write once more (it lands 4 cycles after its issue, the read 1 after), and the engine
# leaves one cycle between two weight issues of a pass. Issues are then always an even number of
# cycles apart and a write (issue + 4) never meets a read (issue' + 1); the drain waits one more.
SPRAM_LEARN_WRITE_DELAY = 1
# The WTA pass writes a group the cycle after it reads it, and its done waits one more cycle for
# the spike-word FIFO's registered output, like the sweep's drain.
WTA_DRAIN = 1 + WORD_FIFO_STAGES
# With registered reads (the ECP5) a layer of at most this many groups keeps its GROUP_MEMORIES in
# flip-flops (LayerGeometry.groups_in_logic): a block of G <= 2 words of P lanes is nearly empty, and
# its 5.6 ns clock to data plus the route to the lanes was the 64-lane ULX3S's critical path (docs/timing.md).
LOGIC_GROUPS = 2
# A dense layer's memories of one word per neuron group (LayerGeometry.memory_bits' names).
GROUP_MEMORIES = ("accumulators", "membranes", "bias", "refractory", "counts")


def ceil_log2(x: int) -> int:
    return (int(x) - 1).bit_length() if x > 1 else 0


def bits_for(x: int) -> int:
    """Bits of an unsigned register that holds 0..x."""
    return max(1, int(x).bit_length())


@dataclass(frozen=True)
class LearningGeometry:
    """Stage 5 of a plastic layer's step in the gateware (hdl.learning_engine), learning on.

    ``depress``: a_minus > 0 (otherwise every depression term is 0 and the event pass only bumps
    the pre traces); ``word_pass``: some weight can change (a_plus, ltp_offset, weight_decay or
    a_minus non-zero), so every non-zero spike word gets its pass over the inputs: potentiation,
    and the depression of its own group's synapses, whose Q' only the spike-word memory keeps."""
    trace_bits: int
    depress: bool
    word_pass: bool
    offset_bits: int = 0  # 0: no threshold offsets (see model.learning_engine.has_offsets)
    wta_issues: int = 0   # winner-take-all: groups the WTA pass visits (1 for k = 1 without inhibition, else G); 0: off
    elig_bits: int = 0    # rstdp: the signed eligibility width; 0: rule "stdp"

    @classmethod
    def of(cls, layer, groups: int) -> "LearningGeometry":
        p = layer.plasticity
        elig = is_rstdp(p)
        return cls(wta_issues=(groups if p.inhibition != "none" or p.wta > 1 else 1) if p.wta else 0,
                   trace_bits=p.trace_bits,
                   depress=p.a_minus > 0 and not elig,
                   word_pass=bool(p.a_plus or p.ltp_offset or p.weight_decay or p.a_minus) and not elig,
                   offset_bits=bits_for(p.offset_max(layer)) if has_offsets(p) else 0,
                   elig_bits=p.elig_bits if elig else 0)

    def wta_cycles(self) -> int:
        """The WTA pass after the sweep (learning on or off): one group a cycle, then WTA_DRAIN."""
        return self.wta_issues + WTA_DRAIN if self.wta_issues else 0

    def cycles(self, geo: "LayerGeometry", events: int, words: int) -> int:
        """WALK (decay every pre trace: n_in), per input event its pre-trace bump and, with depression,
        one weight word per group (1 + G, else 1 + 1), per non-zero spike word one weight word per
        input (1 + n_in, when ``word_pass``), then the drain until the last write. rstdp:
        after the events one idle cycle (the last pre-trace write lands) and the eligibility sweep,
        one synapse word a cycle (n_in * G), then ELIG_DRAIN.

        With the weights in SPRAM (``geo.weight_ram == "spram"``, stdp only) a pass's weight words
        are issued every other cycle (the cycle after an item's last issue is the next item's
        first, so a pass of k words takes 1 + 2k - 1 = 2k cycles: 2G per event with depression,
        2 n_in per spike word) and the drain is SPRAM_LEARN_WRITE_DELAY longer."""
        spram = geo.weight_ram == "spram"
        rmw = (lambda k: 2 * k) if spram else (lambda k: 1 + k)
        per_event = rmw(geo.groups) if self.depress else 1 + 1
        if self.elig_bits:
            return geo.n_in + events * per_event + 1 + geo.n_in * geo.groups + self.drain(geo)
        per_word = rmw(geo.n_in) if self.word_pass else 0
        return geo.n_in + events * per_event + words * per_word + self.drain(geo)

    def drain(self, geo: "LayerGeometry") -> int:
        """Cycles from stage 5's last weight issue (or its event pass) to its done: its last write."""
        if self.elig_bits:
            return ELIG_DRAIN
        return LEARN_DRAIN + (SPRAM_LEARN_WRITE_DELAY if geo.weight_ram == "spram" else 0)

    def reward_cycles(self, geo: "LayerGeometry") -> int:
        """rstdp: the layer's per-sample reward sweep (R != 0), from the cycle it starts until it is
        idle again: one synapse word a cycle, then ELIG_DRAIN. 0 for other rules."""
        return geo.n_in * geo.groups + ELIG_DRAIN if self.elig_bits else 0

    def memory_bits(self, geo: "LayerGeometry") -> dict[str, int]:
        G, P, tb = geo.groups, geo.lanes, self.trace_bits
        return {
            "pre_traces": geo.n_in * (tb + 1),          # trace and this step's spike flag
            "post_traces": G * P * tb,
            "learn_events": geo.n_in * geo.addr_bits,    # the step's input events
            "learn_words": G * (geo.group_bits + P + P * tb),  # the step's spike words and Q'
            **({"offsets": G * P * self.offset_bits} if self.offset_bits else {}),
            **({"eligibility": geo.n_in * G * P * self.elig_bits} if self.elig_bits else {}),
        }


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
    # Synaptic delays (model/delay.py): S = the layer's largest delay + 1 accumulator slots; 0: none.
    delay_slots: int = 0
    # A conv2d layer's schedule (model.conv_layer.ConvGeometry); None: dense. Where it is set, the
    # sizes and the cycle term below are the conv layer's.
    conv: object = None
    # Plastic layers (stage 5, model.learning_engine): None, or the layer's LearningGeometry.
    learning: "LearningGeometry | None" = None
    # HardwareConfig.registered_reads: 0, 1 or 2 registers behind each read (model.hardware.read_stages_for).
    read_stages: int = 0

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
        """Cycles a layer step costs beyond its events and the sweep's G: LAYER_OVERHEAD, + CURRENT_STAGES
        if CUBA, + DELAY_STAGES if delayed, + read_stages (the register behind the memories' reads,
        before the neuron stages)."""
        return (LAYER_OVERHEAD + self.read_stages + (CURRENT_STAGES if self.current else 0)
                + (DELAY_STAGES if self.delay_slots else 0))

    @property
    def delay_bits(self) -> int:
        """A delay-memory lane: D up to the largest delay (model/delay.py), 0 without delays."""
        return bits_for(self.delay_slots - 1) if self.delay_slots else 0

    @property
    def slot_words(self) -> int:
        """A delayed layer's accumulator words per lane: (S - 1) * 2^ceil(log2 G) + G (model/delay.py)."""
        return (self.delay_slots - 1) * slot_stride(self.groups) + self.groups if self.delay_slots else 0

    @property
    def clear_cycles(self) -> int:
        """The delayed layer's slot clear in its first step of a run: slot_words (model/delay.py), else 0."""
        return self.slot_words

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
    def groups_in_logic(self) -> bool:
        """Whether GROUP_MEMORIES are flip-flops, not block RAM (same timing and contents): a dense
        layer without delays, with registered reads and at most LOGIC_GROUPS groups."""
        return (bool(self.read_stages) and self.conv is None and not self.delay_slots
                and self.groups <= LOGIC_GROUPS)

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
        if self.delay_slots:
            mem["accumulators"] = self.slot_words * P * self.acc_bits
            mem["delays"] = self.rows * G * P * self.delay_bits
        if self.learning is not None:
            mem.update(self.learning.memory_bits(self))
        return mem

    def cycles(self, events, recurrent_events: int = 0, *, words: int = 0, learn: bool = False,
               first: bool = False) -> int:
        """One layer step: ``events`` is the step's input event count (dense), or for a conv layer
        the events' flat input indices (an event costs the positions it reaches, see
        model.conv_layer); E_rec recurrent events (the layer's own spikes of the step before) cost
        G cycles each like feed-forward ones; then the sweep and the drain (+ CURRENT_STAGES for a
        CUBA layer, + DELAY_STAGES for a delayed one, whose ``first`` step of a run also clears its
        slots: + clear_cycles); a winner-take-all layer's pass, and with ``learn`` on a plastic layer
        stage 5 for the step's ``words`` non-zero output spike words (LearningGeometry.cycles)."""
        if self.conv is not None:
            return self.conv.cycles(events)
        base = (events + recurrent_events) * self.groups + self.groups + self.drain_stages
        if first:
            base += self.clear_cycles
        if self.learning is not None:
            base += self.learning.wta_cycles()
            if learn:
                base += self.learning.cycles(self, events, words)
        return base


class LayerCore:
    """The layer's state in the gateware's group layout ([G, P] arrays) and its step."""

    def __init__(self, layer: Layer, geometry: LayerGeometry):
        self.layer, self.geo = layer, geometry
        G, P = geometry.groups, geometry.lanes
        self.synapses = (DelayedSynapseArray(layer, P) if geometry.delay_slots else
                         SynapseArray(synapse_layer(layer, P), P, zero=geometry.weight_ram == "spram"))
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
        self.learning = LearningEngine(layer, P) if geometry.learning is not None else None

    def reset_state(self) -> None:
        self.v[:] = 0
        self.r[:] = 0
        self.count[:] = 0
        self.c[:] = 0
        if self.recurrence is not None:
            self.recurrence.reset()
        if self.geo.delay_slots:
            self.synapses.reset()
        if self.learning is not None:
            self.learning.reset_sample()

    @property
    def recurrent_events(self) -> int:
        """E_rec of the coming step: the spikes of the layer's last step if it is recurrent, else 0."""
        return len(self.recurrence.rows()) if self.recurrence is not None else 0

    def step(self, events, learn: bool = False, reward: int = 0) -> list[tuple[int, int]]:
        """Integrate the step's input events, sweep, return the non-zero spike words (g, word);
        with ``learn`` on a plastic layer, then stage 5 (model.learning_engine) with the step's
        ``reward`` (rstdp)."""
        if self.geo.delay_slots:
            self.synapses.clear_if_dirty()
        if self.recurrence is not None:
            for row in self.recurrence.rows():
                self.synapses.integrate(row)
        for i in events:
            self.synapses.integrate(int(i))
        if self.geo.learning is not None and self.geo.learning.wta_issues:
            return self._step_wta(events, learn, reward)
        words = []
        for g in range(self.geo.groups):
            acc = self.synapses.take(g)
            if self.current is not None:
                self.c[g] = self.current(self.c[g], acc, self.bias[g])
                v, r, s = self.unit(self.v[g], self.r[g], self.c[g], 0, self.theta)
            else:
                theta = self.theta if self.learning is None else self.learning.thresholds(self.theta, g)
                v, r, s = self.unit(self.v[g], self.r[g], acc, self.bias[g], theta)
            s = s & self.lane_mask[g]
            self.v[g], self.r[g] = v, r
            self.count[g] += s
            word = int(sum(1 << k for k in range(self.geo.lanes) if s[k]))
            if word:
                words.append((g, word))
        if self.recurrence is not None:
            self.recurrence.store(words)
        if self.geo.delay_slots:
            self.synapses.advance()
        if learn and self.learning is not None:
            self.learning.step(self.synapses.weights, events, words, reward)
        return words

    def _step_wta(self, events, learn: bool, reward: int) -> list[tuple[int, int]]:
        """A winner-take-all layer: the sweep updates every neuron without firing and finds the
        winner, then the WTA pass fires it and inhibits the others: together the contract's
        neuron update with competition (model.lif.neuron_update)."""
        G, P, n = self.geo.groups, self.geo.lanes, self.layer.n
        acc = np.stack([self.synapses.take(g) for g in range(G)]).reshape(-1)[:n]
        theta = np.stack([np.broadcast_to(self.learning.thresholds(self.theta, g), (P,)) for g in range(G)])
        v, r, s = neuron_update(self.neurons(self.v), self.neurons(self.r), self.neurons(self.bias) + acc,
                                theta.reshape(-1)[:n], self.layer, self.layer.plasticity)
        pad = np.zeros(G * P - n, np.int64)
        self.v[:] = np.concatenate([v, pad]).reshape(G, P)
        self.r[:] = np.concatenate([r, pad]).reshape(G, P)
        fired = np.concatenate([s, pad.astype(bool)]).reshape(G, P)
        self.count += fired
        words = [(g, int(sum(1 << k for k in range(P) if fired[g, k]))) for g in range(G) if fired[g].any()]
        if learn:
            self.learning.step(self.synapses.weights, events, words, reward)
        return words

    @staticmethod
    def events_of(words, lanes: int) -> list[int]:
        """Serialise spike words into the next layer's input events, in the hardware's order."""
        return [g * lanes + k for g, w in words for k in range(lanes) if (w >> k) & 1]

    def neurons(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(-1)[:self.layer.n].copy()
