"""Twin of :class:`spikegate.hdl.core.NetworkCore`: the whole accelerator, cycle count included.

Its hardware parameters are a :class:`~spikegate.model.hardware.HardwareConfig`, the same object
the gateware generator is given; its :meth:`~spikegate.model.hardware.HardwareConfig.geometry`
validates them against the network and derives every width.

Cycle count of one run (from the cycle after ``start`` to the cycle ``done`` rises), from the
layer-step costs ``c_l(t) = LayerGeometry.cycles(...)`` of layer l at step t
(:meth:`spikegate.model.layer.LayerGeometry.cycles`, the one per-layer term;
``(E_l(t) + R_l(t)) * G_l + G_l + LAYER_OVERHEAD + C_l + W_l + L_l(t)`` for a dense layer, with
G_l = ceil(n_l / P_l), E_l(t) the input events of layer l at step t (the sample's spikes for
l = 0, layer l-1's output spikes otherwise), R_l(t) layer l's own spikes of step t-1 if it is
recurrent, C_l = CURRENT_STAGES for a CUBA layer, W_l a winner-take-all pass, L_l(t) stage 5 with
learning on; a conv2d layer's term is in model.conv_layer), composed by the schedule
(``HardwareConfig.schedule``)::

    sequential:  cycles = RUN_OVERHEAD + sum_t [ STEP_OVERHEAD + sum_l c_l(t) ]
    inflight:    cycles = RUN_OVERHEAD + sum_{w=0}^{T+L-2} [ WAVE_OVERHEAD + max_{l: 0 <= w-l < T} c_l(w-l) ]

In a wave of the inflight schedule every layer with a step to do starts in the same cycle and the
wave ends when the slowest is done (:func:`schedule_cycles`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv import refuse_conv
from .hardware import DEFAULT_MEMORY_BUDGET, MAX_EVENTS, MAX_LANES, SCHEDULES, HardwareConfig
from .conv_layer import hardware_rows_of, input_addresses, layer_cores
from .layer import LAYER_OVERHEAD, LayerCore
from .learning import check_reward
from .network import Network
from .protocol import CfgTarget, value_range

__all__ = ["NetworkCore", "RunResult", "input_words", "batch_cycles", "schedule_cycles", "as_powered_up", "HardwareConfig",
           "DEFAULT_MEMORY_BUDGET", "RUN_OVERHEAD", "STEP_OVERHEAD", "WAVE_OVERHEAD", "REWARD_OVERHEAD", "LAYER_OVERHEAD", "MAX_LANES",
           "MAX_EVENTS", "SCHEDULES", "weight_cfg_words"]

# The controller's step-boundary cycle (checks whether another step is buffered).
STEP_OVERHEAD = 1
# The controller's wave-boundary cycle (inflight schedule): it starts every layer with a step to do.
WAVE_OVERHEAD = 1
# The final boundary check that finds no step (no wave) left.
RUN_OVERHEAD = 1
# A per-sample reward (the ``reward`` port): the controller's cycle that sees every rstdp layer idle
# again; the layers' sweeps run side by side (LearningGeometry.reward_cycles).
REWARD_OVERHEAD = 1


def schedule_cycles(costs, schedule: str = "inflight") -> np.ndarray:
    """A run's cycle count from its layer-step costs ``costs`` [L, T, ...] (``costs[l, t]`` =
    LayerGeometry.cycles of layer l at step t; trailing axes are a batch), composed as
    ``schedule`` runs them (module docstring). Returns int64 of the trailing shape."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule = {schedule!r} is not valid; valid: {', '.join(SCHEDULES)}")
    costs = np.asarray(costs, dtype=np.int64)
    L, T = costs.shape[:2]
    if T == 0:
        return np.full(costs.shape[2:], RUN_OVERHEAD, np.int64)
    if schedule == "sequential":
        return RUN_OVERHEAD + T * STEP_OVERHEAD + costs.sum(axis=(0, 1))
    # Wave w: layer l on step w - l. A layer without a step in a wave costs nothing (every real
    # layer step costs >= LAYER_OVERHEAD > 0, so 0 never wins the max).
    waves = np.zeros((L, T + L - 1) + costs.shape[2:], np.int64)
    for l in range(L):
        waves[l, l:l + T] = costs[l]
    return RUN_OVERHEAD + (T + L - 1) * WAVE_OVERHEAD + waves.max(axis=0).sum(axis=0)


