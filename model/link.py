"""The host-link protocol (docs/protocol.md) and the byte-level twin of :class:`spikegate.hdl.link.HostLink`.

Everything the gateware, the host driver and the tests must agree on lives here: frame layout,
CRC, command and status codes, payload layouts, the identify block, and ``HostLink``, a model that
takes the bytes a host sends and returns the bytes the board answers, bit for bit (apart from the
free-running ``uptime`` counter in the status block, which depends on wall time).

Frames (all multi-byte fields little-endian)::

    request : 0xA5 | cmd | tag | len_lo | len_hi | payload[len] | crc_lo | crc_hi
    response: 0x5A | cmd | tag | status | len_lo | len_hi | payload[len] | crc_lo | crc_hi

The CRC is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection) over every byte after the
sync byte and before the CRC.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from .network import Network, signed_range

__all__ = [
    "SYNC_REQ", "SYNC_RESP", "MAGIC", "PROTOCOL_VERSION", "Cmd", "Status", "STATUS_NAMES",
    "crc16", "encode_request", "encode_response", "decode_response", "structure_digest",
    "content_digest", "LinkGeometry", "Identity", "StatusBlock", "HostLink",
    "encode_events", "decode_events", "decode_outputs", "value_bytes", "to_le", "from_le",
]

SYNC_REQ = 0xA5
SYNC_RESP = 0x5A
MAGIC = b"SGAT"
PROTOCOL_VERSION = 1
DIGEST_BYTES = 16
NET_ID_BYTES = 16


class Cmd:
    IDENTIFY = 0x01
    STATUS = 0x02
    WRITE = 0x10
    SET_NET_ID = 0x11
    LOAD = 0x20
    RUN = 0x21
    READ = 0x22
    CLEAR = 0x23
    ALL = (IDENTIFY, STATUS, WRITE, SET_NET_ID, LOAD, RUN, READ, CLEAR)


class Status:
    OK = 0
    BAD_CRC = 1
    UNKNOWN_CMD = 2
    BAD_LENGTH = 3
    RANGE = 4
    TIMEOUT = 5
    OVERFLOW = 6


STATUS_NAMES = {0: "ok", 1: "bad CRC", 2: "unknown command", 3: "bad payload length",
                4: "address or value out of range", 5: "frame cut short (timeout)",
                6: "input buffer overflow"}

# LOAD flags
LOAD_CLEAR = 0x01
LOAD_RUN = 0x02
LOAD_FLAGS = LOAD_CLEAR | LOAD_RUN

# WRITE targets (as NetworkCore's cfg port)
TARGET_WEIGHT, TARGET_BIAS, TARGET_THRESHOLD = 0, 1, 2
WRITE_HEADER = 8  # layer u8, target u8, row u16, col u16, count u16


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def to_le(value: int, nbytes: int) -> bytes:
    return int(value & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little")


def from_le(data: bytes, signed: bool = False) -> int:
    return int.from_bytes(bytes(data), "little", signed=signed)


def encode_request(cmd: int, tag: int, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF, tag & 0xFF]) + to_le(len(payload), 2) + bytes(payload)
    return bytes([SYNC_REQ]) + body + to_le(crc16(body), 2)


def encode_response(cmd: int, tag: int, status: int, payload: bytes = b"") -> bytes:
    body = bytes([cmd & 0xFF, tag & 0xFF, status & 0xFF]) + to_le(len(payload), 2) + bytes(payload)
    return bytes([SYNC_RESP]) + body + to_le(crc16(body), 2)


def decode_response(frame: bytes) -> tuple[int, int, int, bytes]:
    """(cmd, tag, status, payload) of one complete response frame; ValueError if malformed."""
    if len(frame) < 8 or frame[0] != SYNC_RESP:
        raise ValueError("not a response frame")
    n = from_le(frame[4:6])
    if len(frame) != 8 + n:
        raise ValueError(f"response frame length {len(frame)} does not match its length field {n}")
    if crc16(frame[1:6 + n]) != from_le(frame[6 + n:8 + n]):
        raise ValueError("response frame has a bad CRC")
    return frame[1], frame[2], frame[3], bytes(frame[6:6 + n])


def _digest(d: dict) -> bytes:
    return hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).digest()[:DIGEST_BYTES]


def structure_digest(net: Network) -> bytes:
    """16 bytes identifying what re-synthesis fixes: sizes, widths, leak, reset, refractory,
    readout, timesteps and encoding. Weights, biases and thresholds are excluded: a link write can
    change those."""
    d = net.to_dict()
    for k in ("meta", "name"):
        d.pop(k)
    for layer in d["layers"]:
        for k in ("name", "weights", "bias", "threshold"):
            layer.pop(k)
    return _digest(d)


def content_digest(net: Network) -> bytes:
    """The first 16 bytes of ``Network.digest()``: everything that determines the computation."""
    return bytes.fromhex(net.digest())[:DIGEST_BYTES]


def value_bytes(bits: int) -> int:
    return (bits + 7) // 8


@dataclass(frozen=True)
class LinkGeometry:
    """Everything about a link that follows from the network and the hardware parameters."""
    n_in: int
    sizes: tuple[int, ...]            # neurons per layer
    n_in_per_layer: tuple[int, ...]
    weight_bits: tuple[int, ...]
    membrane_bits: tuple[int, ...]
    lanes: tuple[int, ...]
    readout: bool
    timesteps: int
    clk_freq: int
    baud: int
    max_payload: int
    max_events: int

    @classmethod
    def of(cls, net: Network, lanes, clk_freq: int, baud: int, max_payload: int, max_events: int):
        L = len(net.layers)
        lanes_t = tuple(lanes) if isinstance(lanes, (list, tuple)) else (int(lanes),) * L
        return cls(n_in=net.n_inputs, sizes=tuple(l.n for l in net.layers),
                   n_in_per_layer=tuple(l.n_in for l in net.layers),
                   weight_bits=tuple(l.weight_bits for l in net.layers),
                   membrane_bits=tuple(l.membrane_bits for l in net.layers),
                   lanes=lanes_t, readout=net.readout, timesteps=net.timesteps, clk_freq=int(clk_freq),
                   baud=int(baud), max_payload=int(max_payload), max_events=int(max_events))

    @property
    def n_layers(self) -> int:
        return len(self.sizes)

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def addr_bits(self) -> int:
        return max(1, (self.n_in - 1).bit_length())

    @property
    def event_bytes(self) -> int:
        """Bytes per input event word: the address plus the end-of-step flag in the top bit."""
        return 1 if self.addr_bits <= 7 else 2

    @property
    def eos_flag(self) -> int:
        return 1 << (8 * self.event_bytes - 1)

    @property
    def count_bytes(self) -> int:
        return value_bytes(max(1, self.max_events.bit_length()))

    @property
    def membrane_bytes(self) -> int:
        return value_bytes(self.membrane_bits[-1])

    @property
    def output_bytes(self) -> int:
        return self.n_out * (self.count_bytes + self.membrane_bytes)

    def write_value_bytes(self, layer: int, target: int) -> int:
        return value_bytes(self.weight_bits[layer] if target == TARGET_WEIGHT else self.membrane_bits[layer])

    @property
    def identify_static_len(self) -> int:
        return 58 + 2 + 3 * self.n_layers

    @property
    def identify_len(self) -> int:
        return self.identify_static_len + 1 + NET_ID_BYTES


def identify_static(geo: LinkGeometry, struct: bytes, content: bytes) -> bytes:
    """The constant part of the identify payload, as baked into the bitstream."""
    b = bytearray(MAGIC)
    b += bytes([PROTOCOL_VERSION, geo.n_layers])
    b += to_le(geo.clk_freq, 4) + to_le(geo.baud, 4) + to_le(geo.max_payload, 2) + to_le(geo.max_events, 4)
    b += to_le(geo.timesteps, 2)
    b += bytes([1 if geo.readout else 0, geo.event_bytes, geo.count_bytes, geo.membrane_bytes])
    b += struct + content
    assert len(b) == 58
    b += to_le(geo.n_in, 2)
    for n, p in zip(geo.sizes, geo.lanes):
        b += to_le(n, 2) + bytes([p])
    return bytes(b)


@dataclass
class Identity:
    """A decoded identify payload."""
    version: int
    clk_freq: int
    baud: int
    max_payload: int
    max_events: int
    timesteps: int
    readout: bool
    event_bytes: int
    count_bytes: int
    membrane_bytes: int
    structure: bytes
    baked: bytes
    shape: tuple[int, ...]
    lanes: tuple[int, ...]
    dirty: bool
    net_id: bytes

    @classmethod
    def parse(cls, p: bytes) -> "Identity":
        if len(p) < 6 or p[:4] != MAGIC:
            raise ValueError(f"identify payload does not start with the magic {MAGIC!r} (got {bytes(p[:4])!r})")
        version, L = p[4], p[5]
        if version != PROTOCOL_VERSION:
            # Parse nothing else: a different version may lay the rest out differently.
            return cls(version, 0, 0, 0, 0, 0, False, 0, 0, 0, b"", b"", (), (), False, b"")
        need = 58 + 2 + 3 * L + 1 + NET_ID_BYTES
        if len(p) != need:
            raise ValueError(f"identify payload has {len(p)} bytes, expected {need} for {L} layers")
        shape = [from_le(p[58:60])]
        lanes = []
        for i in range(L):
            o = 60 + 3 * i
            shape.append(from_le(p[o:o + 2]))
            lanes.append(p[o + 2])
        o = 60 + 3 * L
        return cls(version=version, clk_freq=from_le(p[6:10]), baud=from_le(p[10:14]),
                   max_payload=from_le(p[14:16]), max_events=from_le(p[16:20]), timesteps=from_le(p[20:22]),
                   readout=bool(p[22] & 1), event_bytes=p[23], count_bytes=p[24], membrane_bytes=p[25],
                   structure=bytes(p[26:42]), baked=bytes(p[42:58]), shape=tuple(shape), lanes=tuple(lanes),
                   dirty=bool(p[o] & 1), net_id=bytes(p[o + 1:o + 1 + NET_ID_BYTES]))


STATUS_LEN = 30


@dataclass
class StatusBlock:
    """The STATUS payload. ``flags``: bit0 dirty (weights written since the last SET_NET_ID),
    bit1 core overflow, bit2 core cfg_error, bit3 core done."""
    flags: int = 0
    last_cycles: int = 0
    uptime: int = 0
    frames_ok: int = 0
    crc_errors: int = 0
    frame_errors: int = 0
    timeouts: int = 0
    rx_errors: int = 0
    cfg_writes: int = 0
    loaded: int = 0

    def pack(self) -> bytes:
        b = (bytes([self.flags]) + to_le(self.last_cycles, 4) + to_le(self.uptime, 6) + to_le(self.frames_ok, 4)
             + to_le(self.crc_errors, 2) + to_le(self.frame_errors, 2) + to_le(self.timeouts, 2)
             + to_le(self.rx_errors, 2) + to_le(self.cfg_writes, 4) + to_le(self.loaded, 3))
        assert len(b) == STATUS_LEN
        return b

    @classmethod
    def parse(cls, p: bytes) -> "StatusBlock":
        if len(p) != STATUS_LEN:
            raise ValueError(f"status payload has {len(p)} bytes, expected {STATUS_LEN}")
        return cls(flags=p[0], last_cycles=from_le(p[1:5]), uptime=from_le(p[5:11]), frames_ok=from_le(p[11:15]),
                   crc_errors=from_le(p[15:17]), frame_errors=from_le(p[17:19]), timeouts=from_le(p[19:21]),
                   rx_errors=from_le(p[21:23]), cfg_writes=from_le(p[23:27]), loaded=from_le(p[27:30]))


def encode_events(spikes: np.ndarray, geo: LinkGeometry) -> bytes:
    """One sample's spikes [T, n_in] as event words: per step the addresses that spiked, in
    increasing order, then an end-of-step word (top bit set, address bits 0)."""
    spikes = np.asarray(spikes, dtype=bool)
    if spikes.ndim != 2 or spikes.shape[1] != geo.n_in:
        raise ValueError(f"spikes must have shape [T, {geo.n_in}], got {spikes.shape}")
    eb = geo.event_bytes
    out = bytearray()
    for t in range(spikes.shape[0]):
        for a in np.flatnonzero(spikes[t]):
            out += int(a).to_bytes(eb, "little")
        out += geo.eos_flag.to_bytes(eb, "little")
    return bytes(out)


def decode_events(data: bytes, geo: LinkGeometry) -> np.ndarray:
    """Inverse of :func:`encode_events` (words after the last end-of-step are ignored)."""
    eb = geo.event_bytes
    steps, cur = [], np.zeros(geo.n_in, dtype=bool)
    for i in range(0, len(data) - len(data) % eb, eb):
        w = from_le(data[i:i + eb])
        if w & geo.eos_flag:
            steps.append(cur)
            cur = np.zeros(geo.n_in, dtype=bool)
        else:
            cur[w] = True
    return np.array(steps, dtype=bool).reshape(len(steps), geo.n_in)


def decode_outputs(p: bytes, geo: LinkGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(counts, membranes), int64 [n_out] each, from an outputs block (READ, or LOAD-and-run after
    its 4 cycle bytes)."""
    cb, mb = geo.count_bytes, geo.membrane_bytes
    if len(p) != geo.output_bytes:
        raise ValueError(f"outputs block has {len(p)} bytes, expected {geo.output_bytes}")
    counts = np.zeros(geo.n_out, dtype=np.int64)
    mems = np.zeros(geo.n_out, dtype=np.int64)
    for k in range(geo.n_out):
        o = k * (cb + mb)
        counts[k] = from_le(p[o:o + cb])
        mems[k] = from_le(p[o + cb:o + cb + mb], signed=True)
    return counts, mems


