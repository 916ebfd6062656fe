"""Link fuzzing (issue 11): frames of every command, intact and damaged, against the byte-exact twin
or the simulated board, checking after every frame (or every ``check_every`` frames) that the board
still answers identify and that its weights, biases and thresholds (read through CHECKSUM) equal
the host's record of the writes it saw accepted.

Frame kinds (:data:`KINDS`): valid frames of every command (:data:`COMMANDS`: WRITE by row and
row-major bulk WRITE, LOAD, RUN, READ, CLEAR, STATUS, IDENTIFY, CHECKSUM, SET_NET_ID, ENCODE,
BATCH), refused frames (unknown command, bad length, out of range, bad encoding or state),
multi-bit flips, byte bursts, truncated frames, garbage, floods of sync or zero bytes, a frame split
by a pause around the frame timeout, and *forged* damage: a WRITE value changed with its CRC-16
recomputed, the damage the frame check misses about once in 2^16 heavy errors, which only the
checksum can catch.

The host record (:class:`~spikegate.link_fuzz_record.Record`) follows what a real host believes:
an intended WRITE answered OK is applied to it. A checksum that disagrees with the record after
damage is a corruption *caught*; the record's network is then written again. The same
disagreement after intact frames only is a *wrong answer* (the record, the twin or the board is
wrong). An *undetected* corruption is a divergence the checksum did not flag: on the twin its
arrays are compared with the record directly, on both targets a sample run is compared
bit-exactly with the model of the record every ``sample_every`` checks.

The answer of every valid LOAD-and-run, ENCODE and BATCH frame (the cycles, spike counts and final
membranes of each sample) is compared byte for byte with the record's
:meth:`~spikegate.link_fuzz_record.Record.expect` (``outputs_checked``), unless damage since the
last check may have changed the weights behind the host's back.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .link_fuzz_frames import COMMANDS, DAMAGED, KINDS, FrameGen, Item, responses
from .link_fuzz_record import Record
from .model import link as proto
from .model.link import Cmd, Status
from .model.network import Network
from .model.protocol import LOAD_CLEAR, LOAD_RUN
from .model.simulate import simulate

__all__ = ["KINDS", "COMMANDS", "FuzzStats", "FrameGen", "Record", "fuzz_twin", "fuzz_board", "drain", "responses"]



@dataclass
class FuzzStats:
    frames: int = 0
    answers_checked: int = 0
    outputs_checked: int = 0      # sample answers compared byte for byte with the record's model
    states_checked: int = 0       # READ_STATE answers compared byte for byte with the record
    lockups: int = 0
    wrong_answers: int = 0
    caught_by_checksum: int = 0
    undetected: int = 0
    reloads: int = 0
    samples_checked: int = 0
    wall_s: float = 0.0
    kinds: dict = field(default_factory=dict)
    commands: dict = field(default_factory=dict)   # valid frames per command (COMMANDS)
    damaged: dict = field(default_factory=dict)    # damaged copies (DAMAGED kinds) per command
    wrong: list = field(default_factory=list)   # the first few wrong answers, described

    def to_dict(self) -> dict:
        return asdict(self)

    def count(self, item: Item):
        self.frames += 1
        self.kinds[item.kind] = self.kinds.get(item.kind, 0) + 1
        per = self.commands if item.kind == "valid" else self.damaged if item.kind in DAMAGED else None
        if per is not None:
            per[item.command] = per.get(item.command, 0) + 1

    def wrong_answer(self, what: str):
        self.wrong_answers += 1
        if len(self.wrong) < 5:
            self.wrong.append(what)


def _accepted(item: Item, answers) -> bool:
    """True when the host sees its intended WRITE answered OK (it then believes it applied)."""
    return item.write is not None and any(c == Cmd.WRITE and t == item.tag and s == Status.OK
                                          for c, t, s, _ in answers)


def _write_behind(item: Item, answers) -> bool:
    """True when a WRITE other than an intact frame's own was answered OK: damage may have changed
    the board's parameters without the record knowing."""
    intact = item.kind in ("valid", "refused")
    return any(c == Cmd.WRITE and s == Status.OK and not (intact and t == item.tag) for c, t, s, _ in answers)