def input_words(spikes: np.ndarray, first=None) -> list[tuple[int, int]]:
    """The ``load`` words of one sample [T, n_in]: (addr, end_of_step) in the order to send them.

    Each step's spiking inputs in ascending order, then one end-of-step word. ``first``: the first
    layer's LayerGeometry; a conv2d layer takes packed (row, column, channel) addresses
    (model.conv_layer.input_addresses) instead of the flat input indices.
    """
    spikes = np.asarray(spikes)
    if spikes.ndim != 2:
        raise ValueError(f"spikes must have shape [T, n_in] for one sample, got {spikes.shape}")
    conv = getattr(first, "conv", None)
    words = []
    for t in range(spikes.shape[0]):
        flat = np.flatnonzero(spikes[t])
        addrs = input_addresses(conv.in_fields, conv.spec.in_shape, flat) if conv is not None else flat
        words.extend((int(i), 0) for i in addrs)
        words.append((0, 1))
    return words


def as_powered_up(net: Network, hw: HardwareConfig) -> Network:
    """``net`` as a board built for ``hw`` holds it at power-up: SPRAM starts empty, so the layers
    whose weights ``hw`` puts in SPRAM have zero weights until the host loads them. A board top is
    built for this network (the link's digest then shows the host what it must load)."""
    rams = hw.layer_weight_ram(len(net.layers))
    return net.replace(layers=[layer.replace(weights=np.zeros_like(layer.weights)) if ram == "spram" else layer
                               for layer, ram in zip(net.layers, rams)])


def weight_cfg_words(net: Network, layers=None, hw: HardwareConfig | None = None) -> list[tuple[int, int, int, int, int]]:
    """cfg words ``(layer, CfgTarget.WEIGHT, row, col, data)`` that write every weight of the given layers
    (default: all): what a host sends to load weights kept in SPRAM, which has no initial contents.

    A dense layer after a conv layer keeps input i's weights at row ``packed(i)``, the packed address
    the conv layer sends for it (model.conv_layer.hardware_layer), which depends on the lanes: ``hw``
    (the built configuration) is then required. Its rows at addresses no input uses are not written
    (no event reads them). A conv layer's kernels are fixed at generation (refused)."""
    layers = range(len(net.layers)) if layers is None else layers
    refuse_conv([net.layers[l] for l in layers], "the cfg port")
    after_conv = [l for l in layers if l and net.layers[l - 1].conv is not None]
    rows = {}
    if after_conv:
        if hw is None:
            raise ValueError(f"layer {after_conv[0]} follows a conv layer: its weight rows are the conv layer's "
                             "packed addresses, which depend on the lanes; pass hw, the HardwareConfig built")
        geos = hw.geometry(net)
        for l in after_conv:
            prev = geos[l - 1].conv
            rows[l] = hardware_rows_of(prev.out_fields, prev.spec.out_shape)
    return [(l, CfgTarget.WEIGHT, int(rows[l][i]) if l in rows else i, j, int(net.layers[l].weights[i, j]))
            for l in layers for i in range(net.layers[l].n_in) for j in range(net.layers[l].n)]


@dataclass
class RunResult:
    """One sample's run: what the gateware's ports and monitor show afterwards."""
    spikes: list[np.ndarray]      # per layer, bool [T, n_l]
    membranes: list[np.ndarray]   # per layer, int64 [n_l], final
    refractory: list[np.ndarray]  # per layer, int64 [n_l], final
    counts: np.ndarray            # int64 [n_out] (zeros for a readout network)
    # (layer, step, base, word): in emission order (sequential schedule), or layer by layer, each
    # layer's in its emission order (inflight: layers emit at the same time; the trace's order)
    mon: list[tuple[int, int, int, int]]
    cycles: int

    def mismatch(self, other: "RunResult", *, cycles: bool = True) -> str | None:
        """The first difference from ``other`` as a message, or None when they agree bit for bit."""
        for l, (a, b) in enumerate(zip(self.spikes, other.spikes)):
            if a.shape != b.shape or not np.array_equal(a, b):
                t, j = np.argwhere(a != b)[0] if a.shape == b.shape else (None, None)
                return f"layer {l} spikes differ (first at step {t}, neuron {j})"
        for name in ("membranes", "refractory"):
            for l, (a, b) in enumerate(zip(getattr(self, name), getattr(other, name))):
                if not np.array_equal(a, b):
                    return f"layer {l} final {name} differ: {a.tolist()} vs {b.tolist()}"
        if len(self.spikes) != len(other.spikes):
            return f"{len(self.spikes)} vs {len(other.spikes)} layers"
        if not np.array_equal(self.counts, other.counts):
            return f"spike counts differ: {self.counts.tolist()} vs {other.counts.tolist()}"
        if self.mon is not None and other.mon is not None and self.mon != other.mon:
            return f"mon words differ: {self.mon[:8]}... vs {other.mon[:8]}..."
        if cycles and min(self.cycles, other.cycles) >= 0 and self.cycles != other.cycles:
            return f"cycles differ: {self.cycles} vs {other.cycles}"
        return None

    @classmethod
    def from_simulation(cls, net: Network, result, b: int) -> "RunResult":
        """Sample ``b`` of a :func:`spikegate.model.simulate.simulate` result, for comparison
        (no mon words or cycle count: the contract does not define them)."""
        spikes = [s[b] for s in result.spikes]
        counts = (np.zeros(net.n_outputs, np.int64) if net.readout
                  else spikes[-1].sum(axis=0, dtype=np.int64))
        return cls(spikes=spikes, membranes=[v[b] for v in result.membranes],
                   refractory=[r[b] for r in result.refractory], counts=counts, mon=None, cycles=-1)


