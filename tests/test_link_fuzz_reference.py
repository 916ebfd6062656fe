"""The link fuzzer's own coverage and reference (bench/fuzz_link.py, issue 11): every command is
sent intact and damaged, including the row-major bulk WRITE, ENCODE and BATCH, and a wrong
reference (the record's row-major transcription, the model of a sample's answer) is caught."""
import sys
from pathlib import Path

import numpy as np
import pytest

from spikegate import link_fuzz_record
from spikegate.link_fuzz import COMMANDS, KINDS, fuzz_twin
from spikegate.link_fuzz_frames import DAMAGED, FrameGen
from spikegate.link_fuzz_record import Record
from spikegate.model import link as proto
from spikegate.model.link import CfgTarget
from spikegate.model.protocol import WRITE_ROW_MAJOR

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from fuzz_link import fuzz_net  # noqa: E402  (the campaign's own network)


def _geo(net, max_payload=64, max_events=64):
    return proto.HostLink(net, lanes=2, max_payload=max_payload, max_events=max_events).geo


def test_every_command_sent_intact_and_damaged_and_checked():
    s = fuzz_twin(fuzz_net(), 2000, seed=11)
    assert set(s.kinds) == set(KINDS)
    assert set(s.commands) == set(COMMANDS), s.commands
    assert set(s.damaged) == set(COMMANDS), s.damaged
    assert s.lockups == 0 and s.wrong_answers == 0 and s.undetected == 0, s.wrong
    # every intact sample frame's answer was compared with the model of the record
    assert s.outputs_checked == s.commands["LOAD"] + s.commands["ENCODE"] + s.commands["BATCH"]
    # and every intact READ_STATE's with the record's weights and offsets
    assert s.states_checked == s.commands["READ_STATE"] > 0
    assert sum(s.damaged.values()) == sum(s.kinds[k] for k in DAMAGED)


def test_generated_frames_fit_the_link():
    """Valid bulk writes run on past a row's end within the layer, ENCODE/BATCH samples fit the
    input buffer, and no payload exceeds max_payload."""
    net = fuzz_net()
    geo = _geo(net)
    gen = FrameGen(net, geo, 5)
    crossing = batch_sizes = 0
    for _ in range(3000):
        item = gen._valid()
        assert len(item.data) - 7 <= geo.max_payload
        if item.command == "WRITE_ROW_MAJOR":
            layer, _, row, col, values = item.write
            n = geo.sizes[layer]
            assert row * n + col + len(values) <= geo.n_in_per_layer[layer] * n
            crossing += col + len(values) > n
        if item.encode is not None:
            words = Record(net, geo).sample_spikes(item).sum(axis=(1, 2)) + geo.timesteps
            assert words.max() <= geo.max_events
            batch_sizes = max(batch_sizes, len(item.encode[1]))
    assert crossing > 20 and batch_sizes == gen.batch_max > 1


def test_record_row_major_golden():
    """Hand-worked: layer 0 is 8 inputs x 6 neurons; 4 values from W[1, 4] row-major fill W[1, 4],
    W[1, 5], W[2, 0], W[2, 1]."""
    net = fuzz_net()
    rec = Record(net, _geo(net))
    before = rec.weights[0].copy()
    rec.apply((0, CfgTarget.WEIGHT | WRITE_ROW_MAJOR, 1, 4, [11, -12, 13, -14]))
    want = before.copy()
    want[1, 4], want[1, 5], want[2, 0], want[2, 1] = 11, -12, 13, -14
    np.testing.assert_array_equal(rec.weights[0], want)
    rec.apply((0, CfgTarget.WEIGHT, 3, 2, [7, 8]))
    want[3, 2:4] = [7, 8]
    np.testing.assert_array_equal(rec.weights[0], want)


def _column_major(self, write):
    """A wrong transcription: row-major values laid down column by column."""
    layer, target, row, col, values = write
    if target != CfgTarget.WEIGHT | WRITE_ROW_MAJOR:
        return _apply(self, write)
    n_in, n = self.geo.n_in_per_layer[layer], self.geo.sizes[layer]
    for i, v in enumerate(values):
        k = row * n + col + i
        self.weights[layer][k % n_in, k // n_in] = v


_apply = Record.apply


def _latency_for_rate(q, encoding, T, states=None):
    return _from_levels(q, "latency" if encoding == "rate" else encoding, T, states)


def _next_state(q, encoding, T, states=None):
    return _from_levels(q, encoding, T, None if states is None else [s ^ 1 for s in states])


def _cycles_off_by_one(*a, **kw):
    return _batch_cycles(*a, **kw) + 1


_from_levels = link_fuzz_record.from_levels
_batch_cycles = link_fuzz_record.batch_cycles


@pytest.mark.parametrize("target, mutant, names", [
    ((Record, "apply"), _column_major, "CHECKSUM"),
    ((link_fuzz_record, "from_levels"), _latency_for_rate, "ENCODE"),
    ((link_fuzz_record, "from_levels"), _next_state, "BATCH"),
])
def test_wrong_reference_is_caught(monkeypatch, target, mutant, names):
    monkeypatch.setattr(*target, mutant)
    # (seed 13: a stream with rate ENCODE frames since REWARD frames joined the mix)
    s = fuzz_twin(fuzz_net(), 1000, seed=13)
    assert s.wrong_answers > 0 and s.lockups == 0
    assert any(w.startswith(names) for w in s.wrong), s.wrong


def test_wrong_cycle_reference_fails_every_sample_answer(monkeypatch):
    monkeypatch.setattr(link_fuzz_record, "batch_cycles", _cycles_off_by_one)
    s = fuzz_twin(fuzz_net(), 1000, seed=11)
    assert s.outputs_checked > 20 and s.wrong_answers == s.outputs_checked


def test_refused_encode_batch_and_bulk_frames_change_nothing():
    """Every refused frame of the generator is answered with an error and leaves the parameters
    and the buffer as they were."""
    net = fuzz_net()
    twin = proto.HostLink(net, lanes=2, max_payload=64, max_events=64)
    gen = FrameGen(net, twin.geo, 2)
    seen = set()
    for _ in range(400):
        item = gen._refused()
        seen.add(item.command)
        state = lambda: (proto.expected_checksum(twin.net), bytes(twin.engine.events), twin.engine.dirty)  # noqa: E731
        before = state()
        got = proto.decode_response(twin.feed(item.data))
        assert got[1] == item.tag and got[2] != proto.Status.OK
        assert state() == before
    assert {"ENCODE", "BATCH", "WRITE"} <= seen
