"""Twin of :class:`spikegate.hdl.core.NetworkCore`: the whole accelerator, cycle count included.

Also the single place where hardware parameters are validated and widths derived
(:func:`check_hardware`): the gateware generator calls it before building anything, so an
impossible configuration fails with a clear message and no HDL.

Cycle formula of one run (from the cycle after ``start`` to the cycle ``done`` rises)::

    cycles = RUN_OVERHEAD + sum_t [ STEP_OVERHEAD + sum_l ( E_l(t) * G_l + G_l + LAYER_OVERHEAD ) ]

with G_l = ceil(n_l / P_l) and E_l(t) the input events of layer l at step t (the sample's spikes
for l = 0, layer l-1's output spikes otherwise).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer import LAYER_OVERHEAD, LayerCore, LayerGeometry, bits_for
from .network import Network
from .protocol import CfgTarget, value_range

__all__ = ["NetworkCore", "RunResult", "check_hardware", "input_words", "batch_cycles", "DEFAULT_MEMORY_BUDGET",
           "RUN_OVERHEAD", "STEP_OVERHEAD", "LAYER_OVERHEAD", "MAX_LANES", "weight_cfg_words"]

# The controller's step-boundary cycle (checks whether another step is buffered).
STEP_OVERHEAD = 1
# The final boundary check that finds no step left.
RUN_OVERHEAD = 1
MAX_LANES = 64
MAX_EVENTS = 1 << 20
WEIGHT_RAMS = ("block", "spram")
SPRAM_TILES = 4  # SB_SPRAM256KA on an iCE40 UP5K
# 4 Mibit: more than any supported board's block RAM (UP5K: 120 kbit EBR + 1 Mbit SPRAM;
# ECP5-85: 3.7 Mbit), so only impossible networks are refused by default.
DEFAULT_MEMORY_BUDGET = 4 << 20


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _per_layer(name: str, value, L: int, is_item) -> list:
    if is_item(value):
        return [value] * L
    if isinstance(value, (list, tuple)):
        if len(value) != L:
            raise ValueError(f"{name} = {list(value)} has {len(value)} entries but the network has {L} "
                             f"layers; give one per layer or a single value")
        return list(value)
    raise TypeError(f"{name} must be a single value or a list with one per layer, got {value!r}")


def check_hardware(net: Network, lanes=4, max_events: int = 4096, trace_depth: int = 0,
                   memory_budget: int = DEFAULT_MEMORY_BUDGET, weight_ram="block") -> list[LayerGeometry]:
    """Validate hardware parameters for ``net``; return the per-layer geometry.

    ``weight_ram`` (one value or one per layer): ``"block"`` (block RAM, weights baked in as
    initial contents) or ``"spram"`` (iCE40 UltraPlus SB_SPRAM256KA; these have no initial
    contents, so the weights start at zero and the host writes them through ``cfg``).

    Raises ``TypeError``/``ValueError`` naming the parameter, its value and what is valid.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a spikegate Network, got {type(net).__name__}")
    L = len(net.layers)
    if _is_int(lanes):
        lanes_l = [int(lanes)] * L
    elif isinstance(lanes, (list, tuple)):
        if len(lanes) != L:
            raise ValueError(f"lanes = {list(lanes)} has {len(lanes)} entries but the network has {L} "
                             f"layers; give one lane count per layer or a single integer")
        lanes_l = list(lanes)
    else:
        raise TypeError(f"lanes must be an integer or a list of integers, got {lanes!r}")
    for l, P in enumerate(lanes_l):
        if not _is_int(P):
            raise TypeError(f"lanes[{l}] must be an integer, got {P!r}")
        P = int(P)
        if P < 1 or P > MAX_LANES or P & (P - 1):
            raise ValueError(f"lanes = {P} (layer {l}) is not valid; valid: a power of two from 1 to {MAX_LANES}")
        lanes_l[l] = P
    rams = _per_layer("weight_ram", weight_ram, L, lambda v: isinstance(v, str))
    for l, r in enumerate(rams):
        if r not in WEIGHT_RAMS:
            raise ValueError(f"weight_ram = {r!r} (layer {l}) is not valid; valid: {', '.join(WEIGHT_RAMS)}")
    if not _is_int(max_events):
        raise TypeError(f"max_events must be an integer, got {max_events!r}")
    if not 1 <= max_events <= MAX_EVENTS:
        raise ValueError(f"max_events = {max_events} is not valid; valid: 1 <= max_events <= {MAX_EVENTS}")
    if not _is_int(trace_depth):
        raise TypeError(f"trace_depth must be an integer, got {trace_depth!r}")
    if not 0 <= trace_depth <= MAX_EVENTS:
        raise ValueError(f"trace_depth = {trace_depth} is not valid; valid: 0 <= trace_depth <= {MAX_EVENTS}")
    if not _is_int(memory_budget) or memory_budget < 1:
        raise ValueError(f"memory_budget = {memory_budget!r} is not valid; valid: a positive number of bits")
    geos = []
    for l, (layer, P) in enumerate(zip(net.layers, lanes_l)):
        last = l == L - 1
        count_bits = bits_for(max_events) if last and not layer.readout else 0
        geo = LayerGeometry(n_in=layer.n_in, n=layer.n, lanes=P, weight_bits=layer.weight_bits,
                            membrane_bits=layer.membrane_bits, refractory=layer.refractory,
                            count_bits=count_bits, weight_ram=rams[l])
        if rams[l] == "spram" and layer.weight_bits % 4:
            raise ValueError(f"layer {l}: weight_ram = 'spram' needs weight_bits to be a multiple of 4 (the "
                             f"SPRAM write mask is per nibble), got weight_bits = {layer.weight_bits}")
        # A Layer validates these itself and is immutable; the gateware relies on them, so they are
        # checked once more here, with the same rule (protocol.value_range).
        wlo, whi = value_range(layer, CfgTarget.WEIGHT)
        if layer.weights.size and (layer.weights.min() < wlo or layer.weights.max() > whi):
            raise ValueError(f"layer {l}: weights do not fit weight_bits = {layer.weight_bits} "
                             f"(range [{wlo}, {whi}])")
        tlo, thi = value_range(layer, CfgTarget.THRESHOLD)
        if not tlo <= layer.threshold <= thi:
            raise ValueError(f"layer {l}: threshold = {layer.threshold} does not fit membrane_bits = "
                             f"{layer.membrane_bits}; valid: {tlo} <= threshold <= {thi}")
        vlo, vhi = value_range(layer, CfgTarget.BIAS)
        if layer.bias.min() < vlo or layer.bias.max() > vhi:
            raise ValueError(f"layer {l}: bias does not fit membrane_bits = {layer.membrane_bits}")
        geos.append(geo)
    tiles = sum(g.spram_tiles for g in geos)
    if tiles > SPRAM_TILES:
        raise ValueError(f"the weights in SPRAM need {tiles} SB_SPRAM256KA tiles "
                         f"({', '.join(f'layer {l}: {g.spram_tiles}' for l, g in enumerate(geos) if g.spram_tiles)}); "
                         f"an iCE40 UltraPlus has {SPRAM_TILES}")
    total = sum(sum(g.memory_bits().values()) for g in geos)
    total += max_events * (geos[0].addr_bits + 1)
    if total > memory_budget:
        detail = ", ".join(f"layer {l}: {sum(g.memory_bits().values())}" for l, g in enumerate(geos))
        raise ValueError(f"the core needs {total} bits of memory ({detail}, input buffer: "
                         f"{max_events * (geos[0].addr_bits + 1)}), more than memory_budget = "
                         f"{memory_budget} bits; use a smaller network or max_events, or raise the budget")
    return geos


