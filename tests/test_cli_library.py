"""The library under the CLI: results are dataclasses whose to_dict() is the command's --json,
progress goes through the factory it is given and messages through logging, never print."""
import json
import logging

import pytest

from spikegate import datasets
from spikegate.board_run import check_board_name
from spikegate.cli import main
from spikegate.commands._common import parse_lanes
from spikegate.model_eval import demo, evaluate_on_data
from spikegate.netinfo import network_info
from spikegate.progress import log_to_stderr


class Recorder:
    """A progress factory that records what the library reports."""

    def __init__(self):
        self.stages = []

    def __call__(self, total, desc, unit=""):
        self.stages.append({"total": total, "desc": desc, "unit": unit, "done": 0})
        return self

    def update(self, n=1):
        self.stages[-1]["done"] += n

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_evaluation_reports_progress_and_prints_nothing(capsys):
    net = datasets.load_network()
    rec = Recorder()
    r = evaluate_on_data(net, None, "digits", "train", samples=30, progress=rec)
    assert capsys.readouterr() == ("", "")
    assert rec.stages == [{"total": 30, "desc": "integer model on digits train", "unit": "samples", "done": 30}]
    assert r.snn["samples"] == 30 and r.split == "train" and r.to_dict()["snn"] == r.snn


def test_demo_result_is_the_commands_json(capsys):
    net = datasets.load_network()
    r = demo(net, samples=25)
    assert capsys.readouterr().out == ""
    assert main(["demo", "--samples", "25", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(r.to_dict()))
    # cycles per sample at the board's lanes, and the clock turns them into time and rate
    for h in r.hardware:
        assert h.cycles_per_sample == r.evaluation.snn["cycles_per_sample"][str(h.lanes)]
        assert h.us_per_sample == pytest.approx(h.cycles_per_sample / h.clock_mhz)


def test_library_messages_reach_stderr_through_logging(capsys, monkeypatch):
    monkeypatch.delenv("SPIKEGATE_PROGRESS", raising=False)
    log_to_stderr()
    log_to_stderr()  # idempotent: one handler, one line
    logging.getLogger("spikegate.test").info("hello %d", 7)
    assert capsys.readouterr().err == "hello 7\n"
    monkeypatch.setenv("SPIKEGATE_PROGRESS", "0")
    logging.getLogger("spikegate.test").info("quiet")
    assert capsys.readouterr().err == ""


def test_info_library_validates_hardware_parameters():
    net = datasets.load_network()
    info = network_info(net, None, lanes=[8, 2], max_events=512)
    assert info.hardware == {"lanes": [8, 2], "max_events": 512}
    assert [l["groups"] for l in info.layers] == [8, 5]
    with pytest.raises(ValueError, match="max_events = 0 is not valid"):
        network_info(net, max_events=0)


def test_shared_parsers_and_data_selection():
    assert parse_lanes("4") == 4 and parse_lanes("8, 2") == [8, 2] and parse_lanes(None) is None
    with pytest.raises(ValueError, match=r"--lanes = 'a,b' is not valid"):
        parse_lanes("a,b")
    assert check_board_name("sim") == "sim" and check_board_name("icebreaker") == "icebreaker"
    net = datasets.load_network()
    name, x, y = datasets.select(net, samples=7)
    assert name == "digits" and x.shape == (7, 64) and len(y) == 7
    with pytest.raises(ValueError, match=r"--samples = 446 is not valid; valid: 1 to 445 \(the digits test split\)"):
        datasets.select(net, samples=446)
    with pytest.raises(ValueError, match="--samples = True is not valid"):
        datasets.select(net, samples=True)
