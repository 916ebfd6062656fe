"""Fuzz frames for the host link: what :mod:`spikegate.link_fuzz` sends (see that module for the
campaign; the host's record of what the board holds is :mod:`spikegate.link_fuzz_record`)."""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .link_fuzz_record import Record
from .model import link as proto
from .model.encode import MASK32, InputEncoder
from .model.link import CfgTarget, Cmd, Encoding, batch_fits, encode_fits
from .model.network import Network
from .model.link import has_rstdp, state_layout
from .model.protocol import (BATCH_HEADER, BATCH_RECORD, CYCLE_BYTES, ENCODE_HEADER, ENCODE_HEADER_LEN, LOAD_CLEAR,
                             LOAD_RUN, MAX_STATE_ANSWER, NET_ID_BYTES, READ_STATE_HEADER, REWARD_PAYLOAD, SYNC_REQ,
                             WRITE_HEADER, WRITE_ROW_MAJOR, RewardMode, StateKind, layout_len, pack_fields)

__all__ = ["KINDS", "COMMANDS", "Item", "Record", "FrameGen", "responses"]

KINDS = ("valid", "refused", "bitflips", "burst", "truncated", "garbage", "flood", "pause", "forged")
# Valid frames by command; a row-major (bulk) WRITE counts apart from a row WRITE.
COMMANDS = ("WRITE", "WRITE_ROW_MAJOR", "SET_NET_ID", "CHECKSUM", "LOAD", "RUN", "READ", "CLEAR", "STATUS",
            "IDENTIFY", "ENCODE", "BATCH", "LEARN", "READ_STATE", "REWARD")
# Damaged copies of a valid frame (the others carry no intended command).
DAMAGED = ("bitflips", "burst", "truncated", "pause", "forged")


@dataclass
class Item:
    """One fuzz frame: the bytes on the line, and what the host meant by them."""
    kind: str
    data: bytes
    cmd: int = -1
    tag: int = -1
    write: tuple | None = None   # (layer, target byte, row, col, values) of an intended WRITE
    split: int = 0               # pause after this many bytes
    long_pause: bool = False     # the pause exceeds the frame timeout
    encode: tuple | None = None  # (encoding, [(state, levels), ...]) of an ENCODE or BATCH
    spikes: np.ndarray | None = None  # [T, n_in] of a LOAD-and-run
    state: tuple | None = None   # (layer, kind, start, count) of a READ_STATE

    @property
    def command(self) -> str:
        """The intended command's name (:data:`COMMANDS`); "" for garbage and floods."""
        if self.cmd < 0:
            return ""
        if self.write is not None and self.write[1] & WRITE_ROW_MAJOR:
            return "WRITE_ROW_MAJOR"
        return Cmd(self.cmd).name if self.cmd in tuple(Cmd) else f"0x{self.cmd:02x}"


