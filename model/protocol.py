"""The host-link protocol (docs/protocol.md) and the cfg-port rules, written once.

Codes (:class:`Cmd`, :class:`Status`, :class:`CfgTarget`), frame constants, the byte layouts of the
identify and status blocks as field tables, and :func:`value_range`, the one rule for which values a
weight, a bias or a threshold may take. Network validation, the core and link twins, the host driver
and the gateware (as elaboration-time constants, and ``Cat`` of the status block) all use these.

Pure Python: the gateware imports this module, never the other way round.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "Cmd", "Status", "CfgTarget", "Encoding", "ENCODE_HEADER", "ENCODE_HEADER_LEN", "BATCH_HEADER",
    "BATCH_RECORD", "STATUS_NAMES", "SYNC_REQ", "SYNC_RESP", "MAGIC", "PROTOCOL_VERSION",
    "DIGEST_BYTES", "NET_ID_BYTES", "CHECKSUM_BYTES", "CYCLE_BYTES", "LOAD_CLEAR", "LOAD_RUN", "LOAD_FLAGS", "WRITE_HEADER",
    "WRITE_ROW_MAJOR", "REQUEST_HEADER",
    "RESPONSE_HEADER", "CRC_INIT", "Field", "IDENTIFY_HEAD", "IDENTIFY_LAYER", "IDENTIFY_TAIL", "IDENT_READOUT", "IDENT_STREAM", "IDENT_REGISTERED", "STREAM_WINDOW",
    "MIN_PAYLOAD", "MAX_PAYLOAD", "DEFAULT_MAX_PAYLOAD", "check_max_payload",
    "STATUS_FIELDS", "STATUS_FLAGS", "STATUS_LEN", "field", "layout_len", "pack_fields", "parse_fields",
    "signed_range", "value_range", "value_bits", "threshold_range", "StateKind", "READ_STATE_HEADER",
    "READ_STATE_HEADER_LEN", "MAX_STATE_ANSWER", "LEARN_MODES", "REWARD_BYTES", "RewardMode", "REWARD_PAYLOAD",
]

SYNC_REQ = 0xA5
SYNC_RESP = 0x5A
MAGIC = b"SGAT"
# Version 2 added CHECKSUM: a version-1 board cannot prove what it holds, and a version-2 host
# checks every network it writes before SET_NET_ID. Version 3 added row-major WRITEs
# (WRITE_ROW_MAJOR): a version-2 board refuses them, so the host must know.
PROTOCOL_VERSION = 3
CYCLE_BYTES = 4       # the cycle count (u32) that starts a RUN or LOAD-and-run answer
CHECKSUM_BYTES = 4    # CHECKSUM answer: CRC-32 (zlib.crc32) of the weight, bias and threshold values
DIGEST_BYTES = 16
NET_ID_BYTES = 16
# CRC-16/CCITT-FALSE: poly 0x1021, this initial value, no reflection, no final XOR.
CRC_INIT = 0xFFFF
REQUEST_HEADER = 4    # cmd, tag, len u16 (after the sync byte)
RESPONSE_HEADER = 5   # cmd, tag, status, len u16
WRITE_HEADER = 8      # layer u8, target u8, row u16, col u16, count u16
# WRITE target byte flag: the weights run on row-major past the end of the row (a bulk write).
WRITE_ROW_MAJOR = 0x80


class Cmd(IntEnum):
    IDENTIFY = 0x01
    STATUS = 0x02
    WRITE = 0x10
    SET_NET_ID = 0x11
    CHECKSUM = 0x12
    LOAD = 0x20
    RUN = 0x21
    READ = 0x22
    CLEAR = 0x23
    ENCODE = 0x24   # one sample as levels: the gateware makes the spikes, then runs
    BATCH = 0x25    # several ENCODE samples in one frame, one answer block per sample
    LEARN = 0x30    # learning mode on/off for every following run (plastic networks)
    REWARD = 0x31   # a signed 16-bit reward (networks with an rstdp layer)
    READ_STATE = 0x32  # bulk read of a plastic layer's learned state (weights, offsets, traces)


class Encoding(IntEnum):
    """ENCODE's ``encoding`` byte: the encoders the gateware runs (``model.encode.ON_CHIP``)."""
    RATE = 0
    LATENCY = 1
    BERNOULLI = 2


