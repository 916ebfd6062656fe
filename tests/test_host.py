"""Host driver error handling and retries, against the link's byte-level twin served on a socket.

The twin (model.link.HostLink) answers byte for byte as the gateware does (test_link_hdl checks
that), so these tests exercise the driver's real paths quickly; the gateware itself is driven by
the same driver in test_link_e2e. A few boards here are deliberately "other" boards: the twin of
a bitstream built by another protocol version, or a device that is not a spikegate board.
"""
import select
import socket
import threading

import numpy as np
import pytest

from spikegate.host import (Board, ChecksumMismatch, DeviceError, LinkError, NetworkMismatch, ProtocolMismatch,
                            WrongDevice)
from spikegate.model import link as proto
from spikegate.model import simulate
from spikegate.model.random import random_network, random_spikes


class TwinServer:
    """Serves a twin on socket://127.0.0.1:PORT. ``drop`` bytes of the host's stream are lost on
    the line before the twin sees them (a noisy line); silence inside a frame is the frame timeout."""

    def __init__(self, twin, drop=0, tamper=None):
        self.twin, self.drop, self.tamper = twin, drop, tamper
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.url = f"socket://127.0.0.1:{self.srv.getsockname()[1]}"
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn = None
        while not self.stop:
            rl = [self.srv] + ([conn] if conn else [])
            ready, _, _ = select.select(rl, [], [], 0.02)
            if self.srv in ready:
                conn, _ = self.srv.accept()
                continue
            if conn is None:
                continue
            if not ready:
                out = self.twin.timeout()
            else:
                data = conn.recv(65536)
                if not data:
                    conn.close()
                    conn = None
                    continue
                if self.drop:
                    n = min(self.drop, len(data))
                    data, self.drop = data[n:], self.drop - n
                if self.tamper:
                    data = self.tamper(data)
                out = self.twin.feed(data)
            if out:
                conn.sendall(out)
        if conn:
            conn.close()
        self.srv.close()

    def close(self):
        self.stop = True
        self.thread.join()


@pytest.fixture
def net():
    return random_network(8, (10, 6, 3), readout=False, timesteps=6, weight_bits=8, membrane_bits=16)


def serve(twin, **kw):
    return TwinServer(twin, **kw)


def test_run_samples_and_reload(net):
    srv = serve(proto.HostLink(net, lanes=2, max_payload=64))
    try:
        with Board(srv.url, timeout=1.0) as b:
            assert b.ensure_network(net) is False
            sp = random_spikes(1, 4, 6, 10, p=0.5)
            want = simulate(net, sp)
            for i in range(4):
                c, m, _ = b.run_sample(sp[i])
                assert np.array_equal(c, want.counts[i]) and np.array_equal(m, want.membranes[-1][i])
            # max_payload 64 forces multi-frame weight writes and samples
            other = random_network(9, (10, 6, 3), readout=False, timesteps=6, weight_bits=8, membrane_bits=16)
            # The same structure as net: leak, reset and refractory are fixed by the bitstream.
            other = other.replace(layers=[o.replace(leak=a.leak, reset=a.reset, refractory=a.refractory)
                                          for a, o in zip(net.layers, other.layers)])
            assert proto.structure_digest(other) == proto.structure_digest(net)
            assert b.ensure_network(other) is True
            assert b.check_network(other)
            long = random_spikes(2, 1, 15, 10, p=0.9)[0]  # more words than one 64-byte frame holds
            assert len(b.load_frames(long)) > 1
            c, m, _ = b.run_sample(long)
            w = simulate(other, long[None])
            assert np.array_equal(c, w.counts[0]) and np.array_equal(m, w.membranes[-1][0])
    finally:
        srv.close()


def test_retry_after_a_lost_request(net):
    srv = serve(proto.HostLink(net, lanes=2), drop=3)
    try:
        with Board(srv.url, timeout=0.3, retries=2, settle=0.05) as b:
            assert b.identify().shape == net.shape
            assert b.bytes_sent == 2 * 7  # the lost identify and its resend
    finally:
        srv.close()


