"""`make test` installs the `dev` dependency group, not the extras: a package an extra adds
that the test group lacks is a code path CI never runs (it failed once that way, for the
ADBC reader of the `postgres` extra)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def names(requirements: list[str]) -> set[str]:
    return {Requirement(text).name.lower().replace("_", "-") for text in requirements}


def test_the_test_group_installs_every_package_of_every_extra() -> None:
    project = tomllib.loads(PYPROJECT.read_text())
    extras = project["project"]["optional-dependencies"]
    test_group = names([r for r in project["dependency-groups"]["test"] if isinstance(r, str)])
    assert extras, "pyproject.toml declares no extras: this test has nothing to compare"
    missing = {
        extra: sorted(names(requirements) - test_group) for extra, requirements in extras.items()
    }
    assert not any(missing.values()), f"extras' packages missing from the test group: {missing}"