class Status(IntEnum):
    OK = 0
    BAD_CRC = 1
    UNKNOWN_CMD = 2
    BAD_LENGTH = 3
    RANGE = 4
    TIMEOUT = 5
    OVERFLOW = 6
    UNSUPPORTED = 7  # the bitstream's network has no such learning feature (LEARN, REWARD, READ_STATE)


STATUS_NAMES = {Status.OK: "ok", Status.BAD_CRC: "bad CRC", Status.UNKNOWN_CMD: "unknown command",
                Status.BAD_LENGTH: "bad payload length", Status.RANGE: "address or value out of range",
                Status.TIMEOUT: "frame cut short (timeout)", Status.OVERFLOW: "input buffer overflow",
                Status.UNSUPPORTED: "not supported by the network on the board"}


class CfgTarget(IntEnum):
    """What a cfg word (NetworkCore's ``cfg`` port) or a WRITE frame sets."""
    WEIGHT = 0
    BIAS = 1
    THRESHOLD = 2


# LOAD flags
LOAD_CLEAR = 0x01
LOAD_RUN = 0x02
LOAD_FLAGS = LOAD_CLEAR | LOAD_RUN


# LEARN's one payload byte: 0 = learning off, 1 = on.
LEARN_MODES = (0, 1)


class RewardMode(IntEnum):
    """REWARD's ``mode`` byte: when the rstdp layers apply the reward."""
    SAMPLE = 0  # once, now: W += (R * E) >>> reward_shift from the eligibility the last run left
    STEP = 1    # held: R(t) of every step of every following run (the core's step_reward), 0 at reset




class StateKind(IntEnum):
    """READ_STATE's ``kind`` byte: which learned state of a plastic layer to read."""
    WEIGHTS = 0      # W[i, j], row-major (index i * n + j), two's complement of ceil(weight_bits / 8) bytes
    OFFSETS = 1      # threshold offsets off[j], unsigned, ceil(offset_bits / 8) bytes
    PRE_TRACES = 2   # pre-synaptic traces P[i], unsigned, ceil(trace_bits / 8) bytes
    POST_TRACES = 3  # post-synaptic traces Q[j], unsigned, ceil(trace_bits / 8) bytes
    ELIGIBILITY = 4  # rstdp: E[i, j], row-major (index i * n + j), two's complement of ceil(elig_bits / 8) bytes


# The longest READ_STATE answer (the response's 16-bit length field).
MAX_STATE_ANSWER = 0xFFFF


# --- value ranges --------------------------------------------------------------------------------

