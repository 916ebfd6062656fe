"""The package layout: every folder with Python code installs, with a non-editable install too."""
import tomllib
from pathlib import Path

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
