"""Defect 1 of issue 11 and the driver's transport messages, against real local TCP "boards".

Each board here is a thread serving socket://127.0.0.1:PORT that misbehaves in one way: it never
goes quiet (a stream of zeros, a flood of sync bytes announcing 0xFFFF-byte answers), answers
identify with the magic alone, or resets the connection. The driver must give up within its
documented deadline and say which port and what it received.
"""
import socket
import struct
import threading
import time

import pytest

from spikegate.host import Board, LinkError, WrongDevice
from spikegate.host_io import FLUSH_LIMIT, FRAME_OVERHEAD, attempt_deadline
from spikegate.model import link as proto
from spikegate.host import MAX_IDENTIFY


class RogueBoard:
    """A TCP board: ``behave(conn)`` runs on the first connection until ``stop``."""

    def __init__(self, behave):
        self.behave = behave
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.url = f"socket://127.0.0.1:{self.srv.getsockname()[1]}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.srv.accept()
        try:
            self.behave(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.srv.close()
        self.thread.join(5)


def stream_forever(chunk: bytes):
    def behave(conn, stop):
        while not stop.is_set():
            conn.sendall(chunk)
    return behave


def _elapsed_failure(url, timeout, retries, settle):
    """(seconds to open, seconds identify took to fail, its message)."""
    t0 = time.monotonic()
    with Board(url, timeout=timeout, retries=retries, settle=settle) as b:
        t1 = time.monotonic()
        with pytest.raises(LinkError) as e:
            b.identify()
        t2 = time.monotonic()
    return t1 - t0, t2 - t1, str(e.value)


@pytest.mark.parametrize("chunk, shown", [(bytes(4096), "00 00 00"),
                                          (bytes([0x5A, 0xFF, 0xFF, 0x00, 0xFF, 0xFF]) * 512, "5a ff ff")])
def test_a_port_that_never_goes_quiet_fails_within_the_deadline(chunk, shown):
    board = RogueBoard(stream_forever(chunk))
    timeout, retries, settle = 0.4, 1, 0.05
    try:
        opening, elapsed, msg = _elapsed_failure(board.url, timeout, retries, settle)
    finally:
        board.close()
    identify_request = 1 + proto.REQUEST_HEADER + 2
    deadline = attempt_deadline(timeout, 115_200, identify_request, MAX_IDENTIFY)
    assert deadline < timeout + 2 * 10 * (identify_request + FRAME_OVERHEAD + 1000) / 115_200
    # Allow 1 s for a loaded machine. Opening flushes for at most FLUSH_LIMIT (pyserial's own
    # flush on a socket reads until the peer is quiet: an open that could never end).
    assert opening < FLUSH_LIMIT + 1.0, opening
    # every attempt ends at its deadline, every resync within settle + FLUSH_LIMIT (before the fix
    # this never ended, or took 24 s for the flood)
    assert elapsed < (1 + retries) * (deadline + settle) + retries * (settle + FLUSH_LIMIT) + 1.0, (elapsed, deadline)
    assert board.url in msg and "deadline" in msg and shown in msg and "received" in msg


def identify_fails(behave, err):
    """(url, message) of the ``err`` an identify on a board behaving as ``behave`` raises."""
    board = RogueBoard(behave)
    try:
        with Board(board.url, timeout=0.5, retries=0) as b, pytest.raises(err) as e:
            b.identify()
    finally:
        board.close()
    return board.url, str(e.value)


def test_identify_with_only_the_magic_does_not_contradict_itself():
    def behave(conn, stop):
        req = conn.recv(64)
        conn.sendall(proto.encode_response(req[1], req[2], proto.Status.OK, proto.MAGIC))
        stop.wait(5)
    url, msg = identify_fails(behave, WrongDevice)
    assert url in msg and "too short" in msg and "does not start" not in msg


def test_a_connection_reset_names_the_port():
    def behave(conn, stop):
        conn.recv(64)
        # SO_LINGER 0: close() sends a reset instead of an orderly FIN
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    url, msg = identify_fails(behave, LinkError)
    assert url in msg
