"""The link fuzz campaign of bench/fuzz_link.py, short and derandomised (fixed seeds): the twin
checked after every frame, and the simulated board (Verilator, real driver and socket)."""
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from spikegate.host import Board
from spikegate.sim.link_bridge import SimulatedBoard
from spikegate.link_fuzz import KINDS, PIPELINED_SAMPLES, fuzz_board, fuzz_twin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fuzz_link import fuzz_net  # noqa: E402  (the campaign's own network)


def test_twin_fuzz_short():
    s = fuzz_twin(fuzz_net(), 3000, seed=7)
    assert s.frames == 3000 and set(s.kinds) == set(KINDS)
    assert s.lockups == 0 and s.wrong_answers == 0 and s.undetected == 0, s.wrong
    # forged WRITEs (CRC-16 valid, wrong value) happen and only the checksum catches them
    assert s.caught_by_checksum > 0 and s.samples_checked > 0
    assert s.answers_checked > 2 * s.frames  # identify and CHECKSUM after every frame
    with pytest.raises(ValueError, match="check_every = 0 is not valid"):
        fuzz_twin(fuzz_net(), 10, check_every=0)


def test_board_fuzz_short(tmp_path):
    net = fuzz_net()
    path = tmp_path / "fuzz.json"
    net.save(path)
    with SimulatedBoard(path, lanes=2, max_payload=64, max_events=64) as sb, Board(sb.url, timeout=20.0) as b:
        s = fuzz_board(b, net, 60, seed=3, check_every=5, sample_every=4)
        assert b.checksum() != 0
    assert s.frames == 60
    assert s.lockups == 0 and s.wrong_answers == 0 and s.undetected == 0, s.wrong
    # 3 sample checks, each PIPELINED_SAMPLES samples through the driver's pipeline
    assert s.samples_checked == 3 * PIPELINED_SAMPLES and s.answers_checked >= 2 * 60 // 5


def test_a_board_that_never_falls_silent_ends_the_listening():
    """A port that never goes quiet (a board babbling bytes, or reporting damaged requests, which
    answer any tag, without end) ends drain and _answer_to at their limit with what came, instead
    of holding the campaign."""
    import threading
    import time

    import serial

    from spikegate.link_fuzz import _answer_to, drain
    from spikegate.model.link import Cmd, Status, encode_response
    ser = serial.serial_for_url("loop://", timeout=0.05)
    stop = threading.Event()

    def babble(chunk):
        while not stop.is_set():
            ser.write(chunk)
            time.sleep(0.002)

    try:
        for chunk in (b"\x55" * 16, encode_response(Cmd.IDENTIFY, 7, Status.BAD_CRC)):
            stop.clear()
            t = threading.Thread(target=babble, args=(chunk,), daemon=True)
            t.start()
            t0 = time.monotonic()
            if len(chunk) == 16:
                got = drain(ser, quiet=0.5, limit=1.0)
                assert len(got) > 0 and set(got) == {0x55}
            else:
                answers = _answer_to(SimpleNamespace(ser=ser, port="loop://"), tag=9, wait=0.5, limit=1.0)
                assert answers and all(a[1:3] == (7, Status.BAD_CRC) for a in answers)  # tag 9 never came
            assert 1.0 <= time.monotonic() - t0 < 10
            stop.set()
            t.join(5)
            ser.reset_input_buffer()
    finally:
        stop.set()
        ser.close()
