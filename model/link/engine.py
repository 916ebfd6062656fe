"""Byte-level twin of :class:`spikegate.hdl.link.CommandEngine`: executes checked request frames
on the core twin and answers with a status and a payload."""
from __future__ import annotations

import numpy as np

from ..conv_layer import hardware_rows_of
from ..core import NetworkCore
from ..encode import InputEncoder
from ..network import Network
from ..protocol import (BATCH_HEADER, BATCH_RECORD, CHECKSUM_BYTES, CYCLE_BYTES, ENCODE_HEADER, ENCODE_HEADER_LEN,
                        LOAD_CLEAR, LOAD_FLAGS, LOAD_RUN, NET_ID_BYTES, WRITE_HEADER, WRITE_ROW_MAJOR, CfgTarget, Cmd,
                        Encoding, RewardMode, Status, layout_len, parse_fields, value_range)
from .checksum import expected_checksum
from .frames import from_le, to_le
from .learn_cmds import LearnTwin
from .geometry import LinkGeometry, check_encoder, StatusBlock, content_digest, decode_events, identify_static, structure_digest

__all__ = ["CommandEngine", "encode_cycles", "batch_fits"]

# ENCODE, from the cycle the engine takes the frame to its run's start pulse, besides the
# encoder's own cycles: decode the command, two cycles per header byte (address, read), check
# the header and start the encoder, hand its last word to the core (the words pass a register
# on the way), see it finish.
ENCODE_OVERHEAD = 1 + 2 * ENCODE_HEADER_LEN + 1 + 1 + 1


def batch_fits(geo) -> bool:
    """Whether BATCH is allowed: no sample can overflow the input buffer (T (n_in + 1) words at
    most), so every answer block is known to be a run's before the first one is sent."""
    return geo.timesteps * (geo.n_in + 1) <= geo.max_events


def encode_fits(geo) -> bool:
    """Whether an ENCODE frame (its header and n_in levels) fits the request buffer: the board
    answers BAD_LENGTH to a longer one (a 784-input sample needs 789 of the default 512 bytes)."""
    return ENCODE_HEADER_LEN + geo.n_in <= geo.max_payload


def encode_cycles(geo) -> int:
    """Cycles of an ENCODE from the engine taking the frame to the core's ``start`` pulse (the
    run itself then takes the cycle formula's count): the header, then
    ``model.encode.InputEncoder.cycles`` = T (n_in + 1) + 1 to make the load words."""
    return ENCODE_OVERHEAD + InputEncoder(geo.n_in, geo.timesteps).cycles

def _flat_rows(geometry, l: int):
    """For a layer after a conv layer: the contract row each of its hardware rows holds (-1: none)."""
    prev = geometry[l - 1].conv if l else None
    if prev is None or geometry[l].conv is not None:
        return None
    rows = hardware_rows_of(prev.out_fields, prev.spec.out_shape)
    flat = np.full(geometry[l].n_in, -1, np.int64)
    flat[rows] = np.arange(len(rows))
    return flat


# Commands without a request payload.
_BARE = (Cmd.IDENTIFY, Cmd.STATUS, Cmd.RUN, Cmd.READ, Cmd.CLEAR, Cmd.CHECKSUM)


