"""The CLI on a core install: with Amaranth, amaranth-boards and cocotb unimportable, the model,
NIR and information commands work, and the gateware and simulation commands say in one line which
extra to install."""
import json
import os
import subprocess
import sys

import pytest

from spikegate.extras import EXTRAS, MissingExtra, missing_extra_error, missing_modules, require_extra

BLOCKED = ("amaranth", "amaranth_boards", "cocotb", "cocotb_tools")
# None in sys.modules makes every import of these fail, as if they were not installed.
RUNNER = ("import sys\n"
          f"for m in {BLOCKED!r}: sys.modules[m] = None\n"
          "from spikegate.cli import main\n"
          "sys.exit(main(sys.argv[1:]))\n")


def core_cli(*argv, cwd=None):
    env = {**os.environ, "SPIKEGATE_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-c", RUNNER, *argv], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def test_model_info_nir_demo_train_without_the_extras(tmp_path):
    p = core_cli("model", "--samples", "20", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["snn"]["samples"] == 20
    p = core_cli("info", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["memory_bits"]["total"] == 70852
    p = core_cli("export-nir", "-o", str(tmp_path / "d.nir"))
    assert p.returncode == 0, p.stderr
    p = core_cli("import", str(tmp_path / "d.nir"), "-o", str(tmp_path / "d.json"), "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["exact"] is True
    p = core_cli("demo", "--samples", "20")
    assert p.returncode == 0, p.stderr
    assert "icebreaker" in p.stdout and "cycles" in p.stdout
    p = core_cli("train", "--hidden", "8", "--epochs", "1", "--out", str(tmp_path / "t.json"), "--json")
    assert p.returncode == 0, p.stderr
    p = core_cli("boards", "--json")
    assert p.returncode == 0 and len(json.loads(p.stdout)["boards"]) == 4


@pytest.mark.parametrize("argv, extra", [
    (["build", "--board", "icebreaker"], "hw"),
    (["export", "-o", "top.v"], "hw"),
    (["sim", "--samples", "2"], "sim"),
])
def test_commands_needing_an_extra_say_which(tmp_path, argv, extra):
    p = core_cli(*argv, cwd=tmp_path)
    assert p.returncode == 2
    missing = "amaranth" if argv[0] == "export" else ", ".join(EXTRAS[extra])
    assert p.stderr.splitlines() == [
        f"spikegate {argv[0]}: error: this command needs the '{extra}' extra: pip install \"spikegate[{extra}]\" "
        f"({missing} not installed)"]
    assert p.stdout == "" and list(tmp_path.iterdir()) == []
    p = core_cli(*argv, "--json", cwd=tmp_path)
    assert p.returncode == 2 and f"'{extra}' extra" in json.loads(p.stdout)["error"]


def test_require_extra_here_and_with_a_module_gone(monkeypatch):
    # This test environment has every extra installed.
    for extra in EXTRAS:
        assert missing_modules(extra) == []
        require_extra(extra)
    monkeypatch.setitem(sys.modules, "cocotb", None)
    assert missing_modules("sim") == ["cocotb"] and missing_modules("hw") == []
    with pytest.raises(MissingExtra, match=r"needs the 'sim' extra: pip install \"spikegate\[sim\]\" \(cocotb"):
        require_extra("sim")
    require_extra("hw", ["amaranth"])
    monkeypatch.setitem(sys.modules, "amaranth_boards", None)
    require_extra("hw", ["amaranth"])  # export needs Amaranth, not the board files
    with pytest.raises(MissingExtra, match=r"\(amaranth_boards not installed\)"):
        require_extra("hw")
    with pytest.raises(ValueError, match="extra = 'gpu' is not valid; valid: hw, sim"):
        require_extra("gpu")
    with pytest.raises(ValueError, match="not all in the 'sim' extra"):
        require_extra("sim", ["amaranth_boards"])


def test_an_unchecked_import_of_an_extra_is_named():
    e = ModuleNotFoundError("No module named 'amaranth.back'", name="amaranth.back")
    err = missing_extra_error(e)
    assert isinstance(err, MissingExtra) and "'hw' extra" in str(err)
    other = ModuleNotFoundError("No module named 'foo'", name="foo")
    assert missing_extra_error(other) is other
