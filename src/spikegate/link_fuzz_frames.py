"""Fuzz frames for the host link: what :mod:`spikegate.link_fuzz` sends, and the host's record of
the writes it believes applied (see that module for the campaign)."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .model import link as proto
from .model.link import CfgTarget, Cmd
from .model.network import Network
from .model.protocol import LOAD_CLEAR, LOAD_RUN, NET_ID_BYTES, SYNC_REQ, WRITE_HEADER

__all__ = ["KINDS", "Item", "Record", "FrameGen", "responses"]

KINDS = ("valid", "refused", "bitflips", "burst", "truncated", "garbage", "flood", "pause", "forged")


@dataclass
class Item:
    """One fuzz frame: the bytes on the line, and what the host meant by them."""
    kind: str
    data: bytes
    cmd: int = -1
    tag: int = -1
    write: tuple | None = None   # (layer, target, col-or-row..., values) of an intended WRITE
    split: int = 0               # pause after this many bytes
    long_pause: bool = False     # the pause exceeds the frame timeout


class Record:
    """The host's record of the parameters it believes the board holds."""

    def __init__(self, net: Network):
        self.baked = net
        self.set(net)

    def set(self, net: Network):
        self.weights = [l.weights.copy() for l in net.layers]
        self.bias = [l.bias.copy() for l in net.layers]
        self.threshold = [int(l.threshold) for l in net.layers]

    def apply(self, write):
        layer, target, row, col, values = write
        if target == CfgTarget.WEIGHT:
            self.weights[layer][row, col:col + len(values)] = values
        elif target == CfgTarget.BIAS:
            self.bias[layer][col:col + len(values)] = values
        else:
            self.threshold[layer] = values[0]

    @property
    def net(self) -> Network:
        return self.baked.replace(layers=[l.replace(weights=w, bias=b, threshold=t) for l, w, b, t in
                                          zip(self.baked.layers, self.weights, self.bias, self.threshold)])


class FrameGen:
    """Deterministic fuzz frames for ``net`` on a link of geometry ``geo`` (seeded)."""

    def __init__(self, net: Network, geo: proto.LinkGeometry, seed: int):
        self.net, self.geo, self.rng = net, geo, random.Random(seed)
        self.tag = 0

    def _tag(self) -> int:
        self.tag = (self.tag + 1) & 0xFF
        return self.tag

    def spikes(self) -> np.ndarray:
        """A random sample whose event words fit one LOAD frame and the input buffer."""
        g, r = self.geo, self.rng
        room = min((g.max_payload - 1) // g.event_bytes, g.max_events) - g.timesteps
        p = min(0.4, room / (2 * g.n_in * g.timesteps))
        return np.array([[r.random() < p for _ in range(g.n_in)] for _ in range(g.timesteps)])

    def _write(self) -> tuple:
        r, g = self.rng, self.geo
        layer = r.randrange(g.n_layers)
        targets = [CfgTarget.WEIGHT, CfgTarget.BIAS] + ([] if self.net.layers[layer].readout else [CfgTarget.THRESHOLD])
        target = r.choice(targets)
        lo, hi = g.value_range(layer, target)
        n = g.sizes[layer]
        if target == CfgTarget.THRESHOLD:
            row, col, count = 0, 0, 1
        else:
            row = r.randrange(g.n_in_per_layer[layer]) if target == CfgTarget.WEIGHT else 0
            col = r.randrange(n)
            count = r.randint(1, n - col)
        return layer, target, row, col, [r.randint(lo, hi) for _ in range(count)]

    def _write_payload(self, w) -> bytes:
        layer, target, row, col, values = w
        vb = self.geo.write_value_bytes(layer, target)
        return (bytes([layer, target]) + proto.to_le(row, 2) + proto.to_le(col, 2) + proto.to_le(len(values), 2)
                + b"".join(proto.to_le(v, vb) for v in values))

    def _valid(self) -> Item:
        r, g = self.rng, self.geo
        cmd = r.choice([Cmd.WRITE, Cmd.WRITE, Cmd.WRITE, Cmd.LOAD, Cmd.RUN, Cmd.READ, Cmd.CLEAR, Cmd.STATUS,
                        Cmd.IDENTIFY, Cmd.CHECKSUM, Cmd.SET_NET_ID])
        write = None
        if cmd == Cmd.WRITE:
            write = self._write()
            payload = self._write_payload(write)
        elif cmd == Cmd.LOAD:
            payload = bytes([LOAD_CLEAR | LOAD_RUN]) + proto.encode_events(self.spikes(), g)
        elif cmd == Cmd.SET_NET_ID:
            payload = bytes(r.randrange(256) for _ in range(NET_ID_BYTES))
        else:
            payload = b""
        tag = self._tag()
        return Item("valid", proto.encode_request(cmd, tag, payload), cmd, tag, write)

    def next(self) -> Item:
        r = self.rng
        kind = r.choice(KINDS)
        if kind == "valid":
            return self._valid()
        if kind == "refused":
            tag = self._tag()
            cmd, payload = r.choice([(0x55, b""), (Cmd.IDENTIFY, b"x"), (Cmd.WRITE, b"\x00" * 3),
                                     (Cmd.WRITE, bytes([self.geo.n_layers, 0, 0, 0, 0, 0, 1, 0, 0])),
                                     (Cmd.LOAD, bytes([0xFC])), (Cmd.CHECKSUM, b"\x01")])
            return Item(kind, proto.encode_request(cmd, tag, payload), cmd, tag)
        if kind in ("bitflips", "burst", "truncated", "pause", "forged"):
            base = self._valid()
            while kind == "forged" and base.cmd != Cmd.WRITE:
                base = self._valid()
            b = bytearray(base.data)
            if kind == "bitflips":
                for bit in r.sample(range(8 * len(b)), r.randint(2, min(8, 8 * len(b)))):
                    b[bit // 8] ^= 1 << (bit % 8)
            elif kind == "burst":
                at = r.randrange(len(b))
                for i in range(at, min(len(b), at + r.randint(2, 6))):
                    b[i] = r.randrange(256)
            elif kind == "truncated":
                b = b[:r.randint(1, len(b) - 1)]
            elif kind == "pause":
                return Item(kind, bytes(b), base.cmd, base.tag, base.write, split=r.randint(1, len(b) - 1),
                            long_pause=r.random() < 0.5)
            else:  # forged: one value bit changed, CRC-16 recomputed (the damage CRC-16 misses)
                payload = bytearray(b[5:-2])
                payload[WRITE_HEADER + r.randrange(len(payload) - WRITE_HEADER)] ^= 1 << r.randrange(8)
                b = bytearray(proto.encode_request(base.cmd, base.tag, bytes(payload)))
            return Item(kind, bytes(b), base.cmd, base.tag, base.write)
        if kind == "garbage":
            return Item(kind, bytes(r.randrange(256) for _ in range(r.randint(1, 40))))
        fill = r.choice([SYNC_REQ, 0x00, 0x5A, 0xFF])
        return Item("flood", bytes([fill]) * r.randint(50, 400))


def responses(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """The well-formed response frames in ``data`` (anything else skipped)."""
    out, i = [], 0
    while i + 8 <= len(data):
        if data[i] == 0x5A:
            n = proto.from_le(data[i + 4:i + 6])
            try:
                out.append(proto.decode_response(data[i:i + 8 + n]))
                i += 8 + n
                continue
            except ValueError:
                pass
        i += 1
    return out