class CommandEngine:
    """The commands of docs/protocol.md on a network baked in as ``net``.

    Weights, biases and thresholds written through the link live in this engine's own arrays (and
    in its core twin); :attr:`net` is the network they make up now. ``stat`` holds the status
    counters; the decoder's events are counted into it by :class:`spikegate.model.link.HostLink`.
    """

    def __init__(self, net: Network, geo: LinkGeometry, core: NetworkCore, *, encoder: bool = True):
        check_encoder(geo, encoder)
        self.baked, self.geo, self.core = net, geo, core
        self.weights = [layer.weights.copy() for layer in net.layers]
        self.bias = [layer.bias.copy() for layer in net.layers]
        self.threshold = [layer.threshold for layer in net.layers]
        # Per layer after a conv layer: the contract row of each hardware row (-1: unused), else None.
        self.flat_rows = [_flat_rows(core.geometry, l) for l in range(len(net.layers))]
        self.ident_static = identify_static(geo, structure_digest(net), content_digest(net))
        self.net_id = content_digest(net)
        self.dirty = False
        self.stat = StatusBlock()
        self.events = bytearray()
        self.counts = np.zeros(geo.n_out, dtype=np.int64)
        self.membranes = np.zeros(geo.n_out, dtype=np.int64)
        self.done = False
        self.cfg_error = False
        self.overflow = False
        # None: built without the on-chip encoder (ENCODE and BATCH are then unknown commands)
        self.encoder = InputEncoder(geo.n_in, geo.timesteps) if encoder else None
        # LEARN, REWARD, READ_STATE; ``learner.learning`` is the mode every run reads
        self.learner = LearnTwin(net, core)

    @property
    def net(self) -> Network:
        """The network as written so far (the baked one until a WRITE)."""
        layers = [layer.replace(weights=w, bias=b, threshold=t) for layer, w, b, t in
                  zip(self.baked.layers, self.weights, self.bias, self.threshold)]
        return self.baked.replace(layers=layers)

    def status_block(self) -> StatusBlock:
        s = self.stat
        s.flags = int(self.dirty) | (int(self.overflow) << 1) | (int(self.cfg_error) << 2) | (int(self.done) << 3)
        s.loaded = len(self.events) // self.geo.event_bytes
        return s

    def outputs(self) -> bytes:
        g = self.geo
        b = bytearray()
        for k in range(g.n_out):
            b += to_le(int(self.counts[k]), g.count_bytes) + to_le(int(self.membranes[k]), g.membrane_bytes)
        return bytes(b)

    def execute(self, cmd: int, p: bytes) -> tuple[Status, bytes]:
        status, payload = self._execute(cmd, p)
        if status != Status.OK:
            self.stat.frame_errors += 1
        return status, payload

    def _execute(self, cmd: int, p: bytes) -> tuple[Status, bytes]:
        if cmd not in tuple(Cmd) or (cmd in (Cmd.ENCODE, Cmd.BATCH) and self.encoder is None):
            return Status.UNKNOWN_CMD, b""
        if cmd in _BARE and p:
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
        if cmd == Cmd.CHECKSUM:
            # Read back from the core twin, as the gateware reads its memories.
            return Status.OK, to_le(expected_checksum(self.baked, self.core.param, self.core.geometry),
                                    CHECKSUM_BYTES)
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
        if cmd == Cmd.ENCODE:
            return self._encode(p)
        if cmd == Cmd.BATCH:
            return self._batch(p)
        if cmd == Cmd.LEARN:
            return self.learner.learn(p)
        if cmd == Cmd.REWARD:
            status, answer = self.learner.reward(p)
            if status == Status.OK and p[0] == RewardMode.SAMPLE:
                self.done = True  # the core's done flag ends the reward's sweep, as it ends a run
            return status, answer
        if cmd == Cmd.READ_STATE:
            return self.learner.read_state(p)
        return self._load(p)

    def _clear(self):
        self.events = bytearray()
        self.done = False
        self.cfg_error = False
        self.overflow = False

    def _encode(self, p: bytes) -> tuple[Status, bytes]:
        """ENCODE: levels in, the gateware's encoder makes the load words, then the run."""
        g = self.geo
        if len(p) != ENCODE_HEADER_LEN + g.n_in:
            return Status.BAD_LENGTH, b""
        h = parse_fields(ENCODE_HEADER, p)
        if h["encoding"] not in tuple(Encoding) or (h["encoding"] == Encoding.BERNOULLI) != (h["state"] != 0):
            return Status.RANGE, b""
        levels = np.frombuffer(bytes(p[ENCODE_HEADER_LEN:]), dtype=np.uint8).astype(np.int64)
        words = self.encoder.words(levels, Encoding(h["encoding"]).name.lower(), h["state"])
        self._clear()
        ev = b"".join(to_le(g.eos_flag if eos else addr, g.event_bytes) for addr, eos in words)
        if len(words) > g.max_events:
            # The core keeps the words that fit and refuses the rest: nothing runs.
            self.events = bytearray(ev[:g.max_events * g.event_bytes])
            self.overflow = True
            return Status.OVERFLOW, b""
        self.events = bytearray(ev)
        self._run()
        return Status.OK, to_le(self.stat.last_cycles, 4) + self.outputs()

    def _batch(self, p: bytes) -> tuple[Status, bytes]:
        """BATCH: ENCODE of each record in turn; every check passes before the first runs."""
        g = self.geo
        rec = layout_len(BATCH_RECORD) + g.n_in
        head = layout_len(BATCH_HEADER)
        if len(p) < head + rec or (len(p) - head) % rec:
            return Status.BAD_LENGTH, b""
        records = [bytes(p[i:i + rec]) for i in range(head, len(p), rec)]
        if len(records) * (CYCLE_BYTES + g.output_bytes) > 0xFFFF:
            return Status.BAD_LENGTH, b""
        code = p[0]
        bernoulli = code == Encoding.BERNOULLI
        if (code not in tuple(Encoding) or not batch_fits(g)
                or any(bernoulli != (from_le(r[:4]) != 0) for r in records)):
            return Status.RANGE, b""
        answers = [self._encode(bytes([code]) + r) for r in records]
        assert all(st == Status.OK for st, _ in answers)  # batch_fits: no sample overflows
        return Status.OK, b"".join(a for _, a in answers)

    def _write(self, p: bytes) -> tuple[Status, bytes]:
        g = self.geo
        if len(p) < WRITE_HEADER:
            return Status.BAD_LENGTH, b""
        layer, target, row, col, count = p[0], p[1], from_le(p[2:4]), from_le(p[4:6]), from_le(p[6:8])
        bulk, target = bool(target & WRITE_ROW_MAJOR), target & ~WRITE_ROW_MAJOR
        if layer >= g.n_layers or target not in tuple(CfgTarget) or (bulk and target != CfgTarget.WEIGHT):
            return Status.RANGE, b""
        target = CfgTarget(target)
        vb = g.write_value_bytes(layer, target)
        if count == 0 or len(p) != WRITE_HEADER + count * vb:
            return Status.BAD_LENGTH, b""
        n_in, n = g.rows[layer], g.sizes[layer]
        L = self.baked.layers[layer]
        if target == CfgTarget.WEIGHT and bulk:
            # Row-major from (row, col): W[row, n-1] is followed by W[row+1, 0].
            bad = row >= n_in or col >= n or row * n + col + count > n_in * n
        elif target == CfgTarget.WEIGHT:
            bad = row >= n_in or col + count > n
        elif target == CfgTarget.BIAS:
            bad = row != 0 or col + count > n or g.conv[layer]
        else:
            bad = row != 0 or col != 0 or count != 1 or L.readout
        vals = [from_le(p[WRITE_HEADER + i * vb:WRITE_HEADER + (i + 1) * vb], signed=True) for i in range(count)]
        lo, hi = value_range(L, target)
        if bad or not all(lo <= v <= hi for v in vals):
            return Status.RANGE, b""
        for i, v in enumerate(vals):
            # Validated above, so the core accepts every word: nothing is ever half-applied.
            r, c = divmod(row * n + col + i, n) if bulk else (row, col + i)
            assert self.core.cfg(layer, target, r, c, v)
        if target == CfgTarget.WEIGHT:
            at = row * n + col + np.arange(count)
            flat = self.flat_rows[layer]
            if flat is not None:  # rows at packed addresses: keep the contract's, drop the unused
                r = flat[at // n]
                self.weights[layer][r[r >= 0], (at % n)[r >= 0]] = np.asarray(vals)[r >= 0]
            else:
                self.weights[layer].reshape(-1)[at] = vals
        elif target == CfgTarget.BIAS:
            self.bias[layer][col:col + count] = vals
        else:
            self.threshold[layer] = vals[0]
        self.stat.cfg_writes += count
        self.dirty = True
        return Status.OK, b""

    def _load(self, p: bytes) -> tuple[Status, bytes]:
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
            if (w & g.eos_flag and addr) or (not w & g.eos_flag and g.load_address_bad(addr)):
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
        learning = self.learner.learning
        res = self.core.run(self.spikes(), learn=learning, reward=self.learner.step_reward)
        if learning:
            self.dirty = True  # the weights may have changed: they are no longer the network id's
        self.counts = np.asarray(res.counts, dtype=np.int64)
        self.membranes = np.asarray(res.membranes[-1], dtype=np.int64)
        self.stat.last_cycles = res.cycles
        self.done = True