class FrameGen:
    """Deterministic fuzz frames for ``net`` on a link of geometry ``geo`` (seeded)."""

    def __init__(self, net: Network, geo: proto.LinkGeometry, seed: int):
        if any(geo.conv):
            # Its WRITE rows sit at packed addresses and its samples go out packed: the frames and
            # the host's Record here know neither (tests/test_link_conv*.py cover conv networks).
            raise ValueError("the link fuzzer takes dense networks only; this network has a conv layer "
                             f"(layers {[l for l, c in enumerate(geo.conv) if c]})")
        self.net, self.geo, self.rng = net, geo, random.Random(seed)
        self.tag = 0
        self.encoder = InputEncoder(geo.n_in, geo.timesteps)
        # ENCODE answers OK only when its words fit the buffer: an all-zero sample needs T of them.
        self.can_encode = encode_fits(geo) and geo.timesteps <= geo.max_events
        record = layout_len(BATCH_RECORD) + geo.n_in
        self.batch_max = min((geo.max_payload - layout_len(BATCH_HEADER)) // record,
                             0xFFFF // (CYCLE_BYTES + geo.output_bytes)) if batch_fits(geo) else 0
        # READ_STATE: what the board can read back (plastic networks); learning itself stays off,
        # so the record's values are what it reads
        geometry = geo.hardware().geometry(net)
        self.readable = [(l, k, lay) for l in range(len(geometry)) for k in StateKind
                         if (lay := state_layout(geometry, l, k)) is not None]
        self.unreadable = [(l, k) for l in range(len(geometry)) for k in StateKind
                           if state_layout(geometry, l, k) is None]
        # REWARD: valid on an rstdp network; with learning off the eligibility stays 0, so neither
        # mode changes what the record follows
        self.rstdp = has_rstdp(net)

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
        targets = [CfgTarget.WEIGHT, CfgTarget.WEIGHT | WRITE_ROW_MAJOR, CfgTarget.BIAS]
        target = r.choice(targets + ([] if self.net.layers[layer].readout else [CfgTarget.THRESHOLD]))
        base = CfgTarget(target & ~WRITE_ROW_MAJOR)
        lo, hi = g.value_range(layer, base)
        n, n_in = g.sizes[layer], g.rows[layer]
        room = (g.max_payload - WRITE_HEADER) // g.write_value_bytes(layer, base)
        if base == CfgTarget.THRESHOLD:
            row, col, count = 0, 0, 1
        elif target & WRITE_ROW_MAJOR:
            # A bulk write from (row, col) on through the following rows; a quarter of them from
            # the layer's first weight, as the driver's upload sends them.
            row, col = (0, 0) if r.random() < 0.25 else (r.randrange(n_in), r.randrange(n))
            count = r.randint(1, min(room, n_in * n - (row * n + col)))
        else:
            row = r.randrange(n_in) if base == CfgTarget.WEIGHT else 0
            col = r.randrange(n)
            count = r.randint(1, min(room, n - col))
        return layer, int(target), row, col, [r.choice((lo, hi, r.randint(lo, hi))) for _ in range(count)]

    def _write_payload(self, w) -> bytes:
        layer, target, row, col, values = w
        vb = self.geo.write_value_bytes(layer, CfgTarget(target & ~WRITE_ROW_MAJOR))
        return (bytes([layer, target]) + proto.to_le(row, 2) + proto.to_le(col, 2) + proto.to_le(len(values), 2)
                + b"".join(proto.to_le(v, vb) for v in values))

    def _sample(self, code: int) -> tuple[int, list[int]]:
        """(state, levels) of one ENCODE sample whose load words fit the input buffer."""
        r, g = self.rng, self.geo
        state = r.randint(1, MASK32) if code == Encoding.BERNOULLI else 0
        top = 255
        while True:
            levels = [r.choice((0, top, r.randint(0, top))) for _ in range(g.n_in)]
            words = self.encoder.words(np.array(levels), Encoding(code).name.lower(), state)
            if len(words) <= g.max_events:
                return state, levels
            top //= 2  # dimmer inputs spike less; all zero fits (can_encode)

    def _encode(self, cmd: int) -> tuple[bytes, tuple]:
        r = self.rng
        code = r.choice(tuple(Encoding))
        if cmd == Cmd.ENCODE:
            state, levels = self._sample(code)
            return pack_fields(ENCODE_HEADER, {"encoding": code, "state": state}) + bytes(levels), \
                (code, [(state, levels)])
        samples = [self._sample(code) for _ in range(r.randint(1, self.batch_max))]
        payload = pack_fields(BATCH_HEADER, {"encoding": code}) + b"".join(
            pack_fields(BATCH_RECORD, {"state": s}) + bytes(q) for s, q in samples)
        return payload, (code, samples)

    def _valid(self) -> Item:
        r = self.rng
        cmd = r.choice([Cmd.WRITE] * 4 + [Cmd.LOAD, Cmd.RUN, Cmd.READ, Cmd.CLEAR, Cmd.STATUS, Cmd.IDENTIFY,
                                          Cmd.CHECKSUM, Cmd.SET_NET_ID]
                       + [Cmd.ENCODE] * (2 * self.can_encode) + [Cmd.BATCH] * (2 * bool(self.batch_max))
                       + [Cmd.READ_STATE] * (2 * bool(self.readable)) + [Cmd.LEARN] * bool(self.readable)
                       + [Cmd.REWARD] * self.rstdp)
        write = encode = spikes = state = None
        if cmd == Cmd.WRITE:
            write = self._write()
            payload = self._write_payload(write)
        elif cmd == Cmd.LOAD:
            spikes = self.spikes()
            payload = bytes([LOAD_CLEAR | LOAD_RUN]) + proto.encode_events(spikes, self.geo)
        elif cmd in (Cmd.ENCODE, Cmd.BATCH):
            payload, encode = self._encode(cmd)
        elif cmd == Cmd.SET_NET_ID:
            payload = bytes(r.randrange(256) for _ in range(NET_ID_BYTES))
        elif cmd == Cmd.READ_STATE:
            layer, kind, lay = r.choice(self.readable)
            start = 0 if r.random() < 0.25 else r.randrange(lay.total)
            count = r.randint(1, min(lay.total - start, MAX_STATE_ANSWER // lay.value_bytes))
            state = (layer, int(kind), start, count)
            payload = pack_fields(READ_STATE_HEADER, dict(zip(("layer", "kind", "start", "count"), state)))
        elif cmd == Cmd.LEARN:
            payload = b"\x00"  # learning off (it stays off: the record cannot follow what a run learns)
        elif cmd == Cmd.REWARD:
            payload = pack_fields(REWARD_PAYLOAD, {"mode": r.choice(list(RewardMode)), "reward": r.randrange(1 << 16)})
        else:
            payload = b""
        tag = self._tag()
        return Item("valid", proto.encode_request(cmd, tag, payload), cmd, tag, write, encode=encode, spikes=spikes,
                    state=state)

    def _refused(self) -> Item:
        """An intact frame the board must refuse (and change nothing)."""
        g, r = self.geo, self.rng
        last = g.n_layers - 1
        n, n_in = g.sizes[last], g.rows[last]
        header = lambda target, row, col, count: (bytes([last, target]) + proto.to_le(row, 2)  # noqa: E731
                                                  + proto.to_le(col, 2) + proto.to_le(count, 2))
        vb = g.write_value_bytes(last, CfgTarget.WEIGHT)
        choices = [(0x55, b""), (Cmd.IDENTIFY, b"x"), (Cmd.WRITE, b"\x00" * 3),
                   (Cmd.WRITE, bytes([g.n_layers, 0, 0, 0, 0, 0, 1, 0, 0])),
                   (Cmd.LOAD, bytes([0xFC])), (Cmd.CHECKSUM, b"\x01"),
                   # row-major: only for weights, and not past the layer's last weight
                   (Cmd.WRITE, header(CfgTarget.BIAS | WRITE_ROW_MAJOR, 0, 0, 1) + bytes(vb)),
                   (Cmd.WRITE, header(CfgTarget.WEIGHT | WRITE_ROW_MAJOR, n_in - 1, n - 1, 2) + bytes(2 * vb))]
        if self.can_encode:
            levels = bytes(g.n_in)
            choices += [(Cmd.ENCODE, bytes([len(Encoding)]) + bytes(4) + levels),       # no such encoding
                        (Cmd.ENCODE, bytes([Encoding.BERNOULLI]) + bytes(4) + levels),  # a zero state
                        (Cmd.ENCODE, bytes([Encoding.RATE, 1, 0, 0, 0]) + levels),      # a state for rate
                        (Cmd.ENCODE, bytes([Encoding.RATE]) + bytes(4) + levels[1:])]   # a level short
        if self.batch_max:
            record = bytes([1, 0, 0, 0]) + bytes(g.n_in)
            choices += [(Cmd.BATCH, bytes([Encoding.BERNOULLI])),                 # no record
                        (Cmd.BATCH, bytes([Encoding.LATENCY]) + record[:-1])]     # a record cut short
            if self.batch_max > 1:                                                # the 2nd state 0
                choices.append((Cmd.BATCH, bytes([Encoding.BERNOULLI]) + record + bytes(4 + g.n_in)))
        rs = lambda layer, kind, start, count: pack_fields(READ_STATE_HEADER, {  # noqa: E731
            "layer": layer, "kind": kind, "start": start, "count": count})
        choices += [(Cmd.LEARN, b""), (Cmd.LEARN, b"\x01\x01"), (Cmd.REWARD, b"\x01"),
                    (Cmd.REWARD, b"\x10\x00"),                       # the 2-byte REWARD of before
                    (Cmd.READ_STATE, rs(0, 0, 0, 1)[:-1]),             # a byte short
                    (Cmd.READ_STATE, rs(g.n_layers, 0, 0, 1)),         # no such layer
                    (Cmd.READ_STATE, rs(0, len(StateKind), 0, 1))]     # no such kind
        if self.unreadable:  # a fixed layer's state, an stdp layer's eligibility, offsets it does not keep
            choices.append((Cmd.READ_STATE, rs(*r.choice(self.unreadable), 0, 1)))
        # an rstdp network: no such mode; otherwise: no rstdp layer
        choices.append((Cmd.REWARD, bytes([len(RewardMode) if self.rstdp else 0, 0x10, 0])))
        if self.readable:
            layer, kind, lay = r.choice(self.readable)
            choices += [(Cmd.LEARN, b"\x02"), (Cmd.READ_STATE, rs(layer, kind, 0, 0)),
                        (Cmd.READ_STATE, rs(layer, kind, lay.total - 1, 2))]
        else:
            choices += [(Cmd.LEARN, b"\x01"), (Cmd.READ_STATE, rs(0, StateKind.WEIGHTS, 0, 1))]
        cmd, payload = r.choice(choices)
        tag = self._tag()
        return Item("refused", proto.encode_request(cmd, tag, payload), cmd, tag)

    def next(self) -> Item:
        r = self.rng
        kind = r.choice(KINDS)
        if kind == "valid":
            return self._valid()
        if kind == "refused":
            return self._refused()
        if kind in DAMAGED:
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
                            long_pause=r.random() < 0.5, encode=base.encode, spikes=base.spikes, state=base.state)
            else:  # forged: one value bit changed, CRC-16 recomputed (the damage CRC-16 misses)
                payload = bytearray(b[5:-2])
                payload[WRITE_HEADER + r.randrange(len(payload) - WRITE_HEADER)] ^= 1 << r.randrange(8)
                b = bytearray(proto.encode_request(base.cmd, base.tag, bytes(payload)))
            return Item(kind, bytes(b), base.cmd, base.tag, base.write, encode=base.encode, spikes=base.spikes,
                        state=base.state)
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
