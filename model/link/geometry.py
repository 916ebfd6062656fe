"""What a link's bytes mean: the geometry that fixes payload widths, the identify and status blocks
(laid out by the field tables of :mod:`spikegate.model.protocol`), event words and outputs."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from ..conv_layer import conv_geometry, input_addresses, unpack
from ..hardware import HardwareConfig
from ..network import Network
from ..protocol import (DIGEST_BYTES, IDENT_READOUT, IDENT_REGISTERED, IDENT_STREAM, IDENTIFY_HEAD, IDENTIFY_LAYER, IDENTIFY_TAIL, MAGIC,
                        PROTOCOL_VERSION, STATUS_FIELDS, STATUS_LEN, CfgTarget, field, layout_len, pack_fields,
                        parse_fields, value_bits, value_range)
from .frames import from_le, value_bytes

__all__ = ["check_encoder", "structure_digest", "content_digest", "LinkGeometry", "identify_static", "Identity", "StatusBlock",
           "encode_events", "decode_events", "decode_outputs"]


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
    stream: bool = False              # the next frame is received while a command executes
    # A conv-first network takes packed input addresses (model.conv_layer): the map's (C, H, W) and
    # the (c_bits, x_bits, y_bits) of its addresses; None: flat input indices.
    in_shape: tuple[int, int, int] | None = None
    in_fields: tuple[int, int, int] | None = None
    # Weight rows per layer as WRITE addresses them: n_in, or after a conv layer the span of the
    # packed addresses (model.conv_layer.hardware_rows; its rows sit there); 0 for a conv layer,
    # whose kernels and biases are fixed at generation (its threshold is written as any layer's).
    rows: tuple[int, ...] = ()
    conv: tuple[bool, ...] = ()
    # HardwareConfig.registered_reads of the bitstream's core (and the link's own block RAM reads)
    registered_reads: bool = False

    @classmethod
    def of(cls, net: Network, lanes, clk_freq: int, baud: int, max_payload: int, max_events: int,
           stream: bool = False, registered_reads: bool = False):
        L = len(net.layers)
        lanes_t = tuple(lanes) if isinstance(lanes, (list, tuple)) else (int(lanes),) * L
        convs = _conv_geometries(net, lanes_t)
        first = convs[0][0]
        return cls(n_in=net.n_inputs, sizes=tuple(l.n for l in net.layers),
                   n_in_per_layer=tuple(l.n_in for l in net.layers),
                   weight_bits=tuple(l.weight_bits for l in net.layers),
                   membrane_bits=tuple(l.membrane_bits for l in net.layers),
                   lanes=lanes_t, readout=net.readout, timesteps=net.timesteps, clk_freq=int(clk_freq),
                   baud=int(baud), max_payload=int(max_payload), max_events=int(max_events),
                   stream=bool(stream),
                   in_shape=tuple(first.spec.in_shape) if first is not None else None,
                   in_fields=tuple(first.in_fields) if first is not None else None,
                   rows=tuple(0 if c is not None else n for c, n in convs),
                   conv=tuple(c is not None for c, _ in convs), registered_reads=bool(registered_reads))

    @property
    def n_layers(self) -> int:
        return len(self.sizes)

    def hardware(self) -> HardwareConfig:
        """The core's HardwareConfig as far as the link's cycles depend on it (lanes, max_events,
        registered_reads): what a twin of the board is built with."""
        return HardwareConfig(lanes=self.lanes, max_events=self.max_events, registered_reads=self.registered_reads)

    @property
    def n_out(self) -> int:
        return self.sizes[-1]

    @property
    def addr_bits(self) -> int:
        """Bits of a LOAD address: the core's (a conv-first core's are the packed fields)."""
        if self.in_fields is not None:
            return max(1, sum(self.in_fields))
        return max(1, (self.n_in - 1).bit_length())

    def load_address_bad(self, addr):
        """Whether LOAD refuses input address ``addr``: exactly the addresses the core refuses (flat:
        ``addr >= n_in``; conv-first: a bit above the fields, or a channel, row or column outside
        the map). Written with ``>>``, ``&``, ``>=`` and ``|`` only, so it takes a Python int (the
        twin) or an Amaranth value (the gateware, hdl/link/engine.py) alike: one rule for both."""
        if self.in_fields is None:
            return addr >= self.n_in
        cb, xb, yb = self.in_fields
        c, h, w = self.in_shape
        bad = (addr >> (cb + xb + yb)) != 0
        for shift, bits, size in ((0, cb, c), (cb, xb, w), (cb + xb, yb, h)):
            bad = bad | (((addr >> shift) & ((1 << bits) - 1)) >= size)
        return bad

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

    def layer_widths(self, layer: int) -> "LayerWidths":
        return LayerWidths(self.weight_bits[layer], self.membrane_bits[layer])

    def write_value_bytes(self, layer: int, target: CfgTarget) -> int:
        return value_bytes(value_bits(self.layer_widths(layer), target))

    def value_range(self, layer: int, target: CfgTarget) -> tuple[int, int]:
        """``protocol.value_range`` of ``layer``: the values a WRITE of ``target`` may carry."""
        return value_range(self.layer_widths(layer), target)

    @property
    def identify_static_len(self) -> int:
        return layout_len(IDENTIFY_HEAD) + self.n_layers * layout_len(IDENTIFY_LAYER)

    @property
    def identify_len(self) -> int:
        return self.identify_static_len + layout_len(IDENTIFY_TAIL)


@dataclass(frozen=True)
class LayerWidths:
    """The widths of one layer that fix its value ranges."""
    weight_bits: int
    membrane_bits: int


def identify_static(geo: LinkGeometry, struct: bytes, content: bytes) -> bytes:
    """The constant part of the identify payload (head and layers), as baked into the bitstream."""
    head = dict(magic=MAGIC, version=PROTOCOL_VERSION, n_layers=geo.n_layers, clk_freq=geo.clk_freq, baud=geo.baud,
                max_payload=geo.max_payload, max_events=geo.max_events, timesteps=geo.timesteps,
                flags=((IDENT_READOUT if geo.readout else 0) | (IDENT_STREAM if geo.stream else 0)
                       | (IDENT_REGISTERED if geo.registered_reads else 0)), event_bytes=geo.event_bytes,
                count_bytes=geo.count_bytes, membrane_bytes=geo.membrane_bytes, structure=struct, baked=content,
                n_in=geo.n_in)
    return pack_fields(IDENTIFY_HEAD, head) + b"".join(
        pack_fields(IDENTIFY_LAYER, dict(n=n, lanes=p)) for n, p in zip(geo.sizes, geo.lanes))


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
    stream: bool = False
    registered_reads: bool = False    # HardwareConfig.registered_reads of the board's core

    def hardware(self) -> HardwareConfig:
        """The board core's HardwareConfig as far as its answers and cycle counts depend on it
        (lanes, max_events, registered_reads): what the host builds its twin with."""
        return HardwareConfig(lanes=tuple(self.lanes), max_events=self.max_events,
                              registered_reads=self.registered_reads)

    @classmethod
    def parse(cls, p: bytes) -> "Identity":
        version_at = field(IDENTIFY_HEAD, "version").offset
        if p[:len(MAGIC)] != MAGIC:
            raise ValueError(f"identify payload does not start with the magic {MAGIC!r} "
                             f"(got {bytes(p[:len(MAGIC)])!r})")
        if len(p) <= version_at:
            # The magic alone: a truncated block, not a wrong magic.
            raise ValueError(f"identify payload has {len(p)} bytes, too short to hold the protocol version "
                             f"(byte {version_at})")
        if p[version_at] != PROTOCOL_VERSION:
            # Parse nothing else: a different version may lay the rest out differently.
            return cls(p[version_at], 0, 0, 0, 0, 0, False, 0, 0, 0, b"", b"", (), (), False, b"")
        L = p[field(IDENTIFY_HEAD, "n_layers").offset]
        head_len, layer_len = layout_len(IDENTIFY_HEAD), layout_len(IDENTIFY_LAYER)
        need = head_len + L * layer_len + layout_len(IDENTIFY_TAIL)
        if len(p) != need:
            raise ValueError(f"identify payload has {len(p)} bytes, expected {need} for {L} layers")
        h = parse_fields(IDENTIFY_HEAD, p)
        layers = [parse_fields(IDENTIFY_LAYER, p, head_len + i * layer_len) for i in range(L)]
        t = parse_fields(IDENTIFY_TAIL, p, head_len + L * layer_len)
        return cls(version=h["version"], clk_freq=h["clk_freq"], baud=h["baud"], max_payload=h["max_payload"],
                   max_events=h["max_events"], timesteps=h["timesteps"], readout=bool(h["flags"] & IDENT_READOUT),
                   event_bytes=h["event_bytes"], count_bytes=h["count_bytes"], membrane_bytes=h["membrane_bytes"],
                   structure=h["structure"], baked=h["baked"],
                   shape=(h["n_in"],) + tuple(x["n"] for x in layers), lanes=tuple(x["lanes"] for x in layers),
                   dirty=bool(t["dirty"] & 1), net_id=t["net_id"], stream=bool(h["flags"] & IDENT_STREAM),
                   registered_reads=bool(h["flags"] & IDENT_REGISTERED))


@dataclass
class StatusBlock:
    """The STATUS payload (fields: ``protocol.STATUS_FIELDS``). ``flags`` bits are
    ``protocol.STATUS_FLAGS``: bit0 dirty (weights written since the last SET_NET_ID), bit1 core
    overflow, bit2 core cfg_error, bit3 core done."""
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
        return pack_fields(STATUS_FIELDS, asdict(self))

    @classmethod
    def parse(cls, p: bytes) -> "StatusBlock":
        if len(p) != STATUS_LEN:
            raise ValueError(f"status payload has {len(p)} bytes, expected {STATUS_LEN}")
        return cls(**parse_fields(STATUS_FIELDS, p))


def check_encoder(geo: LinkGeometry, encoder: bool) -> None:
    """Refuse the on-chip encoder (ENCODE, BATCH) for a conv-first network: it makes flat input
    indices, which such a core does not take."""
    if encoder and geo.in_fields is not None:
        raise ValueError("encoder = True is not valid for a network whose first layer is a conv layer: the "
                         "on-chip encoder makes flat input indices, its core takes packed (row, column, channel) "
                         "addresses; valid: encoder = False (spikegate build --no-encoder), the host sends them")


def _conv_geometries(net: Network, lanes) -> list:
    """Per layer (ConvGeometry or None, rows as the hardware addresses them), by the core's own
    rule (model.conv_layer.conv_geometry)."""
    geos, out = [], []
    for l, P in enumerate(lanes):
        conv, n_in = conv_geometry(l, net.layers, geos, P, "block")
        geos.append(_Conv(conv))
        out.append((conv, n_in))
    return out


@dataclass(frozen=True)
class _Conv:
    conv: object


def encode_events(spikes: np.ndarray, geo: LinkGeometry) -> bytes:
    """One sample's spikes [T, n_in] as event words: per step the addresses that spiked, in
    increasing order, then an end-of-step word (top bit set, address bits 0). A conv-first
    network's addresses are the packed ones its core takes (model.conv_layer.input_addresses):
    the host translates, the board checks them as its core does (:meth:`LinkGeometry.load_address_bad`)."""
    spikes = np.asarray(spikes, dtype=bool)
    if spikes.ndim != 2 or spikes.shape[1] != geo.n_in:
        raise ValueError(f"spikes must have shape [T, {geo.n_in}], got {spikes.shape}")
    eb = geo.event_bytes
    out = bytearray()
    for t in range(spikes.shape[0]):
        flat = np.flatnonzero(spikes[t])
        if geo.in_fields is not None:
            flat = input_addresses(geo.in_fields, geo.in_shape, flat)
        for a in flat:
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
        elif geo.in_fields is not None:
            c, y, x = unpack(geo.in_fields, w)
            cur[(c * geo.in_shape[1] + y) * geo.in_shape[2] + x] = True
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