def input_words(spikes: np.ndarray) -> list[tuple[int, int]]:
    """The ``load`` words of one sample [T, n_in]: (addr, end_of_step) in the order to send them.

    Each step's spiking inputs in ascending order, then one end-of-step word.
    """
    spikes = np.asarray(spikes)
    if spikes.ndim != 2:
        raise ValueError(f"spikes must have shape [T, n_in] for one sample, got {spikes.shape}")
    words = []
    for t in range(spikes.shape[0]):
        words.extend((int(i), 0) for i in np.flatnonzero(spikes[t]))
        words.append((0, 1))
    return words


def weight_cfg_words(net: Network, layers=None) -> list[tuple[int, int, int, int, int]]:
    """cfg words ``(layer, CfgTarget.WEIGHT, row, col, data)`` that write every weight of the given layers
    (default: all): what a host sends to load weights kept in SPRAM, which has no initial contents."""
    layers = range(len(net.layers)) if layers is None else layers
    return [(l, CfgTarget.WEIGHT, i, j, int(net.layers[l].weights[i, j]))
            for l in layers for i in range(net.layers[l].n_in) for j in range(net.layers[l].n)]


@dataclass
class RunResult:
    """One sample's run: what the gateware's ports and monitor show afterwards."""
    spikes: list[np.ndarray]      # per layer, bool [T, n_l]
    membranes: list[np.ndarray]   # per layer, int64 [n_l], final
    refractory: list[np.ndarray]  # per layer, int64 [n_l], final
    counts: np.ndarray            # int64 [n_out] (zeros for a readout network)
    mon: list[tuple[int, int, int, int]]  # (layer, step, base, word), in emission order
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


