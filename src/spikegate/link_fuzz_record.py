"""The link fuzzer's reference: the host's record of the parameters it believes the board holds,
and the answer the board owes to a sample frame (LOAD-and-run, ENCODE, BATCH) on those parameters.

The reference is written from the model and the protocol document, not from the twin's engine:
a row-major WRITE is transcribed element by element (value ``i`` to ``W[(row n + col + i) // n,
(row n + col + i) % n]``), a sample's spikes come from the vectorised encoders
(:func:`spikegate.model.encode.from_levels`), its outputs from :func:`spikegate.model.simulate`
and its cycles from the cycle formula (:func:`spikegate.model.core.batch_cycles`, with the
bitstream's registered block RAM reads if it has them). So a fault in
the twin, the gateware or this reference shows up as a disagreement.
"""
from __future__ import annotations

import numpy as np

from .model import link as proto
from .model.core import batch_cycles
from .model.encode import from_levels
from .model.link import CfgTarget, Encoding
from .model.network import Network
from .model.protocol import CYCLE_BYTES, WRITE_ROW_MAJOR, StateKind
from .model.simulate import simulate

__all__ = ["Record"]


class Record:
    """The host's record of the parameters it believes the board holds (link geometry ``geo``)."""

    def __init__(self, net: Network, geo: proto.LinkGeometry):
        self.baked, self.geo = net, geo
        self.set(net)

    def set(self, net: Network):
        self.weights = [l.weights.copy() for l in net.layers]
        self.bias = [l.bias.copy() for l in net.layers]
        self.threshold = [int(l.threshold) for l in net.layers]

    def apply(self, write):
        """Apply an intended WRITE ``(layer, target byte, row, col, values)`` the board accepted."""
        layer, target, row, col, values = write
        if target == CfgTarget.WEIGHT | WRITE_ROW_MAJOR:
            n = self.geo.sizes[layer]
            for i, v in enumerate(values):
                self.weights[layer][(row * n + col + i) // n, (row * n + col + i) % n] = v
        elif target == CfgTarget.WEIGHT:
            self.weights[layer][row, col:col + len(values)] = values
        elif target == CfgTarget.BIAS:
            self.bias[layer][col:col + len(values)] = values
        else:
            self.threshold[layer] = values[0]

    @property
    def net(self) -> Network:
        return self.baked.replace(layers=[l.replace(weights=w, bias=b, threshold=t) for l, w, b, t in
                                          zip(self.baked.layers, self.weights, self.bias, self.threshold)])

    def sample_spikes(self, item) -> np.ndarray | None:
        """bool [batch, T, n_in]: the samples a LOAD-and-run, ENCODE or BATCH ``item`` runs (None
        for other frames)."""
        if item.encode is not None:
            code, samples = item.encode
            q = np.array([levels for _, levels in samples], dtype=np.int64)
            states = [s for s, _ in samples] if code == Encoding.BERNOULLI else None
            return from_levels(q, Encoding(code).name.lower(), self.geo.timesteps, states)
        if item.spikes is not None:
            return np.asarray(item.spikes, dtype=bool)[None]
        return None

    def expect_state(self, layer: int, kind: int, start: int, count: int) -> bytes:
        """READ_STATE's answer on the record (learning never on): weights row-major as recorded,
        offsets as the network file gives them, traces and eligibility 0 (nothing ever learned),
        each value in its ``value_bytes``."""
        lay = self.layout(layer, kind)
        layer_ = self.baked.layers[layer]
        if kind == StateKind.WEIGHTS:
            vals = self.weights[layer].reshape(-1)
        elif kind == StateKind.OFFSETS:
            vals = layer_.plasticity.offsets_for(layer_)
        else:
            vals = np.zeros(lay.total, np.int64)
        return b"".join(proto.to_le(int(v), lay.value_bytes) for v in vals[start:start + count])

    def layout(self, layer: int, kind: int):
        geometry = self.geo.hardware().geometry(self.baked)
        return proto.state_layout(geometry, layer, kind)

    def expect(self, item) -> bytes | None:
        """The payload of the OK answer to ``item`` on the recorded parameters: per sample the
        cycles (u32) and per output neuron its spike count (0 for a readout layer) and final
        membrane; a READ_STATE's values; None when the answer does not follow from the record alone."""
        if getattr(item, "state", None) is not None:
            return self.expect_state(*item.state)
        spikes = self.sample_spikes(item)
        if spikes is None:
            return None
        g, net = self.geo, self.net
        res = simulate(net, spikes)
        cycles = batch_cycles(net, list(g.lanes), spikes, res, registered_reads=g.registered_reads)
        counts = np.zeros_like(res.counts) if net.readout else res.counts
        out = bytearray()
        for b in range(len(spikes)):
            out += proto.to_le(int(cycles[b]), CYCLE_BYTES)
            for k in range(g.n_out):
                out += (proto.to_le(int(counts[b, k]), g.count_bytes)
                        + proto.to_le(int(res.membranes[-1][b, k]), g.membrane_bytes))
        return bytes(out)
