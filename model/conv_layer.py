"""Twin of the event-driven conv layer (gateware: ``hdl/conv_layer.py``): addresses, geometry, step.

The schedule (README, "Hardware: conv layers"; docs/architecture.md, "Wave 2"):

* **Events in.** A conv layer's input events are *packed* addresses
  ``(y << (x_bits + c_bits)) | (x << c_bits) | c``: the fields need no division to decode. The
  network input of a conv-first network is sent that way (:func:`input_addresses`); a conv layer's
  output words carry them already (below).
* **Integration.** An input event (c, y, x) reaches the outputs (oy, ox) whose window holds it: a
  range of ``ny(y)`` rows times ``nx(x)`` columns (fewer at the borders, none where the stride skips
  the input). For each reached position and each of the ``Gc = ceil(C_out / P)`` channel groups, one
  cycle reads the kernel word (c, dy, dx, gc) -- P output channels' weights -- and adds it to the
  accumulator word (oy, ox, gc) in block RAM (read-modify-write). An event costs
  ``max(1, ny(y) * nx(x) * Gc)`` cycles (an event that reaches nothing is still popped: 1 cycle).
* **Sweep.** As for a dense layer, one accumulator/membrane word a cycle in (oy, ox, gc) order,
  ``Ho * Wo * Gc`` cycles, the same pipelined neuron lanes; bias per output channel. The spike word
  of (oy, ox, gc) leaves with the packed group ``(oy << (ox_bits + gc_bits)) | (ox << gc_bits) | gc``,
  so its lane k is the next layer's packed address with channel gc * P + k.
* **Dense after conv.** A dense layer after a conv layer gets its input events as those packed
  addresses; its weight memory holds row i of the contract at the address of input i
  (:func:`hardware_layer`; unused addresses are zero rows that no event reads).

Per layer step: ``sum_e max(1, ny(y_e) * nx(x_e) * Gc) + Ho * Wo * Gc + LAYER_OVERHEAD``.

* **Pooling.** A ``sumpool2d``/``avgpool2d`` layer runs on the same core as the ``conv2d`` layer
  that computes its contract (:func:`pool_as_conv`): kernel ``K[o, c, dy, dx] = (o == c)``, so
  an event of channel c adds 1 to channel c of each window that holds it and 0 to the others,
  bias 0, the pooling layer's own neuron; its step costs the conv term above.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .conv import ConvSpec
from .layer import LAYER_OVERHEAD, LayerCore, ceil_log2
from .network import Layer
from .neuron import LIFNeuronUnit

__all__ = ["ConvGeometry", "ConvLayerCore", "input_fields", "pack", "unpack", "input_addresses", "hardware_rows_of",
           "hardware_rows", "hardware_layer", "axis_reach", "conv_geometry", "layer_cores", "pool_as_conv"]


def input_fields(shape) -> tuple[int, int, int]:
    """(c_bits, x_bits, y_bits) of the packed address of a C x H x W map with C channels."""
    c, h, w = shape
    return ceil_log2(c), ceil_log2(w), ceil_log2(h)


def pack(fields, c, y, x):
    cb, xb, _ = fields
    return (y << (xb + cb)) | (x << cb) | c


def unpack(fields, addr):
    """(c, y, x) of a packed address (ints or int arrays)."""
    cb, xb, _ = fields
    return addr & ((1 << cb) - 1), addr >> (xb + cb), (addr >> cb) & ((1 << xb) - 1)


def axis_reach(size: int, out: int, k: int, s: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Per input coordinate along one axis: the first output it reaches and how many (0 or more)."""
    pos = np.arange(size) + p                                   # padded coordinate
    first = np.maximum(0, -(-(pos - k + 1) // s))               # smallest o with o*s + k > pos
    last = np.minimum(out - 1, pos // s)                        # largest o with o*s <= pos
    return first, np.maximum(0, last - first + 1)


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one conv layer's gateware: its shape, lanes and the fields of its input addresses."""
    spec: ConvSpec
    lanes: int
    in_fields: tuple[int, int, int]

    @property
    def channel_groups(self) -> int:
        return -(-self.spec.out_channels // self.lanes)

    @property
    def positions(self) -> int:
        _, ho, wo = self.spec.out_shape
        return ho * wo

    @property
    def groups(self) -> int:
        """Accumulator / membrane words, swept one a cycle: Ho * Wo * Gc."""
        return self.positions * self.channel_groups

    @property
    def out_fields(self) -> tuple[int, int, int]:
        """Fields of the packed addresses this layer's spike words carry to the next layer."""
        _, ho, wo = self.spec.out_shape
        return ceil_log2(self.lanes) + ceil_log2(self.channel_groups), ceil_log2(wo), ceil_log2(ho)

    @property
    def group_bits(self) -> int:
        cb, xb, yb = self.out_fields
        return max(1, cb - ceil_log2(self.lanes) + xb + yb)

    @property
    def addr_bits(self) -> int:
        return max(1, sum(self.in_fields))

    def acc_bits(self, weight_bits: int) -> int:
        # At most C_in * k_h * k_w kernel words reach one output in a step.
        return weight_bits + ceil_log2(self.spec.kernel_rows + 1)

    def event_cost(self) -> np.ndarray:
        """Integration cycles of an event at each flat input (c, y, x), int64 [C_in * H * W]."""
        c, h, w = self.spec.in_shape
        _, ho, wo = self.spec.out_shape
        (kh, kw), (sh, sw), (ph, pw) = self.spec.kernel, self.spec.stride, self.spec.padding
        ny = axis_reach(h, ho, kh, sh, ph)[1]
        nx = axis_reach(w, wo, kw, sw, pw)[1]
        per_map = np.maximum(1, ny[:, None] * nx[None, :] * self.channel_groups)
        return np.tile(per_map.reshape(-1), c).astype(np.int64)

    def cycles(self, flat_events) -> int:
        """One layer step, for the step's input events given as flat input indices."""
        return int(self.event_cost()[np.asarray(flat_events, np.int64)].sum()) + self.groups + LAYER_OVERHEAD

    def memory_bits(self, weight_bits: int, membrane_bits: int, refr_bits: int, count_bits: int) -> dict[str, int]:
        G, P, Gc = self.groups, self.lanes, self.channel_groups
        mem = {"weights": self.spec.kernel_rows * Gc * P * weight_bits,
               "accumulators": G * P * self.acc_bits(weight_bits),
               "membranes": G * (P * membrane_bits + 1),  # + the word's epoch bit (hdl/conv_layer.py)
               "bias": Gc * P * membrane_bits}
        if refr_bits:
            mem["refractory"] = G * P * refr_bits
        if count_bits:
            mem["counts"] = G * P * count_bits
        return mem

    def flat_outputs(self, addrs) -> np.ndarray:
        """Flat neuron indices (o, oy, ox) of this layer's packed output addresses."""
        oc, oy, ox = unpack(self.out_fields, np.asarray(addrs, np.int64))
        _, ho, wo = self.spec.out_shape
        return (oc * ho + oy) * wo + ox


def input_addresses(fields, shape, flat) -> list[int]:
    """Flat input indices (c, y, x) of a C x H x W map as packed addresses, in ascending order."""
    _, h, w = shape
    flat = np.asarray(flat, np.int64)
    return sorted(int(a) for a in pack(fields, flat // (h * w), (flat // w) % h, flat % w))


def hardware_rows(fields, shape) -> int:
    """Addresses a C x H x W map's packed events span: the highest, (C-1, H-1, W-1), plus one."""
    c, h, w = shape
    return pack(fields, c - 1, h - 1, w - 1) + 1


def hardware_rows_of(fields, shape) -> np.ndarray:
    """The packed address of each flat input (c, y, x) of a C x H x W map: where a dense layer after
    the conv layer keeps that input's weight row."""
    c, h, w = shape
    flat = np.arange(c * h * w)
    return pack(fields, flat // (h * w), (flat // w) % h, flat % w)


def hardware_layer(layer: Layer, fields, shape) -> Layer:
    """A dense ``layer`` that follows a conv layer, with its weight rows at the packed addresses of
    its inputs (a C x H x W map, ``fields`` as the conv layer sends them)."""
    weights = np.zeros((hardware_rows(fields, shape), layer.n), np.int64)
    weights[hardware_rows_of(fields, shape)] = layer.weights
    return layer.replace(weights=weights)


def pool_as_conv(layer: Layer) -> Layer:
    """A pooling layer as the ``conv2d`` layer the gateware runs for it (a conv layer unchanged):
    the same shapes and neuron, kernel rows (c, dy, dx) with a 1 in column c only, bias 0."""
    spec = layer.conv
    if spec is None or not spec.pool:
        return layer
    c, kh, kw = spec.in_shape[0], *spec.kernel
    weights = np.kron(np.eye(c, dtype=np.int64), np.ones((kh * kw, 1), np.int64))  # row (c, dy, dx), col c
    conv = ConvSpec("conv2d", spec.in_shape, c, spec.kernel, spec.stride, spec.padding)
    return layer.replace(conv=conv, weights=weights, bias=np.zeros(c, np.int64))


class ConvLayerCore:
    """The conv layer's state in the gateware's layout and its step (events: packed addresses)."""

    def __init__(self, layer: Layer, geometry):
        layer = pool_as_conv(layer)
        self.layer, self.geo = layer, geometry
        cg: ConvGeometry = geometry.conv
        self.cg, spec, P, Gc = cg, layer.conv, cg.lanes, cg.channel_groups
        co = spec.out_channels
        kernel = np.zeros((spec.kernel_rows, Gc * P), np.int64)
        kernel[:, :co] = layer.weights
        self.kernel = kernel.reshape(-1, Gc, P)     # kernel word (row, gc): P output channels
        self.bias = np.zeros(Gc * P, np.int64)
        self.bias[:co] = layer.bias
        self.bias = self.bias.reshape(Gc, P)
        self.theta = layer.threshold
        self.unit = LIFNeuronUnit.from_layer(layer)
        self.acc = np.zeros((cg.groups, P), np.int64)
        self.v, self.r, self.count = (np.zeros((cg.groups, P), np.int64) for _ in range(3))
        self.lane_mask = (np.arange(Gc * P) < co).reshape(Gc, P)
        (_, h, w), (_, ho, wo) = spec.in_shape, spec.out_shape
        (kh, kw), (sh, sw), (ph, pw) = spec.kernel, spec.stride, spec.padding
        self.reach_y = axis_reach(h, ho, kh, sh, ph)
        self.reach_x = axis_reach(w, wo, kw, sw, pw)
        self.integration_cycles = 0

    def reset_state(self) -> None:
        for a in (self.v, self.r, self.count, self.acc):
            a[:] = 0

    def integrate(self, addr: int) -> int:
        """One input event: every (reached position, channel group) word, in the gateware's
        order; returns the cycles it took."""
        spec, Gc = self.layer.conv, self.cg.channel_groups
        c, y, x = unpack(self.cg.in_fields, int(addr))
        (kh, kw), (sh, sw), (ph, pw) = spec.kernel, spec.stride, spec.padding
        _, wo = spec.out_shape[1:]
        (oy0, ny), (ox0, nx) = (self.reach_y[0][y], self.reach_y[1][y]), (self.reach_x[0][x], self.reach_x[1][x])
        for oy in range(oy0, oy0 + ny):
            dy = y + ph - oy * sh
            for ox in range(ox0, ox0 + nx):
                dx = x + pw - ox * sw
                row = (c * kh + dy) * kw + dx
                base = (oy * wo + ox) * Gc
                self.acc[base:base + Gc] += self.kernel[row]
        return max(1, int(ny * nx) * Gc)

    def step(self, events) -> list[tuple[int, int]]:
        """Integrate the step's events, sweep, return the non-zero spike words (packed group, word)."""
        self.integration_cycles = sum(self.integrate(a) for a in events)
        Gc, P = self.cg.channel_groups, self.cg.lanes
        gb, xb, _ = self.cg.out_fields
        gb -= ceil_log2(P)
        wo = self.layer.conv.out_shape[2]
        words = []
        for g in range(self.cg.groups):
            p, gc = divmod(g, Gc)
            acc = self.acc[g].copy()
            self.acc[g] = 0
            v, r, s = self.unit(self.v[g], self.r[g], acc, self.bias[gc], self.theta)
            s = s & self.lane_mask[gc]
            self.v[g], self.r[g] = v, r
            self.count[g] += s
            word = int(sum(1 << k for k in range(P) if s[k]))
            if word:
                oy, ox = divmod(p, wo)
                words.append(((oy << (xb + gb)) | (ox << gb) | gc, word))
        return words

    events_of = staticmethod(LayerCore.events_of)

    def flat_events(self, addrs) -> np.ndarray:
        return self.cg.flat_outputs(addrs)

    def neurons(self, a: np.ndarray) -> np.ndarray:
        """Per-neuron values in the contract's (o, oy, ox) order."""
        co, ho, wo = self.layer.conv.out_shape
        return a.reshape(ho, wo, -1)[:, :, :co].transpose(2, 0, 1).reshape(-1).copy()



def conv_geometry(l: int, layers, geos, lanes: int, weight_ram: str):
    """The conv part of HardwareConfig.geometry for layer ``l`` (earlier layers' geometry ``geos``):
    ``(ConvGeometry or None, n_in as the hardware addresses it)``. Refuses, naming the layer and the
    feature, what has no gateware."""
    layer = layers[l]
    prev = geos[l - 1].conv if l else None
    name = f"layer {l} ({layers[l].name or 'unnamed'})"
    if layer.conv is None:
        if prev is None:
            return None, layer.n_in
        # Its weight rows sit at the conv layer's packed addresses, in block RAM or SPRAM (where the
        # host writes them at those rows: model.core.weight_cfg_words).
        return None, hardware_rows(prev.out_fields, layers[l - 1].conv.out_shape)
    spec = pool_as_conv(layer).conv
    if l and layers[l - 1].conv is None:
        raise ValueError(f"{name} is a {layer.conv.kind} layer after a dense layer: the conv core takes its events as "
                         "(channel, row, column) fields, which a dense layer's outputs do not carry; valid: "
                         "conv2d layers first, dense layers after them")
    if weight_ram != "block":
        raise ValueError(f"{name} is a {layer.conv.kind} layer: its kernels live in block RAM; valid: weight_ram = 'block' "
                         f"for it, got {weight_ram!r}")
    fields = prev.out_fields if prev is not None else input_fields(spec.in_shape)
    return ConvGeometry(spec=spec, lanes=lanes, in_fields=fields), layer.n_in


def layer_cores(layers, geometry) -> list:
    """The twin of each layer as the gateware builds it: a ConvLayerCore for a conv layer, a
    LayerCore otherwise (with its rows at packed addresses after a conv layer)."""
    cores = []
    for l, (layer, geo) in enumerate(zip(layers, geometry)):
        if geo.conv is not None:
            cores.append(ConvLayerCore(layer, geo))
        elif l and geometry[l - 1].conv is not None:
            prev = geometry[l - 1].conv
            cores.append(LayerCore(hardware_layer(layer, prev.out_fields, prev.spec.out_shape), geo))
        else:
            cores.append(LayerCore(layer, geo))
    return cores
