"""Host driver for a spikegate board over its UART link (protocol: docs/protocol.md).

Works with anything pyserial's ``serial_for_url`` opens: a real port (``/dev/ttyUSB1``, ``COM3``),
``socket://HOST:PORT`` (e.g. the simulated board of :mod:`spikegate.sim.link_bridge`) or
``loop://``. Every request carries a tag that the board echoes, so a late answer to an abandoned
request is recognised and dropped; a request that gets no valid answer is resent after a resync.

Typical use::

    with Board("/dev/ttyUSB1") as b:
        b.ensure_network(net)                 # checks identity, loads weights if they differ
        counts, membranes, cycles = b.run_sample(spikes)   # spikes: bool [T, n_in]
"""
from __future__ import annotations

import logging
import time

import numpy as np

from .errors import UserError
from .model import link as proto
from .model.link import Identity, StatusBlock
from .host_encode import OnChipEncoding, encode_payload
from .host_learn import OnChipLearning
from .host_stream import Pipelining
from .host_io import FLUSH_LIMIT, TRANSIENT, LinkError, attempt_deadline, flush_input, open_port, read_response
from .model.protocol import (CHECKSUM_BYTES, CYCLE_BYTES, IDENTIFY_HEAD, IDENTIFY_LAYER, IDENTIFY_TAIL, MAX_STATE_ANSWER,
                             STATUS_LEN, WRITE_HEADER, WRITE_ROW_MAJOR, CfgTarget, Cmd, Status, layout_len)
from .model.core import weight_cfg_words
from .model.network import Network

__all__ = ["Board", "encode_payload", "LinkError", "DeviceError", "WrongDevice", "ProtocolMismatch", "NetworkMismatch",
           "ChecksumMismatch", "default_baud", "SIM_BAUD"]

log = logging.getLogger(__name__)

# The simulated board's socket carries bytes at any rate; this only sizes the attempt deadlines.
SIM_BAUD = 115_200


def default_baud(board: str) -> int:
    """The baud rate ``board``'s bitstreams are built with unless ``--baud`` says otherwise
    (``Board.baud`` in :mod:`spikegate.boards.targets`); ``SIM_BAUD`` for ``"sim"``."""
    if board == "sim":
        return SIM_BAUD
    from .boards.targets import get_board
    return get_board(board).baud


class DeviceError(UserError):
    """The board answered a request with an error status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class WrongDevice(UserError):
    """Something answered, but it is not a spikegate board."""


class ProtocolMismatch(UserError):
    """The board speaks another protocol version."""


class NetworkMismatch(UserError):
    """The board's network is not the one the user asked for."""


class ChecksumMismatch(UserError):
    """The board's CHECKSUM of its weights, biases and thresholds is not the network's."""


_CMD_NAMES = {c: c.name.lower() for c in Cmd}
# Bounds before identify: the largest identify block (255 layers) and the largest length field.
MAX_IDENTIFY = layout_len(IDENTIFY_HEAD) + 255 * layout_len(IDENTIFY_LAYER) + layout_len(IDENTIFY_TAIL)
MAX_PAYLOAD_FIELD = 0xFFFF


def write_payload(geo: proto.LinkGeometry, layer: int, target: CfgTarget, row: int, col: int, values, *,
                  row_major: bool = False) -> bytes:
    """One WRITE payload: ``values`` into ``target`` of ``layer`` from (``row``, ``col``) on (with
    ``row_major``, weights continue on the next row past the row's end: ``WRITE_ROW_MAJOR``). A value
    outside the target's range (``protocol.value_range``) is refused here, before the board would."""
    lo, hi = geo.value_range(layer, target)
    bad = [int(v) for v in values if not lo <= int(v) <= hi]
    if bad:
        raise ValueError(f"{CfgTarget(target).name.lower()} value {bad[0]} of layer {layer} is out of range; "
                         f"valid: {lo} <= value <= {hi}")
    vb = geo.write_value_bytes(layer, target)
    return (bytes([layer, target | (WRITE_ROW_MAJOR if row_major else 0)]) + proto.to_le(row, 2) + proto.to_le(col, 2) + proto.to_le(len(values), 2)
            + b"".join(proto.to_le(int(v), vb) for v in values))


