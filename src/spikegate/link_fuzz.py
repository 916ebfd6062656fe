"""Link fuzzing (issue 11): frames of every command, intact and damaged, against the byte-exact twin
or the simulated board, checking after every frame (or every ``check_every`` frames) that the board
still answers identify and that its weights, biases and thresholds (read through CHECKSUM) equal
the host's record of the writes it saw accepted.

Frame kinds (:data:`KINDS`): valid frames of every command (WRITE, LOAD, RUN, READ, CLEAR, STATUS,
IDENTIFY, CHECKSUM, SET_NET_ID), refused frames (unknown command, bad length, out of range),
multi-bit flips, byte bursts, truncated frames, garbage, floods of sync or zero bytes, a frame split
by a pause around the frame timeout, and *forged* damage: a WRITE value changed with its CRC-16
recomputed, the damage the frame check misses about once in 2^16 heavy errors, which only the
checksum can catch.

The host record follows what a real host believes: an intended WRITE answered OK is applied to it.
A checksum that disagrees with the record is a corruption *caught*; the record's network is then
written again. An *undetected* corruption is a divergence the checksum did not flag: on the twin
its arrays are compared with the record directly, on both targets a sample run is compared
bit-exactly with the model of the record every ``sample_every`` checks.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .link_fuzz_frames import KINDS, FrameGen, Item, Record, responses
from .model import link as proto
from .model.link import Cmd, Status
from .model.network import Network
from .model.protocol import LOAD_CLEAR, LOAD_RUN
from .model.simulate import simulate

__all__ = ["KINDS", "FuzzStats", "FrameGen", "Record", "fuzz_twin", "fuzz_board", "drain", "responses"]



@dataclass
class FuzzStats:
    frames: int = 0
    answers_checked: int = 0
    lockups: int = 0
    wrong_answers: int = 0
    caught_by_checksum: int = 0
    undetected: int = 0
    reloads: int = 0
    samples_checked: int = 0
    wall_s: float = 0.0
    kinds: dict = field(default_factory=dict)
    wrong: list = field(default_factory=list)   # the first few wrong answers, described

    def to_dict(self) -> dict:
        return asdict(self)


def _accepted(item: Item, answers) -> bool:
    """True when the host sees its intended WRITE answered OK (it then believes it applied)."""
    return item.write is not None and any(c == Cmd.WRITE and t == item.tag and s == Status.OK
                                          for c, t, s, _ in answers)


def _check_valid_answer(item: Item, answers, stats: FuzzStats):
    """An intact frame must be answered exactly once with its tag; a refused one with an error."""
    mine = [a for a in answers if a[1] == item.tag and a[0] == (item.cmd & 0xFF)]
    if item.kind == "valid":
        ok = len(mine) == 1 and mine[0][2] == Status.OK
    else:
        ok = len(mine) == 1 and mine[0][2] != Status.OK
    stats.answers_checked += 1
    if not ok:
        stats.wrong_answers += 1
        if len(stats.wrong) < 5:
            stats.wrong.append(f"{item.kind} frame {item.data.hex()}: answers {answers}")


def _check_counts(**counts):
    for name, v in counts.items():
        low = 0 if name == "frames" else 1
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name} = {v!r} is not valid; valid: an integer >= {low}")


def fuzz_twin(net: Network, frames: int, *, seed: int = 0, lanes: int = 2, max_payload: int = 64,
              max_events: int = 64, check_every: int = 1, sample_every: int = 50, progress=None) -> FuzzStats:
    """``frames`` fuzz frames into the byte-exact twin (:class:`spikegate.model.link.HostLink`);
    ``progress(stats)`` every 1000 frames."""
    _check_counts(frames=frames, check_every=check_every)
    twin = proto.HostLink(net, lanes=lanes, max_payload=max_payload, max_events=max_events)
    gen = FrameGen(net, twin.geo, seed)
    rec = Record(net)
    stats = FuzzStats()
    t0 = time.perf_counter()
    tag = [0]

    def ask(cmd, payload=b""):
        tag[0] = (tag[0] + 0x37) & 0xFF
        got = responses(twin.feed(proto.encode_request(cmd, tag[0], payload)))
        stats.answers_checked += 1
        return got[0] if len(got) == 1 and got[0][1] == tag[0] and got[0][2] == Status.OK else None

    for i in range(frames):
        item = gen.next()
        stats.kinds[item.kind] = stats.kinds.get(item.kind, 0) + 1
        if item.split:
            out = twin.feed(item.data[:item.split]) + (twin.timeout() if item.long_pause else b"")
            out += twin.feed(item.data[item.split:])
        else:
            out = twin.feed(item.data)
        out += twin.timeout()  # the host's silence after each frame closes any frame left open
        stats.frames += 1
        answers = responses(out)
        if item.kind in ("valid", "refused"):
            _check_valid_answer(item, answers, stats)
        if _accepted(item, answers):
            rec.apply(item.write)
        if (i + 1) % check_every:
            continue
        ident = ask(Cmd.IDENTIFY)
        if ident is None or proto.Identity.parse(ident[3]).structure != proto.structure_digest(net):
            stats.lockups += 1
            continue
        got = ask(Cmd.CHECKSUM)
        want = proto.expected_checksum(rec.net)
        if got is None or proto.from_le(got[3]) != want:
            stats.caught_by_checksum += 1
            rec.set(twin.engine.net)  # the twin stands in for a full reload of the record's values
            stats.reloads += 1
        elif not all(np.array_equal(a, b) for a, b in zip(twin.engine.weights + twin.engine.bias,
                                                           rec.weights + rec.bias)) \
                or twin.engine.threshold != rec.threshold:
            stats.undetected += 1
        if sample_every and (i + 1) % (check_every * sample_every) == 0:
            stats.undetected += _sample_differs(lambda p: ask(Cmd.LOAD, p), rec.net, gen, twin.geo)
            stats.samples_checked += 1
        if progress and (i + 1) % 1000 == 0:
            stats.wall_s = time.perf_counter() - t0
            progress(stats)
    stats.wall_s = time.perf_counter() - t0
    return stats


def _sample_differs(load, net: Network, gen: FrameGen, geo) -> int:
    """1 when a random sample run on the board differs from the model of ``net``."""
    spikes = gen.spikes()
    got = load(bytes([LOAD_CLEAR | LOAD_RUN]) + proto.encode_events(spikes, geo))
    if got is None:
        return 1
    counts, mems = proto.decode_outputs(got[3][proto.CYCLE_BYTES:], geo)
    want = simulate(net, spikes[None])
    return int(not (np.array_equal(counts, want.counts[0]) and np.array_equal(mems, want.membranes[-1][0])))


def drain(ser, quiet: float) -> bytes:
    """Everything arriving on the pyserial port ``ser`` until ``quiet`` seconds of silence."""
    out = bytearray()
    ser.timeout = quiet
    while True:
        chunk = ser.read(4096)
        if not chunk:
            return bytes(out)
        out += chunk


def _answer_to(board, tag: int, wait: float) -> list:
    """The answers up to and including the one carrying ``tag`` (none if it does not come)."""
    from .host_io import read_response
    answers = []
    while True:
        got, _ = read_response(board.ser, tag, deadline=wait, timeout=wait, max_answer=0xFFFF, port=board.port)
        if got is None:
            return answers
        answers.append(got)
        if answers[-1][1] == tag:
            return answers


def fuzz_board(board, net: Network, frames: int, *, seed: int = 0, check_every: int = 10,
               sample_every: int = 10, answer_wait: float = 5.0, quiet: float = 0.05,
               progress=None) -> FuzzStats:
    """``frames`` fuzz frames through the host driver ``board`` (a connected
    :class:`spikegate.host.Board` whose bitstream holds ``net``'s structure); identify and
    CHECKSUM every ``check_every`` frames (then ``progress(stats)``). The board is loaded with
    ``net`` first. An intact frame's answer is judged when the frame before it was intact and
    answered too (the host cannot tell when a damaged frame's timeout has passed on the board)."""
    from .host import ChecksumMismatch, LinkError
    _check_counts(frames=frames, check_every=check_every)
    board.ensure_network(net, verify=True)
    gen = FrameGen(net, board.geo, seed)
    rec = Record(net)
    stats = FuzzStats()
    t0 = time.perf_counter()
    ser = board.ser
    clean = True
    for i in range(frames):
        item = gen.next()
        stats.kinds[item.kind] = stats.kinds.get(item.kind, 0) + 1
        if item.split:
            ser.write(item.data[:item.split])
            ser.flush()
            # A wall-time pause inside a frame: the bridge runs the waiting board in leaps, so a
            # long one passes the frame timeout and a short one may or may not.
            time.sleep(0.3 if item.long_pause else 0.002)
            ser.write(item.data[item.split:])
        else:
            ser.write(item.data)
        ser.flush()
        stats.frames += 1
        intact = item.kind in ("valid", "refused")
        if intact:
            # After damage the answer may be swallowed by a frame the board still holds open:
            # waiting the full answer_wait for it would only slow the campaign down.
            answers = _answer_to(board, item.tag, answer_wait if clean else 4 * quiet)
        else:
            answers = responses(drain(board.ser, quiet))
        if intact and clean:
            _check_valid_answer(item, answers, stats)
        # The host cannot see the board's clock: after damage it cannot tell when the board's frame
        # timeout has passed, so the next intact frame's answer is judged only after a clean one.
        clean = intact and bool(answers)
        if _accepted(item, answers):
            rec.apply(item.write)
        if (i + 1) % check_every:
            continue
        board._resync()
        clean = True
        try:
            ident = board.identify()
            stats.answers_checked += 1
            if ident.structure != proto.structure_digest(net):
                stats.lockups += 1
                continue
            try:
                board.verify_network(rec.net)
            except ChecksumMismatch:
                stats.caught_by_checksum += 1
                board.write_network(rec.net)  # verified again before it is marked
                stats.reloads += 1
            stats.answers_checked += 1
        except LinkError:
            stats.lockups += 1
            continue
        if sample_every and (i + 1) % (check_every * sample_every) == 0:
            def load(p):
                try:
                    return (Cmd.LOAD, 0, Status.OK, board.request(Cmd.LOAD, p))
                except LinkError:
                    return None
            stats.undetected += _sample_differs(load, rec.net, gen, board.geo)
            stats.samples_checked += 1
        stats.wall_s = time.perf_counter() - t0
        if progress:
            progress(stats)
    stats.wall_s = time.perf_counter() - t0
    return stats
