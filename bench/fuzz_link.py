"""Link fuzz campaign (issue 11): frames of every command, intact and damaged (multi-bit flips,
byte bursts, truncation, garbage, floods, pauses around the frame timeout, CRC-valid forged
WRITEs) into the byte-exact twin and into the simulated board (Verilator behind socket://, driven
through the real host driver). After every frame (twin) or every ``--check-every`` frames (board)
the board must answer identify and its CHECKSUM must equal the host's record of accepted writes.

    python bench/fuzz_link.py [--twin-frames 100000] [--board-frames 10000] [--check-every 10] [--seed 0]

Valid frames of every command include row-major bulk WRITEs, ENCODE, BATCH, LEARN (off) and
READ_STATE of the plastic last layer's weights and offsets; the answer of every intact LOAD-and-run,
ENCODE, BATCH and READ_STATE is compared byte for byte with the host's record (and its model).
Prints frames sent, answers checked, lockups (must be 0), corruptions caught by the checksum,
undetected corruptions (must be 0), the frame kinds and the valid/damaged frames per command, and
wall time; exits 1 if a lockup, a wrong answer or an undetected corruption occurred.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def fuzz_net():
    """The campaign's network: small, so a reload after a caught corruption is a few frames. Its last
    layer is plastic, by rstdp (adaptive thresholds, no winner-take-all: with learning off and its
    offsets 0 it computes what the plain layer computes), so READ_STATE of its weights, offsets,
    traces and eligibility and REWARD of both modes are valid; learning stays off (the host's record
    cannot follow what a run learns), so the eligibility stays 0 and no reward changes a weight."""
    from spikegate.model.plasticity import Plasticity
    from spikegate.model.random import random_network
    net = random_network(3, (8, 6, 3), readout=False, timesteps=4, weight_bits=8, membrane_bits=12)
    last = net.layers[-1]
    p = Plasticity(rule="rstdp", a_plus=1, theta_inc=3)
    return net.replace(layers=[*net.layers[:-1], last.replace(plasticity=p)])


def report(name: str, s) -> str:
    from spikegate.link_fuzz import COMMANDS
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(s.kinds.items()))
    commands = ", ".join(f"{c} {s.commands.get(c, 0)}/{s.damaged.get(c, 0)}" for c in COMMANDS)
    return (f"{name}: frames sent {s.frames}, answers checked {s.answers_checked}, lockups {s.lockups}, "
            f"wrong answers {s.wrong_answers}, caught by checksum {s.caught_by_checksum} (reloads {s.reloads}), "
            f"undetected corruptions {s.undetected}, sample answers checked against the model {s.outputs_checked}, "
            f"READ_STATE answers checked against the record {s.states_checked}, "
            f"sample runs checked {s.samples_checked}, wall time {s.wall_s:.1f} s\n  kinds: {kinds}"
            f"\n  commands (valid/damaged): {commands}" + "".join(f"\n  wrong: {w}" for w in s.wrong))


def main(argv=None) -> int:
    from spikegate.host import Board
    from spikegate.sim.link_bridge import SimulatedBoard
    from spikegate.link_fuzz import fuzz_board, fuzz_twin

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--twin-frames", "--frames", type=int, default=100_000, dest="twin_frames")
    ap.add_argument("--board-frames", type=int, default=10_000)
    ap.add_argument("--check-every", type=int, default=10, help="board run: identify + CHECKSUM every N frames")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    from spikegate.model.procgroup import end_groups_on_sigterm
    end_groups_on_sigterm()
    for name, v in (("--twin-frames", a.twin_frames), ("--board-frames", a.board_frames)):
        if v < 0:
            ap.error(f"{name} = {v} is not valid; valid: an integer >= 0")
    if a.check_every < 1:
        ap.error(f"--check-every = {a.check_every} is not valid; valid: an integer >= 1")
    net = fuzz_net()

    def progress(name):
        def show(s):
            if s.frames % 500 < a.check_every:
                print(f"  ... {report(name, s).splitlines()[0]}", file=sys.stderr, flush=True)
        return show
    bad = 0
    if a.twin_frames:
        s = fuzz_twin(net, a.twin_frames, seed=a.seed, progress=progress("twin"))
        print(report("twin (check after every frame)", s), flush=True)
        bad += s.lockups + s.wrong_answers + s.undetected
    if a.board_frames:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "fuzz.json"
            net.save(path)
            with SimulatedBoard(path, lanes=2, max_payload=64, max_events=64) as sb, \
                    Board(sb.url, timeout=20.0) as b:
                s = fuzz_board(b, net, a.board_frames, seed=a.seed, check_every=a.check_every,
                               progress=progress("board"))
        print(report(f"simulated board (Verilator; check every {a.check_every} frames)", s), flush=True)
        bad += s.lockups + s.wrong_answers + s.undetected
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