def _out_of(value: int, bits: int, lo: int | None = None, hi: int | None = None) -> bool:
    vlo, vhi = signed_range(bits)
    lo = vlo if lo is None else lo
    hi = vhi if hi is None else hi
    return not lo <= value <= hi


class HostLink:
    """Byte-level twin of the gateware ``HostLink``: ``feed(bytes) -> bytes`` answers exactly as
    the board does when the host waits for each response before sending the next frame;
    ``timeout()`` is a silence longer than the frame timeout.

    It keeps its own copy of the network (weights written through the link change it) and runs
    samples with :func:`spikegate.model.simulate` and the core twin's cycle formula.
    """

    def __init__(self, net: Network, *, lanes=4, clk_freq: int = 12_000_000, baud: int = 115_200,
                 max_payload: int = 512, max_events: int = 4096):
        from .core import HardwareConfig, NetworkCore
        self.baked = net
        self.net = Network.from_dict(net.to_dict())
        self.core = NetworkCore(self.net, HardwareConfig(lanes=lanes, max_events=max_events))
        self.geo = LinkGeometry.of(net, lanes, clk_freq, baud, max_payload, max_events)
        self.ident_static = identify_static(self.geo, structure_digest(net), content_digest(net))
        self.net_id = content_digest(net)
        self.dirty = False
        self.stat = StatusBlock()
        self.events = bytearray()
        self.counts = np.zeros(self.geo.n_out, dtype=np.int64)
        self.membranes = np.zeros(self.geo.n_out, dtype=np.int64)
        self.done = False
        self.cfg_error = False
        self._state = "hunt"
        self._hdr = bytearray()
        self._payload = bytearray()
        self._crc = bytearray()
        self._cmd = self._tag = 0

    # --- framing ------------------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            out += self._byte(b)
        return bytes(out)

    def timeout(self) -> bytes:
        if self._state == "hunt":
            return b""
        self.stat.timeouts += 1
        self._state = "hunt"
        return encode_response(self._cmd, self._tag, Status.TIMEOUT)

    def _byte(self, b: int) -> bytes:
        st = self._state
        if st == "hunt":
            if b == SYNC_REQ:
                self._state, self._hdr, self._cmd, self._tag = "hdr", bytearray(), 0, 0
            return b""
        if st == "hdr":
            self._hdr.append(b)
            if len(self._hdr) == 1:
                self._cmd = b
            elif len(self._hdr) == 2:
                self._tag = b
            elif len(self._hdr) == 4:
                n = from_le(self._hdr[2:4])
                if n > self.geo.max_payload:
                    self.stat.frame_errors += 1
                    self._state = "hunt"
                    return encode_response(self._cmd, self._tag, Status.BAD_LENGTH)
                self._payload, self._crc = bytearray(), bytearray()
                self._state = "payload" if n else "crc"
            return b""
        if st == "payload":
            self._payload.append(b)
            if len(self._payload) == from_le(self._hdr[2:4]):
                self._state = "crc"
            return b""
        # crc
        self._crc.append(b)
        if len(self._crc) < 2:
            return b""
        self._state = "hunt"
        if crc16(bytes(self._hdr) + bytes(self._payload)) != from_le(self._crc):
            self.stat.crc_errors += 1
            return encode_response(self._cmd, self._tag, Status.BAD_CRC)
        self.stat.frames_ok += 1
        status, payload = self._execute(self._cmd, bytes(self._payload))
        if status != Status.OK:
            self.stat.frame_errors += 1
        return encode_response(self._cmd, self._tag, status, payload)

    # --- commands -----------------------------------------------------------------------------

    def status_block(self) -> StatusBlock:
        s = self.stat
        s.flags = int(self.dirty) | (int(self.cfg_error) << 2) | (int(self.done) << 3)
        s.loaded = len(self.events) // self.geo.event_bytes
        return s

    def outputs(self) -> bytes:
        g = self.geo
        b = bytearray()
        for k in range(g.n_out):
            b += to_le(int(self.counts[k]), g.count_bytes) + to_le(int(self.membranes[k]), g.membrane_bytes)
        return bytes(b)

    def _execute(self, cmd: int, p: bytes) -> tuple[int, bytes]:
        if cmd not in Cmd.ALL:
            return Status.UNKNOWN_CMD, b""
        if cmd in (Cmd.IDENTIFY, Cmd.STATUS, Cmd.RUN, Cmd.READ, Cmd.CLEAR) and p:
            return Status.BAD_LENGTH, b""
        if cmd == Cmd.IDENTIFY:
            return Status.OK, self.ident_static + bytes([int(self.dirty)]) + self.net_id
        if cmd == Cmd.STATUS:
            return Status.OK, self.status_block().pack()
        if cmd == Cmd.READ:
            return Status.OK, self.outputs()
        if cmd == Cmd.CLEAR:
            self._clear()
            return Status.OK, b""
        if cmd == Cmd.RUN:
            self._run()
            return Status.OK, to_le(self.stat.last_cycles, 4)
        if cmd == Cmd.SET_NET_ID:
            if len(p) != NET_ID_BYTES:
                return Status.BAD_LENGTH, b""
            self.net_id, self.dirty = bytes(p), False
            return Status.OK, b""
        if cmd == Cmd.WRITE:
            return self._write(p)
        return self._load(p)

    def _clear(self):
        self.events = bytearray()
        self.done = False
        self.cfg_error = False

    def _write(self, p: bytes) -> tuple[int, bytes]:
        g = self.geo
        if len(p) < WRITE_HEADER:
            return Status.BAD_LENGTH, b""
        layer, target, row, col, count = p[0], p[1], from_le(p[2:4]), from_le(p[4:6]), from_le(p[6:8])
        if layer >= g.n_layers or target > TARGET_THRESHOLD:
            return Status.RANGE, b""
        vb = g.write_value_bytes(layer, target)
        if count == 0 or len(p) != WRITE_HEADER + count * vb:
            return Status.BAD_LENGTH, b""
        n_in, n = g.n_in_per_layer[layer], g.sizes[layer]
        if target == TARGET_WEIGHT:
            bad = row >= n_in or col + count > n
        elif target == TARGET_BIAS:
            bad = row != 0 or col + count > n
        else:
            bad = row != 0 or col != 0 or count != 1
        vals = [from_le(p[WRITE_HEADER + i * vb:WRITE_HEADER + (i + 1) * vb], signed=True) for i in range(count)]
        L = self.net.layers[layer]
        if target == TARGET_WEIGHT:
            bad = bad or any(_out_of(v, L.weight_bits) for v in vals)
        elif target == TARGET_BIAS:
            bad = bad or any(_out_of(v, L.membrane_bits) for v in vals)
        else:
            bad = bad or L.readout or _out_of(vals[0], L.membrane_bits, 0, L.v_max - 1)
        if bad:
            return Status.RANGE, b""
        for i, v in enumerate(vals):
            # Validated above, so the core accepts every word: nothing is ever half-applied.
            assert self.core.cfg(layer, target, row, col + i, v)
        if target == TARGET_WEIGHT:
            L.weights[row, col:col + count] = vals
        elif target == TARGET_BIAS:
            L.bias[col:col + count] = vals
        else:
            L.threshold = vals[0]
        self.stat.cfg_writes += count
        self.dirty = True
        return Status.OK, b""

    def _load(self, p: bytes) -> tuple[int, bytes]:
        g = self.geo
        eb = g.event_bytes
        if len(p) < 1 or (len(p) - 1) % eb:
            return Status.BAD_LENGTH, b""
        flags, words = p[0], p[1:]
        if flags & ~LOAD_FLAGS:
            return Status.RANGE, b""
        for i in range(0, len(words), eb):
            w = from_le(words[i:i + eb])
            addr = w & (g.eos_flag - 1)
            if (w & g.eos_flag and addr) or (not w & g.eos_flag and addr >= g.n_in):
                return Status.RANGE, b""
        have = 0 if flags & LOAD_CLEAR else len(self.events) // eb
        if have + len(words) // eb > g.max_events:
            return Status.OVERFLOW, b""
        if flags & LOAD_CLEAR:
            self._clear()
        self.events += words
        if words:
            self.done = False
        if flags & LOAD_RUN:
            self._run()
            return Status.OK, to_le(self.stat.last_cycles, 4) + self.outputs()
        return Status.OK, b""

    def spikes(self) -> np.ndarray:
        return decode_events(bytes(self.events), self.geo)

    def _run(self):
        s = self.spikes()
        res = self.core.run(s)
        self.counts = np.asarray(res.counts, dtype=np.int64)
        self.membranes = np.asarray(res.membranes[-1], dtype=np.int64)
        self.stat.last_cycles = res.cycles
        self.done = True