def batch_cycles(net: Network, lanes, input_spikes: np.ndarray, result) -> np.ndarray:
    """The cycle formula for a whole batch at once, int64 [batch].

    ``result`` is ``model.simulate(net, input_spikes)``: the formula only needs how many events
    each layer saw at each step, so this costs one vectorised pass instead of a twin run per sample.
    """
    geometry = check_hardware(net, lanes)
    events = [np.asarray(input_spikes, bool)] + result.spikes[:-1]
    T = events[0].shape[1]
    total = RUN_OVERHEAD + T * STEP_OVERHEAD
    for geo, ev in zip(geometry, events):
        total = total + ev.sum(axis=(1, 2), dtype=np.int64) * geo.groups + T * (geo.groups + LAYER_OVERHEAD)
    return np.asarray(total, dtype=np.int64)


class NetworkCore:
    """The accelerator's behaviour, state and cycle count, bit for bit and cycle for cycle."""

    def __init__(self, net: Network, lanes=4, max_events: int = 4096, trace_depth: int = 0,
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, weight_ram="block"):
        self.geometry = check_hardware(net, lanes, max_events, trace_depth, memory_budget, weight_ram)
        self.net = net
        self.max_events = max_events
        self.trace_depth = trace_depth
        self.layers = [LayerCore(layer, geo) for layer, geo in zip(net.layers, self.geometry)]

    @property
    def lanes(self) -> list[int]:
        return [g.lanes for g in self.geometry]

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

    # --- a run ---------------------------------------------------------------------------------

    def cycles(self, spikes: np.ndarray) -> int:
        """Exact cycle count of a run on one sample [T, n_in] (it runs the sample: the cycle count
        depends on every layer's spikes)."""
        return self.run(spikes).cycles

    def run(self, spikes: np.ndarray) -> RunResult:
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
        cycles = RUN_OVERHEAD
        for t in range(T):
            cycles += STEP_OVERHEAD
            events = list(np.flatnonzero(spikes[t]))
            for l, c in enumerate(self.layers):
                cycles += c.geo.cycles(len(events))
                words = c.step(events)
                for g, w in words:
                    mon.append((l, t, g * c.geo.lanes, w))
                events = LayerCore.events_of(words, c.geo.lanes)
                out[l][t, events] = True
        last = self.layers[-1]
        return RunResult(spikes=out,
                         membranes=[c.neurons(c.v) for c in self.layers],
                         refractory=[c.neurons(c.r) for c in self.layers],
                         counts=last.neurons(last.count), mon=mon, cycles=cycles)