def batch_cycles(net: Network, lanes, input_spikes: np.ndarray, result, *, schedule: str = "inflight",
                 registered_reads: bool = False) -> np.ndarray:
    """The cycle formula for a whole batch at once, int64 [batch].

    ``result`` is ``model.simulate(net, input_spikes)``: the formula only needs how many events
    each layer saw at each step, so this costs one vectorised pass instead of a twin run per sample.
    ``schedule`` and ``registered_reads`` are those of the :class:`HardwareConfig`.
    """
    geometry = HardwareConfig(lanes=lanes, schedule=schedule, registered_reads=registered_reads).geometry(net)
    events = [np.asarray(input_spikes, bool)] + result.spikes[:-1]
    B, T = events[0].shape[:2]
    costs = np.zeros((len(geometry), T, B), np.int64)
    for l, (geo, ev, own) in enumerate(zip(geometry, events, result.spikes)):
        if geo.conv is not None:  # an event costs the positions it reaches (model.conv_layer)
            integration = ev.reshape(B, T, -1).astype(np.int64) @ geo.conv.event_cost()
        else:
            E = ev.sum(axis=2, dtype=np.int64)
            if geo.recurrent:  # the layer's own spikes of steps 0..T-2 are replayed at steps 1..T-1
                E[:, 1:] += own[:, :-1].sum(axis=2, dtype=np.int64)
            integration = E * geo.groups
        step = geo.groups + geo.drain_stages
        if geo.learning is not None:  # a winner-take-all layer's WTA pass (inference: learning off)
            step += geo.learning.wta_cycles()
        costs[l] = (integration + step).T
        if T:  # a delayed layer clears its slots in its first step (LayerGeometry.clear_cycles)
            costs[l, 0] += geo.clear_cycles
    return schedule_cycles(costs, schedule)