class Board(OnChipEncoding, OnChipLearning, Pipelining):
    """A connection to one board.

    ``timeout`` is the longest silence (seconds) tolerated while waiting for or inside an answer;
    each attempt also ends at its deadline (:func:`spikegate.host_io.attempt_deadline`) however
    many bytes keep arriving; ``retries`` how often a request is resent after no answer or a
    damaged one.
    """

    def __init__(self, port: str, *, baud: int = 115_200, timeout: float = 2.0, retries: int = 3,
                 settle: float | None = None):
        import serial
        if not isinstance(port, str) or not port:
            raise ValueError(f"port = {port!r} is not valid; valid: a serial port name or a pyserial URL "
                             "such as /dev/ttyUSB1, COM3 or socket://127.0.0.1:7777")
        if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
            raise ValueError(f"baud = {baud!r} is not valid; valid: a positive integer")
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(f"timeout = {timeout!r} is not valid; valid: a positive number of seconds")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries = {retries!r} is not valid; valid: an integer >= 0")
        self.port, self.baud, self.timeout, self.retries = port, baud, float(timeout), retries
        # After a damaged exchange, wait this long so the board's frame timeout (20 ms by default)
        # has expired and its answer to the fragment has arrived before the line is flushed.
        self.settle = 0.05 if settle is None else settle
        try:
            self.ser = open_port(port, baud, self.timeout)
        except (serial.SerialException, ValueError, OSError) as e:
            raise UserError(f"cannot open port {port!r}: {e}") from None
        self._low_latency()
        self._tag = 0
        self.identity: Identity | None = None
        self.geo: proto.LinkGeometry | None = None
        self.bytes_sent = 0
        self.bytes_received = 0

    def _low_latency(self):
        """Ask the OS to hand over short answers at once: every request waits for its answer, and
        an FTDI bridge otherwise holds a short answer for its 16 ms latency timer (Linux's
        ftdi_sio sets the timer to 1 ms in low-latency mode). Best effort: URLs and other
        systems keep their defaults."""
        setter = getattr(self.ser, "set_low_latency_mode", None)
        if setter is None:
            return
        try:
            setter(True)
        except (ValueError, OSError) as e:
            log.debug("low-latency mode not available on %s: %s", self.port, e)

    def close(self):
        self.ser.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- transport ----------------------------------------------------------------------------

    def _max_answer(self, cmd: int) -> int:
        """The longest payload the board can answer to ``cmd`` (bounds the attempt's deadline)."""
        g = self.geo
        outputs = CYCLE_BYTES + g.output_bytes if g else MAX_PAYLOAD_FIELD
        return {Cmd.IDENTIFY: g.identify_len if g else MAX_IDENTIFY, Cmd.STATUS: STATUS_LEN,
                Cmd.CHECKSUM: CHECKSUM_BYTES, Cmd.WRITE: 0, Cmd.SET_NET_ID: 0, Cmd.CLEAR: 0,
                Cmd.RUN: CYCLE_BYTES, Cmd.READ: outputs, Cmd.LOAD: outputs, Cmd.ENCODE: outputs,
                Cmd.BATCH: self.batch_limit() * outputs if g else MAX_PAYLOAD_FIELD, Cmd.LEARN: 0, Cmd.REWARD: 0,
                Cmd.READ_STATE: MAX_STATE_ANSWER}.get(cmd, MAX_PAYLOAD_FIELD)

    def _resync(self):
        time.sleep(self.settle)
        flush_input(self.ser, self.settle + FLUSH_LIMIT, self.port)

    def _write(self, frame: bytes):
        try:
            self.ser.write(frame)
            self.ser.flush()
        except Exception as e:  # pyserial raises several types for a vanished port
            raise LinkError(f"writing to {self.port} failed: {e}") from None
        self.bytes_sent += len(frame)

    @staticmethod
    def _refused(cmd: int, status: int) -> DeviceError:
        name = _CMD_NAMES.get(cmd, f"0x{cmd:02x}")
        return DeviceError(f"the board refused {name}: {proto.STATUS_NAMES.get(status, f'status {status}')}", status)

    def request(self, cmd: int, payload: bytes = b"", *, retry: bool = True) -> bytes:
        """Send one request and return the payload of its OK answer.

        With ``retry`` a request without a valid answer is resent (only for requests that are
        safe to repeat); an error status other than a damaged frame raises ``DeviceError``.
        """
        attempts = 1 + (self.retries if retry else 0)
        name = _CMD_NAMES.get(cmd, f"0x{cmd:02x}")
        last = "no answer"
        for attempt in range(attempts):
            self._tag = (self._tag + 1) & 0xFF
            frame = proto.encode_request(cmd, self._tag, payload)
            self._write(frame)
            max_answer = self._max_answer(cmd)
            deadline = attempt_deadline(self.timeout, self.baud, len(frame), max_answer)
            got, received = read_response(self.ser, self._tag, deadline=deadline, timeout=self.timeout,
                                          max_answer=max_answer, port=self.port, cmd=cmd & 0xFF)
            self.bytes_received += received.count
            if got is None:
                last = (f"no valid answer within {self.timeout:g} s of silence or the attempt's "
                        f"{deadline:.2f} s deadline ({received.describe()})")
                self._resync()
                continue
            _, _, status, rpayload = got
            if status == Status.OK:
                return rpayload
            if status in TRANSIENT:
                last = f"the board reported {proto.STATUS_NAMES[status]}"
                self._resync()
                continue
            raise self._refused(cmd, status)
        raise LinkError(f"{name} on {self.port} failed after {attempts} attempt(s): {last}. Is the board "
                        f"powered and flashed with a spikegate bitstream, and is the baud rate {self.baud}?")

    # --- commands -----------------------------------------------------------------------------

    def identify(self) -> Identity:
        p = self.request(Cmd.IDENTIFY)
        if p[:len(proto.MAGIC)] != proto.MAGIC:
            raise WrongDevice(f"the device on {self.port} is not a spikegate board (identify magic "
                              f"{bytes(p[:len(proto.MAGIC)])!r}, expected {proto.MAGIC!r})")
        try:
            ident = Identity.parse(p)
        except ValueError as e:
            raise WrongDevice(f"the device on {self.port} answered identify with the spikegate magic but a "
                              f"malformed block: {e}") from None
        if ident.version != proto.PROTOCOL_VERSION:
            raise ProtocolMismatch(f"the board on {self.port} speaks host-link protocol version {ident.version}; "
                                   f"this spikegate speaks version {proto.PROTOCOL_VERSION}: rebuild and flash "
                                   "the bitstream with this spikegate, or use the matching spikegate version")
        self.identity = ident
        return ident

    def status(self) -> StatusBlock:
        return StatusBlock.parse(self.request(Cmd.STATUS))

    def checksum(self) -> int:
        """The board's CRC-32 of its weights, biases and thresholds (``model.link.expected_checksum``)."""
        return proto.from_le(self.request(Cmd.CHECKSUM))

    def verify_network(self, net: Network, *, name: str = "the network"):
        """Raise ChecksumMismatch unless the board's weights, biases and thresholds are ``net``'s."""
        got, want = self.checksum(), proto.expected_checksum(net)
        geo = self.geo or self._geometry(net)
        if got != want:
            raise ChecksumMismatch(
                f"the board on {self.port} answered CHECKSUM 0x{got:08x} but {name} needs 0x{want:08x}: its "
                "weights, biases or thresholds differ from the network's (a frame damaged on the line can do "
                "this); the board was not marked as holding it: load the network again"
                + ("; a conv layer's kernels and biases are fixed at generation and cannot be loaded over the "
                   "link: rebuild the bitstream for this network's kernels" if any(geo.conv) else ""))

    def _geometry(self, net: Network) -> proto.LinkGeometry:
        i = self.identity or self.identify()
        return proto.LinkGeometry.of(net, list(i.lanes), i.clk_freq, i.baud, i.max_payload, i.max_events,
                                     stream=i.stream, registered_reads=i.registered_reads)

    def check_network(self, net: Network, *, name: str = "the network") -> bool:
        """Raise NetworkMismatch unless the board was built for ``net``'s structure; return True
        when its current weights are ``net``'s too."""
        i = self.identify()
        if i.structure != proto.structure_digest(net) or i.shape != net.shape:
            raise NetworkMismatch(
                f"the board on {self.port} was built for a network of shape {list(i.shape)} (structure "
                f"{i.structure.hex()[:16]}) but {name} has shape {list(net.shape)} (structure "
                f"{proto.structure_digest(net).hex()[:16]}); only weights, biases and thresholds can be "
                "loaded over the link: rebuild the bitstream for this network")
        self.geo = self._geometry(net)
        return not i.dirty and i.net_id == proto.content_digest(net)

    def ensure_network(self, net: Network, *, load: bool = True, name: str = "the network",
                       progress=None, verify: bool = False) -> bool:
        """Make the board run ``net``: returns True if weights had to be loaded. With
        ``load=False`` a board holding other weights raises NetworkMismatch instead; ``verify``
        also checks the contents of a board that already claims to hold ``net``."""
        if self.check_network(net, name=name):
            if verify:
                self.verify_network(net, name=name)
            return False
        if not load:
            raise NetworkMismatch(
                f"the board on {self.port} holds network {self.identity.net_id.hex()[:16]}"
                f"{' (modified)' if self.identity.dirty else ''} but {name} is "
                f"{proto.content_digest(net).hex()[:16]}; allow loading its weights over the link")
        self.write_network(net, progress=progress, name=name)
        return True

    def write_frames(self, net: Network) -> list[bytes]:
        """The WRITE payloads that load all of ``net``'s weights, biases and thresholds: each
        layer's weights row-major in frames as full as ``max_payload`` allows (bulk writes), then
        its biases, then its threshold. A dense layer after a conv layer has its rows at the conv
        layer's packed addresses (``model.core.weight_cfg_words``; the unused rows between them are
        written 0, as the bitstream holds them); a conv layer's kernels and biases are fixed at
        generation, so only its threshold is written (CHECKSUM then tells a board whose kernels differ)."""
        geo = self.geo or self._geometry(net)
        frames = []
        for l, layer in enumerate(net.layers):
            targets = [] if geo.conv[l] else [(CfgTarget.WEIGHT, self._weight_rows(net, geo, l).reshape(-1)),
                                              (CfgTarget.BIAS, layer.bias)]
            for target, values in targets:
                per = max(1, (geo.max_payload - WRITE_HEADER) // geo.write_value_bytes(l, target))
                for i in range(0, len(values), per):
                    r, c = divmod(i, layer.n)
                    frames.append(write_payload(geo, l, target, r, c, values[i:i + per],
                                                row_major=target == CfgTarget.WEIGHT))
            if not layer.readout:
                frames.append(write_payload(geo, l, CfgTarget.THRESHOLD, 0, 0, [layer.threshold]))
        return frames

    def _weight_rows(self, net: Network, geo: proto.LinkGeometry, l: int) -> np.ndarray:
        """Layer ``l``'s weights as the board's memory holds them: ``geo.rows[l]`` rows."""
        if not (l and geo.conv[l - 1]):
            return net.layers[l].weights
        i = self.identity or self.identify()
        w = np.zeros((geo.rows[l], net.layers[l].n), np.int64)
        for _, _, row, col, v in weight_cfg_words(net, [l], i.hardware()):
            w[row, col] = v
        return w

    def write_network(self, net: Network, progress=None, *, name: str = "the network"):
        """Load ``net``'s parameters (same structure as the bitstream's), check what the board now
        holds against ``net`` (CHECKSUM: the frame CRC-16 lets heavy line damage through), then
        record its digest."""
        self.check_network(net, name=name)
        frames = self.write_frames(net)
        for f in frames:
            self.request(Cmd.WRITE, f)
            if progress:
                progress(1)
        self.verify_network(net, name=name)
        self.request(Cmd.SET_NET_ID, proto.content_digest(net))
        self.identify()

    def load_frames(self, spikes: np.ndarray) -> list[bytes]:
        """LOAD payloads for one sample: the first clears, the last runs."""
        geo = self.geo
        if geo is None:
            raise UserError("call check_network(net) or ensure_network(net) before running samples")
        ev = proto.encode_events(spikes, geo)
        words = len(ev) // geo.event_bytes
        if words > geo.max_events:
            raise ValueError(f"the sample needs {words} input words (spikes plus one per step) but the board's "
                             f"input buffer holds max_events = {geo.max_events}")
        per = (geo.max_payload - 1) // geo.event_bytes * geo.event_bytes
        chunks = [ev[i:i + per] for i in range(0, len(ev), per)] or [b""]
        out = []
        for i, c in enumerate(chunks):
            flags = (proto.LOAD_CLEAR if i == 0 else 0) | (proto.LOAD_RUN if i == len(chunks) - 1 else 0)
            out.append(bytes([flags]) + c)
        return out

    def run_sample(self, spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Run one sample [T, n_in] on the board: (spike counts, final membranes, cycles)."""
        frames = self.load_frames(spikes)
        for attempt in range(1 + self.retries):
            try:
                for f in frames[:-1]:
                    # Appending is not idempotent: a failure restarts the whole sample from its
                    # clearing first frame instead of resending one piece.
                    self.request(Cmd.LOAD, f, retry=len(frames) == 1 or f is frames[0])
                p = self.request(Cmd.LOAD, frames[-1], retry=len(frames) == 1)
                break
            except LinkError:
                if attempt == self.retries:
                    raise
                self._resync()
        cycles = proto.from_le(p[:CYCLE_BYTES])
        counts, membranes = proto.decode_outputs(p[CYCLE_BYTES:], self.geo)
        return counts, membranes, cycles

    def run_samples(self, spikes, *, on_answer=None) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """:meth:`run_sample` for each sample of ``spikes`` [N, T, n_in], pipelined
        (:meth:`pipeline`) when every sample is one LOAD frame; ``on_answer(i, seconds)`` hears
        each sample's answer."""
        frames = [self.load_frames(s) for s in spikes]
        if any(len(f) > 1 for f in frames):
            out = []
            for i, s in enumerate(spikes):
                t0 = time.perf_counter()
                out.append(self.run_sample(s))
                if on_answer is not None:
                    on_answer(i, time.perf_counter() - t0)
            return out
        hear = None if on_answer is None else (lambda i, p, t: on_answer(i, t))
        return [self._run_answer(p) for p in self.pipeline(Cmd.LOAD, [f[0] for f in frames], on_answer=hear)]

    def _run_answer(self, p: bytes) -> tuple[np.ndarray, np.ndarray, int]:
        """(spike counts, final membranes, cycles) of a run's answer block."""
        counts, membranes = proto.decode_outputs(p[CYCLE_BYTES:CYCLE_BYTES + self.geo.output_bytes], self.geo)
        return counts, membranes, proto.from_le(p[:CYCLE_BYTES])

    def read_outputs(self) -> tuple[np.ndarray, np.ndarray]:
        return proto.decode_outputs(self.request(Cmd.READ), self.geo)