def _check_valid_answer(item: Item, answers, stats: FuzzStats, rec: Record, unsure: bool):
    """An intact frame must be answered exactly once with its tag; a refused one with an error; a
    sample's answer must be the record's model's, unless ``unsure`` (damage since the last check)."""
    mine = [a for a in answers if a[1] == item.tag and a[0] == (item.cmd & 0xFF)]
    if item.kind == "valid":
        ok = len(mine) == 1 and mine[0][2] == Status.OK
    else:
        ok = len(mine) == 1 and mine[0][2] != Status.OK
    stats.answers_checked += 1
    if not ok:
        stats.wrong_answer(f"{item.kind} {item.command} frame {item.data.hex()}: answers {answers}")
        return
    want = rec.expect(item) if item.kind == "valid" and not unsure else None
    if want is not None:
        if item.state is not None:
            stats.states_checked += 1
        else:
            stats.outputs_checked += 1
        if mine[0][3] != want:
            stats.wrong_answer(f"{item.command} frame {item.data.hex()}: answered {mine[0][3].hex()}, the model "
                               f"of the record gives {want.hex()}")


def _checksum_differs(stats: FuzzStats, unsure: bool, got, want: int):
    """A CHECKSUM other than the record's: caught damage, or a wrong answer after intact frames."""
    if unsure:
        stats.caught_by_checksum += 1
    else:
        stats.wrong_answer(f"CHECKSUM {got} after intact frames only, the record gives 0x{want:08x}")


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
    rec = Record(net, twin.geo)
    stats = FuzzStats()
    t0 = time.perf_counter()
    tag = [0]
    unsure = False

    def ask(cmd, payload=b""):
        tag[0] = (tag[0] + 0x37) & 0xFF
        got = responses(twin.feed(proto.encode_request(cmd, tag[0], payload)))
        stats.answers_checked += 1
        return got[0] if len(got) == 1 and got[0][1] == tag[0] and got[0][2] == Status.OK else None

    for i in range(frames):
        item = gen.next()
        stats.count(item)
        if item.split:
            out = twin.feed(item.data[:item.split]) + (twin.timeout() if item.long_pause else b"")
            out += twin.feed(item.data[item.split:])
        else:
            out = twin.feed(item.data)
        out += twin.timeout()  # the host's silence after each frame closes any frame left open
        answers = responses(out)
        unsure |= _write_behind(item, answers)
        if item.kind in ("valid", "refused"):
            _check_valid_answer(item, answers, stats, rec, unsure)
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
            _checksum_differs(stats, unsure, "no answer" if got is None else f"0x{proto.from_le(got[3]):08x}", want)
            rec.set(twin.engine.net)  # the twin stands in for a full reload of the record's values
            stats.reloads += 1
        elif not all(np.array_equal(a, b) for a, b in zip(twin.engine.weights + twin.engine.bias,
                                                           rec.weights + rec.bias)) \
                or twin.engine.threshold != rec.threshold:
            stats.undetected += 1
        unsure = False
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


# Samples run at each sample check, pipelined on a streaming board (Board.run_samples).
PIPELINED_SAMPLES = 3


def _samples_differ(board, net: Network, gen: FrameGen) -> int:
    """How many of ``PIPELINED_SAMPLES`` random samples, run through the driver's pipeline,
    differ from the model of ``net`` (all of them when the link fails)."""
    from .host import LinkError
    spikes = [gen.spikes() for _ in range(PIPELINED_SAMPLES)]
    try:
        got = board.run_samples(spikes)
    except LinkError:
        return PIPELINED_SAMPLES
    want = simulate(net, np.stack(spikes))
    return sum(int(not (np.array_equal(c, want.counts[k]) and np.array_equal(m, want.membranes[-1][k])))
               for k, (c, m, _) in enumerate(got))