def signed_range(bits: int) -> tuple[int, int]:
    """The closed range of a two's-complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def value_bits(layer, target: CfgTarget) -> int:
    """Bits of a ``target`` value of ``layer`` (anything with ``weight_bits`` and ``membrane_bits``)."""
    return layer.weight_bits if CfgTarget(target) == CfgTarget.WEIGHT else layer.membrane_bits


def value_range(layer, target: CfgTarget) -> tuple[int, int]:
    """The closed range ``(lo, hi)`` of a ``target`` value of ``layer``: weights fit ``weight_bits``
    signed, biases the membrane, thresholds ``0 <= theta <= 2^(V-1) - 2`` so that ``v > theta`` stays
    reachable by a saturated membrane. (A readout layer has no threshold to set at all.)"""
    if CfgTarget(target) == CfgTarget.THRESHOLD:
        return threshold_range(layer.membrane_bits)
    return signed_range(value_bits(layer, target))


def threshold_range(membrane_bits: int) -> tuple[int, int]:
    """The threshold part of :func:`value_range`, for code that has widths before it has a layer."""
    return 0, signed_range(membrane_bits)[1] - 1


# --- byte layouts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    """One little-endian field of a byte layout: ``size`` bytes at ``offset``; ``raw`` fields are
    bytes (magic, digests), the others unsigned integers."""
    name: str
    offset: int
    size: int
    raw: bool = False


def _table(*spec) -> tuple[Field, ...]:
    out, offset = [], 0
    for name, size, *raw in spec:
        out.append(Field(name, offset, size, bool(raw and raw[0])))
        offset += size
    return tuple(out)


def field(fields, name: str) -> Field:
    """The field called ``name`` of a layout."""
    return next(f for f in fields if f.name == name)


def layout_len(fields) -> int:
    return fields[-1].offset + fields[-1].size


def pack_fields(fields, values: dict) -> bytes:
    """Bytes of ``values`` (name -> int or bytes) laid out as ``fields``."""
    b = bytearray()
    for f in fields:
        v = values[f.name]
        if f.raw:
            v = bytes(v)
            if len(v) != f.size:
                raise ValueError(f"{f.name} must be {f.size} bytes, got {len(v)}")
            b += v
        else:
            b += (int(v) & ((1 << (8 * f.size)) - 1)).to_bytes(f.size, "little")
    return bytes(b)


def parse_fields(fields, data: bytes, offset: int = 0) -> dict:
    """``{name: value}`` of ``fields`` read from ``data`` starting at ``offset``."""
    data = bytes(data)
    return {f.name: data[offset + f.offset:offset + f.offset + f.size] if f.raw
            else int.from_bytes(data[offset + f.offset:offset + f.offset + f.size], "little") for f in fields}


# Identify block: a head, one entry per layer, then the tail the host can change.
IDENTIFY_HEAD = _table(
    ("magic", 4, True), ("version", 1), ("n_layers", 1), ("clk_freq", 4), ("baud", 4), ("max_payload", 2),
    ("max_events", 4), ("timesteps", 2), ("flags", 1), ("event_bytes", 1), ("count_bytes", 1),
    ("membrane_bytes", 1), ("structure", DIGEST_BYTES, True), ("baked", DIGEST_BYTES, True), ("n_in", 2))
IDENTIFY_LAYER = _table(("n", 2), ("lanes", 1))
IDENTIFY_TAIL = _table(("dirty", 1), ("net_id", NET_ID_BYTES, True))
# IDENTIFY_HEAD flags
IDENT_READOUT = 0x01
IDENT_STREAM = 0x02    # the board takes the next frame while it executes one (docs/protocol.md, "Streaming")
# the bitstream registers its block RAM reads (HardwareConfig.registered_reads): its runs take one
# or two cycles more per layer step (model.hardware.read_stages_for), so the host's twin needs it
# to predict the board's cycle counts
IDENT_REGISTERED = 0x04
# Requests a host may have unanswered on a streaming board: one executing, one received behind it.
STREAM_WINDOW = 2

# The request payload buffer (``max_payload`` bytes): at least a WRITE or BATCH header and a few
# values, at most what the identify block's 2-byte field and a frame's 2-byte length can say.
MIN_PAYLOAD, MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD = 16, 0xFFFF, 512


def check_max_payload(max_payload) -> int:
    """``max_payload`` itself when it is a valid request buffer size in bytes; ValueError otherwise."""
    if isinstance(max_payload, bool) or not isinstance(max_payload, int) \
            or not MIN_PAYLOAD <= max_payload <= MAX_PAYLOAD:
        raise ValueError(f"max_payload = {max_payload!r} is not valid; valid: an integer from {MIN_PAYLOAD} "
                         f"to {MAX_PAYLOAD} bytes")
    return max_payload

# Status block; ``flags`` bits in STATUS_FLAGS order (bit 0 first).
STATUS_FIELDS = _table(
    ("flags", 1), ("last_cycles", 4), ("uptime", 6), ("frames_ok", 4), ("crc_errors", 2), ("frame_errors", 2),
    ("timeouts", 2), ("rx_errors", 2), ("cfg_writes", 4), ("loaded", 3))
STATUS_FLAGS = ("dirty", "overflow", "cfg_error", "done")

# ENCODE request: this header, then one level byte (0..255) per network input.
ENCODE_HEADER = _table(("encoding", 1), ("state", 4))
ENCODE_HEADER_LEN = layout_len(ENCODE_HEADER)
# BATCH request: the encoding byte, then per sample its state and its levels (a BATCH_RECORD
# followed by n_in level bytes); the answer is one block per sample, each a LOAD-and-run answer.
BATCH_HEADER = _table(("encoding", 1))
BATCH_RECORD = _table(("state", 4))
STATUS_LEN = layout_len(STATUS_FIELDS)
# READ_STATE request (its whole payload); the answer is ``count`` values from index ``start``.
READ_STATE_HEADER = _table(("layer", 1), ("kind", 1), ("start", 4), ("count", 2))
READ_STATE_HEADER_LEN = layout_len(READ_STATE_HEADER)
# REWARD request (its whole payload): a RewardMode and a signed 16-bit reward.
REWARD_PAYLOAD = _table(("mode", 1), ("reward", 2))
REWARD_BYTES = layout_len(REWARD_PAYLOAD)
