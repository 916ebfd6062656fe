"""``spikegate build --no-encoder``: the board top without the on-chip input encoder, checked
before any tool runs, and recorded in the report."""
import pytest

from spikegate.boards.build import build
from spikegate.boards.targets import get_board
from spikegate.boards.top import BoardTop, pll_for
from spikegate.model.hardware import HardwareConfig
from spikegate.model.random import random_network


@pytest.mark.parametrize("value", ["no", 0, 1])
def test_encoder_must_be_a_bool(value, tmp_path):
    with pytest.raises(ValueError, match=r"encoder = .* is not valid; valid: True .*, False .*, or None"):
        build("icebreaker", random_network(1), encoder=value, out_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert not any(tmp_path.iterdir())  # refused before anything was made


def test_board_top_leaves_the_encoder_out():
    board = get_board("icebreaker")
    net, hw = random_network(2), HardwareConfig(lanes=1)
    assert BoardTop(board, net, hw, pll=pll_for(board)).link.encoder
    assert not BoardTop(board, net, hw, pll=pll_for(board), encoder=False).link.encoder


def test_cli_passes_no_encoder_and_refuses_a_value(capsys):
    from spikegate.cli import main
    with pytest.raises(SystemExit):
        main(["build", "--board", "icebreaker", "--no-encoder=yes"])
    assert "--no-encoder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    assert "--no-encoder" in capsys.readouterr().out