def test_errors_name_the_problem(net):
    other_version = proto.HostLink(net)
    other_version.ident_static = other_version.ident_static[:4] + bytes([1]) + other_version.ident_static[5:]
    not_ours = proto.HostLink(net)
    not_ours.ident_static = b"ACME" + not_ours.ident_static[4:]
    for twin, err, msg in [(other_version, ProtocolMismatch, "protocol version 1"),
                           (not_ours, WrongDevice, "not a spikegate board")]:
        srv = serve(twin)
        try:
            with Board(srv.url, timeout=1.0) as b, pytest.raises(err, match=msg):
                b.identify()
        finally:
            srv.close()

    srv = serve(proto.HostLink(net))
    try:
        with Board(srv.url, timeout=1.0) as b:
            with pytest.raises(NetworkMismatch, match=r"shape \[10, 6, 3\].*shape \[10, 7, 3\]"):
                b.check_network(random_network(8, (10, 7, 3)))
            b.check_network(net)
            with pytest.raises(DeviceError, match="out of range"):
                b.request(proto.Cmd.WRITE, bytes([5, proto.CfgTarget.WEIGHT, 0, 0, 0, 0, 1, 0, 1]))
            with pytest.raises(ValueError, match="max_events = 4096"):
                b.load_frames(np.ones((500, 10), dtype=bool))
    finally:
        srv.close()

    with pytest.raises(LinkError, match="failed after 2 attempt"):
        with Board("loop://", timeout=0.1, retries=1) as b:
            b.identify()
    with pytest.raises(Exception, match="cannot open port '/dev/nonexistent-spikegate'"):
        Board("/dev/nonexistent-spikegate")
    with pytest.raises(ValueError, match="timeout = 0"):
        Board("loop://", timeout=0)


class WriteDamage:
    """Damages the ``nth`` WRITE frame on the line the way CRC-16 cannot see: a value byte changes
    and the frame CRC is recomputed (the ~2^-16 of heavy damage that passes the check)."""

    def __init__(self, nth=0):
        self.nth, self.seen, self.done = nth, 0, False

    def __call__(self, data: bytes) -> bytes:
        if self.done or len(data) < 12 or data[0] != proto.SYNC_REQ or data[1] != proto.Cmd.WRITE:
            return data
        self.seen += 1
        if self.seen - 1 != self.nth:
            return data
        self.done = True
        cmd, tag, payload = data[1], data[2], bytearray(data[5:-2])
        payload[proto.WRITE_HEADER] ^= 0x01  # lowest bit of the first value: always still in range
        return proto.encode_request(cmd, tag, bytes(payload))


def test_a_write_damaged_past_the_crc_is_caught_before_set_net_id(net):
    other = random_network(9, (10, 6, 3), readout=False, timesteps=6, weight_bits=8, membrane_bits=16)
    other = other.replace(layers=[o.replace(leak=a.leak, reset=a.reset, refractory=a.refractory)
                                  for o, a in zip(other.layers, net.layers)])
    damage = WriteDamage(nth=2)
    twin = proto.HostLink(net, lanes=2)
    srv = serve(twin, tamper=damage)
    try:
        with Board(srv.url, timeout=1.0) as b:
            with pytest.raises(ChecksumMismatch, match=r"socket://127\.0\.0\.1:\d+.*CHECKSUM 0x[0-9a-f]{8}.*not marked"):
                b.ensure_network(other)
            assert damage.done
            ident = b.identify()
            # not marked: dirty, and the id is still the baked network's
            assert ident.dirty and ident.net_id == proto.content_digest(net) != proto.content_digest(other)
            assert b.checksum() != proto.expected_checksum(other)
            assert b.ensure_network(other)  # a clean reload passes the check and marks the board
            assert not b.identify().dirty and b.checksum() == proto.expected_checksum(other)
    finally:
        srv.close()


def test_run_check_catches_a_board_that_claims_the_network(net):
    twin = proto.HostLink(net, lanes=2)
    srv = serve(twin)
    try:
        with Board(srv.url, timeout=1.0) as b:
            assert not b.ensure_network(net, verify=True)  # holds it, and the checksum agrees
            b.check_network(net)
            w = int(net.layers[1].weights[0, 0])
            b.request(proto.Cmd.WRITE, bytes([1, 0, 0, 0, 0, 0, 1, 0, (w ^ 1) & 0xFF]))
            b.request(proto.Cmd.SET_NET_ID, proto.content_digest(net))  # a board that claims net
            assert not b.ensure_network(net)  # identity alone is fooled
            with pytest.raises(ChecksumMismatch, match="differ"):
                b.ensure_network(net, verify=True)
    finally:
        srv.close()
