"""One accelerator's hardware configuration, validated once, shared by the gateware and its twins.

:class:`HardwareConfig` holds every knob that does not come from the network: lanes per layer,
the input buffer's depth, the trace memory's depth, the memory budget and where the weights
live. Its own values are checked when it is made (a frozen dataclass, so they stay checked);
:meth:`HardwareConfig.geometry` checks it against a network and derives each layer's widths and
sizes, so an impossible configuration fails with one clear message before any gateware exists.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .blocks import weight_parts
from .conv_layer import conv_geometry
from .delay import delay_slots
from .layer import LayerGeometry, LearningGeometry, bits_for
from .learning_engine import hardware_refusal, is_rstdp
from .network import Network
from .protocol import CfgTarget, value_range

__all__ = ["HardwareConfig", "DEFAULT_MEMORY_BUDGET", "MAX_LANES", "MAX_EVENTS", "WEIGHT_RAMS",
           "SPRAM_TILES", "SCHEDULES", "read_stages_for", "core_read_stages", "read_latency", "param_latency"]

MAX_LANES = 64
MAX_EVENTS = 1 << 20
WEIGHT_RAMS = ("block", "spram")
# How the layers share a sample's steps (README "Cycle count"): "sequential" runs the layers of a
# step one after the other; "inflight" runs wave w with layer l on step w - l, all layers at once.
SCHEDULES = ("inflight", "sequential")
SPRAM_TILES = 4  # SB_SPRAM256KA on an iCE40 UP5K
SPRAM_WORDS, SPRAM_WIDTH = 16384, 16  # one SB_SPRAM256KA tile
# 4 Mibit: more than any supported board's block RAM (UP5K: 120 kbit EBR + 1 Mbit SPRAM;
# ECP5-85: 3.7 Mbit), so only impossible networks are refused by default.
DEFAULT_MEMORY_BUDGET = 4 << 20


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _per_layer(name: str, value, L: int, give: str) -> list:
    if not isinstance(value, tuple):
        return [value] * L
    if len(value) != L:
        raise ValueError(f"{name} = {list(value)} has {len(value)} entries but the network has {L} "
                         f"layers; {give}")
    return list(value)


@dataclass(frozen=True)
class HardwareConfig:
    """What to build for a network, beyond the network itself.

    - ``lanes``: neurons updated in parallel, a power of two from 1 to 64; one for every layer or
      one per layer (a list is kept as a tuple).
    - ``max_events``: input buffer words per sample, end-of-step words included.
    - ``trace_depth``: spike words the trace memory keeps per run (0: no trace memory).
    - ``memory_budget``: refuse a configuration whose memories need more bits than this.
    - ``weight_ram``: ``"block"`` (block RAM, weights baked in as initial contents) or ``"spram"``
      (iCE40 UltraPlus SB_SPRAM256KA: no initial contents, so the weights start at zero and the
      host writes them through ``cfg``); one for every layer or one per layer. A plastic layer's
      weights may be in SPRAM too: its learning stage then takes a cycle more per weight word
      (:meth:`~spikegate.model.layer.LearningGeometry.cycles`); inference costs the same.
    - ``schedule``: ``"inflight"`` (layer l works on step t while layer l+1 works on step t-1,
      barrier-synchronised waves) or ``"sequential"`` (each step's layers one after the other).
      Same spikes bit for bit; only the cycle count and the order of the trace words differ.
    - ``input_ram``: where the input buffer lives, ``"block"`` or ``"spram"`` (one SB_SPRAM256KA
      tile: at most 16,384 words of at most 16 bits). The buffer is written only while the core is
      idle and read only during a run, so SPRAM's single port serves both; same timing either way.
    - ``registered_reads``: a register behind every block RAM read of the core (the ECP5's DP16KD
      takes 5.8 ns from clock to data at speed grade 6, before any logic; docs/timing.md). Each
      layer step then costs ``LayerGeometry.read_stages`` cycles more (:func:`read_stages_for`:
      1, or 2 where a weight memory is deeper than one block: a register behind each block, then
      one behind the multiplexer between them), the output peek (``out_*``) answers
      :func:`read_latency` = 2 cycles after its address instead of 1, and the parameter read
      (``param_*``) :func:`param_latency` = 3: a register behind the choice of the lane, which
      spans the die in a wide layer (both take the words after their first register). Same
      spikes bit for bit. So far for dense layers without temporal features or plasticity, with
      block RAM weights and input buffer; others are refused by :meth:`geometry`.

    Raises ``TypeError``/``ValueError`` naming the field, its value and what is valid.
    """
    lanes: int | tuple[int, ...] = 4
    max_events: int = 4096
    trace_depth: int = 0
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    weight_ram: str | tuple[str, ...] = "block"
    schedule: str = "inflight"
    input_ram: str = "block"
    registered_reads: bool = False

    def __post_init__(self):
        lanes = self.lanes
        if isinstance(lanes, (list, tuple)):
            for l, P in enumerate(lanes):
                if not _is_int(P):
                    raise TypeError(f"lanes[{l}] must be an integer, got {P!r}")
            lanes = tuple(int(P) for P in lanes)
        elif _is_int(lanes):
            lanes = int(lanes)
        else:
            raise TypeError(f"lanes must be an integer or a list of integers, got {lanes!r}")
        # A single value stands for every layer; it is named as the first layer's.
        for l, P in enumerate(lanes if isinstance(lanes, tuple) else (lanes,)):
            if P < 1 or P > MAX_LANES or P & (P - 1):
                raise ValueError(f"lanes = {P} (layer {l}) is not valid; valid: a power of two from 1 to {MAX_LANES}")
        rams = self.weight_ram
        if isinstance(rams, (list, tuple)):
            rams = tuple(rams)
        elif not isinstance(rams, str):
            raise TypeError(f"weight_ram must be a single value or a list with one per layer, got {rams!r}")
        for l, r in enumerate(rams if isinstance(rams, tuple) else (rams,)):
            if r not in WEIGHT_RAMS:
                raise ValueError(f"weight_ram = {r!r} (layer {l}) is not valid; valid: {', '.join(WEIGHT_RAMS)}")
        if not isinstance(self.schedule, str) or self.schedule not in SCHEDULES:
            raise ValueError(f"schedule = {self.schedule!r} is not valid; valid: {', '.join(SCHEDULES)}")
        if self.input_ram not in WEIGHT_RAMS:
            raise ValueError(f"input_ram = {self.input_ram!r} is not valid; valid: {', '.join(WEIGHT_RAMS)}")
        if not isinstance(self.registered_reads, (bool, np.bool_)):
            raise TypeError(f"registered_reads must be True or False, got {self.registered_reads!r}")
        if not _is_int(self.max_events):
            raise TypeError(f"max_events must be an integer, got {self.max_events!r}")
        if not 1 <= self.max_events <= MAX_EVENTS:
            raise ValueError(f"max_events = {self.max_events} is not valid; valid: 1 <= max_events <= {MAX_EVENTS}")
        if not _is_int(self.trace_depth):
            raise TypeError(f"trace_depth must be an integer, got {self.trace_depth!r}")
        if not 0 <= self.trace_depth <= MAX_EVENTS:
            raise ValueError(f"trace_depth = {self.trace_depth} is not valid; valid: 0 <= trace_depth <= {MAX_EVENTS}")
        if not _is_int(self.memory_budget) or self.memory_budget < 1:
            raise ValueError(f"memory_budget = {self.memory_budget!r} is not valid; valid: a positive number of bits")
        # Plain ints and tuples: the config is hashable and compares by value.
        for name, value in (("lanes", lanes), ("weight_ram", rams), ("max_events", int(self.max_events)),
                            ("trace_depth", int(self.trace_depth)), ("memory_budget", int(self.memory_budget)),
                            ("registered_reads", bool(self.registered_reads))):
            object.__setattr__(self, name, value)

    def layer_lanes(self, n_layers: int) -> list[int]:
        """Lanes of each of ``n_layers`` layers (ValueError when a per-layer list has another length)."""
        return _per_layer("lanes", self.lanes, n_layers, "give one lane count per layer or a single integer")

    def layer_weight_ram(self, n_layers: int) -> list[str]:
        return _per_layer("weight_ram", self.weight_ram, n_layers, "give one per layer or a single value")

    def input_spram_tiles(self) -> int:
        """SB_SPRAM256KA tiles of the input buffer: 1 with ``input_ram = "spram"``, else 0."""
        return int(self.input_ram == "spram")

    def input_buffer_bits(self, geometry: list[LayerGeometry]) -> int:
        """Bits of the core's input buffer: ``max_events`` words of an address and an end-of-step bit."""
        return self.max_events * (geometry[0].addr_bits + 1)

    def memory_bits(self, geometry: list[LayerGeometry]) -> int:
        """Every memory bit of the core: each layer's memories plus the input buffer."""
        return sum(sum(g.memory_bits().values()) for g in geometry) + self.input_buffer_bits(geometry)

    def geometry(self, net: Network) -> list[LayerGeometry]:
        """Check this configuration against ``net``; return the per-layer geometry.

        Raises ``TypeError``/``ValueError`` naming the parameter, its value and what is valid.
        """
        if not isinstance(net, Network):
            raise TypeError(f"net must be a spikegate Network, got {type(net).__name__}")
        L = len(net.layers)
        lanes, rams = self.layer_lanes(L), self.layer_weight_ram(L)
        count_bits_last = bits_for(self.max_events)
        geos = []
        for l, (layer, P, ram) in enumerate(zip(net.layers, lanes, rams)):
            count_bits = count_bits_last if l == L - 1 and not layer.readout else 0
            if ram == "spram" and layer.weight_bits % 4:
                raise ValueError(f"layer {l}: weight_ram = 'spram' needs weight_bits to be a multiple of 4 (the "
                                 f"SPRAM write mask is per nibble), got weight_bits = {layer.weight_bits}")
            tp = layer.temporal
            if tp is not None and (delay_slots(layer) or tp.recurrent is not None) and ram == "spram":
                raise ValueError(f"layer {l} ({layer.name or 'unnamed'}): weight_ram = 'spram' is not valid for a "
                                 f"{'recurrent' if tp.recurrent is not None else 'delayed'} layer (the cfg port "
                                 "cannot load the recurrent weights or the delays); valid: 'block'")
            learning = None
            if layer.plasticity is not None:
                refused = hardware_refusal(layer)
                if refused is not None:
                    raise ValueError(f"layer {l}: plasticity with {refused} has no gateware yet (layer "
                                     f"{layer.name or 'unnamed'}); the "
                                     "learning gateware runs pair and reward-modulated STDP with adaptive "
                                     "thresholds and winner-take-all (no refractory period with wta); run this "
                                     "layer in the model: spikegate.model.learning")
                # weight_ram = "spram" is valid for stdp: stage 5 then issues a weight word every other
                # cycle (LearningGeometry.cycles), as the single SPRAM port needs. rstdp's eligibility
                # sweep writes a weight word every cycle, which that port cannot do.
                if ram == "spram" and is_rstdp(layer.plasticity):
                    raise ValueError(f"layer {l} ({layer.name or 'unnamed'}): weight_ram = 'spram' is not valid for "
                                     "an rstdp layer (its eligibility sweep reads and writes a weight word every "
                                     "cycle, SPRAM has one port); valid: 'block'")
                learning = LearningGeometry.of(layer, -(-layer.n // P))
            _check_layer_values(l, layer)
            if self.registered_reads:
                _check_registered_reads(l, layer, ram)
            conv, n_in = conv_geometry(l, net.layers, geos, P, ram)
            geos.append(LayerGeometry(n_in=n_in, n=layer.n, lanes=P, weight_bits=layer.weight_bits,
                                      membrane_bits=layer.membrane_bits, refractory=layer.refractory,
                                      count_bits=count_bits, weight_ram=ram, conv=conv, learning=learning,
                                      current=tp is not None and tp.current is not None,
                                      recurrent=tp is not None and tp.recurrent is not None,
                                      delay_slots=delay_slots(layer), read_stages=int(self.registered_reads)))
        if self.registered_reads:
            stages = read_stages_for(geos)
            geos = [replace(g, read_stages=stages) for g in geos]
        if self.registered_reads and self.input_ram != "block":
            raise ValueError(f"registered_reads = True is not valid with input_ram = {self.input_ram!r}; "
                             "valid: input_ram = 'block'")
        if self.input_ram == "spram" and (self.max_events > SPRAM_WORDS or geos[0].addr_bits + 1 > SPRAM_WIDTH):
            raise ValueError(f"input_ram = 'spram' holds {SPRAM_WORDS} words of {SPRAM_WIDTH} bits (one SB_SPRAM256KA), "
                             f"but the input buffer needs {self.max_events} words of {geos[0].addr_bits + 1} bits; "
                             f"valid: max_events <= {SPRAM_WORDS} with at most {SPRAM_WIDTH - 1} address bits, "
                             "or input_ram = 'block'")
        tiles = sum(g.spram_tiles for g in geos) + self.input_spram_tiles()
        if tiles > SPRAM_TILES:
            parts = [f"layer {l}: {g.spram_tiles}" for l, g in enumerate(geos) if g.spram_tiles]
            parts += ["input buffer: 1"] if self.input_spram_tiles() else []
            raise ValueError(f"the memories in SPRAM need {tiles} SB_SPRAM256KA tiles "
                             f"({', '.join(parts)}); an iCE40 UltraPlus has {SPRAM_TILES}")
        total = self.memory_bits(geos)
        if total > self.memory_budget:
            detail = ", ".join(f"layer {l}: {sum(g.memory_bits().values())}" for l, g in enumerate(geos))
            raise ValueError(f"the core needs {total} bits of memory ({detail}, input buffer: "
                             f"{self.input_buffer_bits(geos)}), more than memory_budget = "
                             f"{self.memory_budget} bits; use a smaller network or max_events, or raise the budget")
        return geos


def _check_registered_reads(l: int, layer, ram: str) -> None:
    """The layer kinds whose gateware has registered block RAM reads (HardwareConfig.registered_reads)."""
    tp = layer.temporal
    kind = ("a conv2d or pooling layer" if layer.conv is not None else
            "a plastic layer" if layer.plasticity is not None else
            "a layer with synaptic delays, a synaptic current or recurrence" if tp is not None else
            "SPRAM weights" if ram != "block" else None)
    if kind is not None:
        raise ValueError(f"layer {l} ({layer.name or 'unnamed'}): registered_reads = True is not valid for "
                         f"{kind} yet; valid: dense layers without temporal features or plasticity, "
                         "weights in block RAM (or registered_reads = False)")


def _check_layer_values(l: int, layer) -> None:
    """The gateware's widths rely on these. A Layer validates them itself and is immutable; they
    are checked once more here, with the same rule (protocol.value_range), because the gateware
    would silently wrap a value that does not fit."""
    wlo, whi = value_range(layer, CfgTarget.WEIGHT)
    if layer.weights.size and (layer.weights.min() < wlo or layer.weights.max() > whi):
        raise ValueError(f"layer {l}: weights do not fit weight_bits = {layer.weight_bits} "
                         f"(range [{wlo}, {whi}])")
    rec = layer.temporal.recurrent if layer.temporal is not None else None
    if rec is not None and rec.size and (rec.min() < wlo or rec.max() > whi):
        raise ValueError(f"layer {l}: recurrent weights do not fit weight_bits = {layer.weight_bits} "
                         f"(range [{wlo}, {whi}])")
    tlo, thi = value_range(layer, CfgTarget.THRESHOLD)
    if not tlo <= layer.threshold <= thi:
        raise ValueError(f"layer {l}: threshold = {layer.threshold} does not fit membrane_bits = "
                         f"{layer.membrane_bits}; valid: {tlo} <= threshold <= {thi}")
    vlo, vhi = value_range(layer, CfgTarget.BIAS)
    if layer.bias.min() < vlo or layer.bias.max() > vhi:
        raise ValueError(f"layer {l}: bias does not fit membrane_bits = {layer.membrane_bits}")


def read_stages_for(geos: list[LayerGeometry]) -> int:
    """Read stages of every layer of a core with registered reads: 2 when some layer's weight
    memory is deeper than one block (:func:`~spikegate.model.blocks.weight_parts`), else 1. One
    count for the whole core, so that every layer's neuron stage, its output peek and its
    parameter reads keep the same timing."""
    return 2 if any(g.conv is None and g.weight_ram == "block" and weight_parts(g) > 1 for g in geos) else 1


def core_read_stages(geos: list[LayerGeometry]) -> int:
    """The read stages of a core of these layers (every layer has the same count: 0, 1 or 2)."""
    return max((g.read_stages for g in geos), default=0)


def read_latency(geos: list[LayerGeometry]) -> int:
    """Cycles from the output peek's address (``out_addr``) to its data, for a core of these layers:
    2 with registered reads (the peek takes the state words after their first register)."""
    return 1 + min(1, core_read_stages(geos))


def param_latency(geos: list[LayerGeometry]) -> int:
    """Cycles from an idle-time parameter read's address (``param_addr``) to its data, for a core of
    these layers: 3 with registered reads, the words taken after their first register, then a
    register behind the lane multiplexer (at 64 lanes that multiplexer alone held 784-128-10 on the
    ULX3S to 80-82 MHz; docs/timing.md). The CHECKSUM walk is built for at most 3."""
    return 1 + 2 * min(1, core_read_stages(geos))
