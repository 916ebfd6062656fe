"""The test suite's own infrastructure (tests/conftest.py): caches under the run's temp folder,
tier markers registered and given to every test."""
from __future__ import annotations

import tomllib
from pathlib import Path

from conftest import FILE_TIERS, TEST_TIERS, TIERS, run_temp_root
from spikegate.sim import runner

ROOT = Path(__file__).resolve().parents[1]


def test_caches_are_under_the_runs_temp_dir(tmp_path_factory, cache_dirs):
    from spikegate.boards.build import cache_root  # needs the hw extra (Amaranth)
    run_root = run_temp_root(tmp_path_factory)
    assert cache_dirs.is_relative_to(run_root)
    home = Path.home() / ".cache"
    for cache in (runner.default_build_root(), cache_root()):
        assert cache.is_relative_to(cache_dirs), cache
        assert not cache.is_relative_to(home), cache


def test_tiers_are_registered_markers():
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    registered = {line.split(":")[0] for line in ini["markers"]}
    assert registered == {*TIERS, "slow"}
    assert "--strict-markers" in ini["addopts"]


def test_tier_tables_name_existing_tests():
    files = {p.name for p in (ROOT / "tests").glob("test_*.py")}
    assert files <= set(FILE_TIERS), files - set(FILE_TIERS)
    assert set(FILE_TIERS.values()) | set(TEST_TIERS.values()) <= set(TIERS)
    for key in TEST_TIERS:
        file, name = key.split("::")
        assert f"def {name}(" in (ROOT / "tests" / file).read_text(), key


def test_every_collected_test_has_exactly_one_tier(request):
    for item in request.session.items:
        tiers = [t for t in TIERS if item.get_closest_marker(t) is not None]
        assert len(tiers) == 1, (item.nodeid, tiers)