# The longest a fuzz step listens, however much the board sends: a board that never falls silent
# (or keeps reporting damaged requests, which read_response returns whatever their tag) ends the
# step, and its bytes are judged, instead of holding it.
LISTEN_LIMIT_S = 30.0


def drain(ser, quiet: float, limit: float = LISTEN_LIMIT_S) -> bytes:
    """Everything arriving on the pyserial port ``ser`` until ``quiet`` seconds of silence, or
    what came in ``limit`` seconds."""
    out = bytearray()
    ser.timeout = quiet
    end = time.monotonic() + limit
    while time.monotonic() < end:
        chunk = ser.read(4096)
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _answer_to(board, tag: int, wait: float, limit: float = LISTEN_LIMIT_S) -> list:
    """The answers up to and including the one carrying ``tag`` (none if it does not come within
    ``wait`` seconds of the last answer, or ``limit`` seconds in all)."""
    from .host_io import read_response
    answers = []
    end = time.monotonic() + limit
    while time.monotonic() < end:
        got, _ = read_response(board.ser, tag, deadline=min(wait, max(0.0, end - time.monotonic())), timeout=wait,
                               max_answer=0xFFFF, port=board.port)
        if got is None:
            break
        answers.append(got)
        if answers[-1][1] == tag:
            break
    return answers


def fuzz_board(board, net: Network, frames: int, *, seed: int = 0, check_every: int = 10,
               sample_every: int = 10, answer_wait: float = 5.0, quiet: float = 0.05,
               progress=None) -> FuzzStats:
    """``frames`` fuzz frames through the host driver ``board`` (a connected
    :class:`spikegate.host.Board` whose bitstream holds ``net``'s structure); identify and
    CHECKSUM every ``check_every`` frames (then ``progress(stats)``). The board is loaded with
    ``net`` first. An intact frame's answer is judged when the frame before it was intact and
    answered too (the host cannot tell when a damaged frame's timeout has passed on the board)."""
    from .host import LinkError
    _check_counts(frames=frames, check_every=check_every)
    board.ensure_network(net, verify=True)
    gen = FrameGen(net, board.geo, seed)
    rec = Record(net, board.geo)
    stats = FuzzStats()
    t0 = time.perf_counter()
    ser = board.ser
    clean = True
    unsure = False  # damage since the last check: the board may hold what the record does not
    for i in range(frames):
        item = gen.next()
        stats.count(item)
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
        intact = item.kind in ("valid", "refused")
        if intact:
            # After damage the answer may be swallowed by a frame the board still holds open:
            # waiting the full answer_wait for it would only slow the campaign down.
            answers = _answer_to(board, item.tag, answer_wait if clean else 4 * quiet)
        else:
            answers = responses(drain(board.ser, quiet))
        # Damage may have changed the parameters unseen: a damaged WRITE (its answer may come
        # after the host stopped listening), or an intact frame whose answer did not come.
        unsure |= ((not intact and item.cmd == Cmd.WRITE) or _write_behind(item, answers)
                   or (intact and not any(a[1] == item.tag for a in answers)))
        if intact and clean:
            _check_valid_answer(item, answers, stats, rec, unsure)
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
            got, want = board.checksum(), proto.expected_checksum(rec.net)
            if got != want:
                _checksum_differs(stats, unsure, f"0x{got:08x}", want)
                board.write_network(rec.net)  # verified again before it is marked
                stats.reloads += 1
            unsure = False
            stats.answers_checked += 1
        except LinkError:
            stats.lockups += 1
            continue
        if sample_every and (i + 1) % (check_every * sample_every) == 0:
            stats.undetected += _samples_differ(board, rec.net, gen)
            stats.samples_checked += PIPELINED_SAMPLES
        stats.wall_s = time.perf_counter() - t0
        if progress:
            progress(stats)
    stats.wall_s = time.perf_counter() - t0
    return stats