class NetworkCore:
    """The accelerator's behaviour, state and cycle count, bit for bit and cycle for cycle."""

    def __init__(self, net: Network, hw: HardwareConfig = HardwareConfig()):
        if not isinstance(hw, HardwareConfig):
            raise TypeError(f"hw must be a HardwareConfig, got {type(hw).__name__}")
        self.geometry = hw.geometry(net)
        self.net, self.hw = net, hw
        self.layers = layer_cores(net.layers, self.geometry)

    @property
    def lanes(self) -> list[int]:
        return [g.lanes for g in self.geometry]

    @property
    def max_events(self) -> int:
        return self.hw.max_events

    # --- run-time configuration (the cfg port) ---------------------------------------------

    def cfg(self, layer: int, target: int, row: int, col: int, data: int) -> bool:
        """Apply one cfg word; returns False (and changes nothing) where the gateware raises cfg_error."""
        if not 0 <= layer < len(self.layers):
            return False
        core = self.layers[layer]
        lyr, geo = core.layer, core.geo
        if target not in tuple(CfgTarget):
            return False
        lo, hi = value_range(geo, target)
        if not lo <= data <= hi:
            return False
        if geo.conv is not None and target != CfgTarget.THRESHOLD:
            return False  # a conv layer's kernels and biases are fixed at generation
        if target == CfgTarget.WEIGHT:
            if not (0 <= row < geo.n_in and 0 <= col < geo.n):
                return False
            core.synapses.write_weight(row, col, data)
        elif target == CfgTarget.BIAS:
            if not 0 <= col < geo.n:
                return False
            core.bias.reshape(-1)[col] = data
        else:
            if lyr.readout:
                return False
            core.theta = data
        return True

    def param(self, layer: int, target: int, row: int, col: int) -> int:
        """The value NetworkCore's idle-time ``param_addr``/``param_data`` port reads (CHECKSUM)."""
        core = self.layers[layer]
        if core.geo.conv is not None and target != CfgTarget.THRESHOLD:
            lanes = core.geo.lanes
            return int(core.kernel[row, col // lanes, col % lanes] if target == CfgTarget.WEIGHT
                       else core.bias.reshape(-1)[col])
        if target == CfgTarget.WEIGHT:
            lanes = core.synapses.lanes
            return int(core.synapses.weights[row, col // lanes, col % lanes])
        if target == CfgTarget.BIAS:
            return int(core.bias.reshape(-1)[col])
        return int(core.theta)

    def learn_state(self, layer: int, kind: int, row: int, col: int) -> int:
        """What the gateware's idle-time ``learn_state_addr``/``learn_state_data`` read answers
        (model.learning_engine.LearnState; 0 for a layer that is not plastic)."""
        learning = self.layers[layer].learning if 0 <= layer < len(self.layers) else None
        return 0 if learning is None else learning.state(kind, row, col)

    # --- a run ---------------------------------------------------------------------------------

    def cycles(self, spikes: np.ndarray) -> int:
        """Exact cycle count of a run on one sample [T, n_in] (it runs the sample: the cycle count
        depends on every layer's spikes)."""
        return self.run(spikes).cycles

    def reward(self, reward: int) -> int:
        """A per-sample reward (the gateware's ``reward`` stream, while idle): every rstdp layer's
        weights change by ``(reward * E) >>> reward_shift`` from the eligibility the last run left
        (model.learning.Learner.reward). Returns the cycles the ``cycles`` port shows afterwards:
        REWARD_OVERHEAD + the longest rstdp layer's sweep (none when ``reward`` is 0)."""
        reward = check_reward("reward", reward)
        cycles = REWARD_OVERHEAD
        for c in self.layers:
            lg = c.geo.learning
            if lg is not None and lg.elig_bits and reward:
                c.learning.reward(c.synapses.weights, reward)
                cycles = max(cycles, REWARD_OVERHEAD + lg.reward_cycles(c.geo))
        return cycles

    def run(self, spikes: np.ndarray, learn: bool = False, reward: int = 0) -> RunResult:
        """One sample. ``learn`` (the gateware's ``learn`` input) runs stage 5 of every plastic
        layer: its weights change and persist into the next run. ``reward`` (the gateware's
        ``step_reward``, held for the run): R(t) of every step for the rstdp layers."""
        reward = check_reward("reward", reward)
        spikes = np.asarray(spikes)
        if spikes.ndim != 2 or spikes.shape[1] != self.net.n_inputs:
            raise ValueError(f"spikes must have shape [T, {self.net.n_inputs}] for one sample, got {spikes.shape}")
        if spikes.dtype != bool:
            if spikes.size and (spikes.min() < 0 or spikes.max() > 1):
                raise ValueError("spikes must be 0/1")
            spikes = spikes.astype(bool)
        T = spikes.shape[0]
        if T * 1 + int(spikes.sum()) > self.max_events:
            raise ValueError(f"the sample needs {T + int(spikes.sum())} input words (T = {T} end-of-step words "
                             f"plus {int(spikes.sum())} spikes) but max_events = {self.max_events}")
        for c in self.layers:
            c.reset_state()
        out = [np.zeros((T, c.geo.n), dtype=bool) for c in self.layers]
        mon = []
        costs = np.zeros((len(self.layers), T), np.int64)
        for t in range(T):
            flat = np.flatnonzero(spikes[t])
            first = self.geometry[0].conv
            # events: the addresses the layer's gateware receives; flat: the contract's indices.
            events = (input_addresses(first.in_fields, first.spec.in_shape, flat) if first is not None
                      else list(flat))
            for l, c in enumerate(self.layers):
                recurrent = c.recurrent_events if c.geo.conv is None else 0
                words = c.step(events, learn, reward) if c.geo.learning is not None else c.step(events)
                costs[l, t] = (c.geo.cycles(flat) if c.geo.conv is not None
                               else c.geo.cycles(len(events), recurrent, words=len(words), learn=learn, first=t == 0))
                for g, w in words:
                    mon.append((l, t, g * c.geo.lanes, w))
                events = LayerCore.events_of(words, c.geo.lanes)
                flat = c.flat_events(events) if c.geo.conv is not None else events
                out[l][t, flat] = True
        if self.hw.schedule == "inflight":
            # Layers emit at the same time; each layer's words stay in its own order (trace banks).
            mon.sort(key=lambda word: word[0])
        last = self.layers[-1]
        return RunResult(spikes=out,
                         membranes=[c.neurons(c.v) for c in self.layers],
                         refractory=[c.neurons(c.r) for c in self.layers],
                         counts=last.neurons(last.count), mon=mon,
                         cycles=int(schedule_cycles(costs, self.hw.schedule)))
