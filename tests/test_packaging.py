"""The package as a user gets it: sdist and wheel built by `python -m build`, the wheel
installed into a clean virtualenv (no system site-packages) with the oldest DuckDB the package
allows, `target-sync demo` and a small sync run from there, and its state file then taken over
by the newest DuckDB (this environment's) without resending anything.

Slow (two virtualenvs, installs from pip's cache or PyPI); run by `make test` like the rest.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

import connector
from connector.emulator import Emulator

from .conftest import CUSTOMERS

REPO = Path(__file__).resolve().parents[1]
OLDEST_DUCKDB = "2.0.0"  # the lower bound of `duckdb>=2.0.0,<3` in pyproject.toml
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def venv(path: Path) -> Path:
    """A clean virtualenv (the base interpreter's, no system site-packages); its bin folder."""
    base = getattr(sys, "_base_executable", sys.executable)
    run(base, "-m", "venv", path)
    return path / "bin"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """sdist and wheel of the committed sources (git ls-files), built by `python -m build`."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if files.returncode != 0:
        pytest.skip("not a git checkout: the package is built from the committed files")
    for name in filter(None, files.stdout.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    builder = venv(root / "builder")
    run(builder / "python", "-m", "pip", "install", "-q", "build")
    # Without --sdist/--wheel, build makes the sdist, then the wheel from the sdist: a file
    # missing from the sdist breaks the wheel.
    output = run(builder / "python", "-m", "build", "--outdir", root / "dist", source)
    # What `make demo` runs first on a fresh clone: an editable install.
    output += run(builder / "python", "-m", "pip", "install", "--no-deps", "-e", source)
    (root / "build-output.txt").write_text(output)
    (sdist,) = (root / "dist").glob("*.tar.gz")
    (wheel,) = (root / "dist").glob("*.whl")
    return {"root": root, "sdist": sdist, "wheel": wheel, "output": root / "build-output.txt"}


def test_building_and_installing_print_no_packaging_warnings(built: dict[str, Path]) -> None:
    output = built["output"].read_text()
    assert "Successfully built" in output and "Successfully installed target-sync" in output
    for warning in (
        "Deprecat",  # SetuptoolsDeprecationWarning: license as a table, license classifiers
        "SetuptoolsWarning",
        "BuildBackendWarning",  # e.g. setuptools' "Editable installation" notice
        "Editable install",
    ):
        assert warning not in output, output


def test_wheel_carries_license_types_and_data_and_publishes_no_dev_tools(
    built: dict[str, Path],
) -> None:
    with zipfile.ZipFile(built["wheel"]) as wheel:
        names = set(wheel.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
    dist_info = metadata_name.rsplit("/", 1)[0]
    assert f"{dist_info}/licenses/LICENSE" in names
    # Every data file the package reads at run time, wherever a stage package keeps it.
    data_files = {
        path.relative_to(REPO).as_posix()
        for pattern in ("*.sql", "*.yaml", "py.typed")
        for path in (REPO / "connector").rglob(pattern)
    }
    assert {"connector/py.typed", "connector/demo_data/demo.yaml"} <= data_files
    assert data_files <= names, sorted(data_files - names)
    assert not any(n.startswith(("tests/", "bench/", "examples/")) for n in names)
    headers = [line for line in metadata.splitlines() if ": " in line]
    assert "License-Expression: Apache-2.0" in headers
    assert not any(h.startswith("License: ") for h in headers)  # the deprecated field
    extras = {h.split(": ", 1)[1] for h in headers if h.startswith("Provides-Extra: ")}
    assert extras == {"snowflake", "postgres", "sqlalchemy"}
    requires = " ".join(h for h in headers if h.startswith("Requires-Dist: "))
    for dev_only in ("dagster", "apache-airflow", "dbt-core", "pytest", "fakesnow"):
        assert dev_only not in requires
    assert any(h.startswith("Project-URL: ") for h in headers)
    assert "Classifier: Typing :: Typed" in headers


def test_sdist_has_the_package_and_license_and_leaves_tests_out(built: dict[str, Path]) -> None:
    with tarfile.open(built["sdist"]) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "connector/demo_data/demo.yaml"} <= names
    assert "connector/py.typed" in names
    assert not any(n.startswith(("tests", "bench", "examples")) for n in names)


def test_installed_wheel_runs_the_demo_and_a_sync_and_its_state_survives_a_duckdb_upgrade(
    built: dict[str, Path], tmp_path: Path
) -> None:
    bin_dir = venv(tmp_path / "venv")
    run(
        bin_dir / "python",
        "-m",
        "pip",
        "install",
        "-q",
        built["wheel"],
        f"duckdb=={OLDEST_DUCKDB}",
    )
    # From a folder holding no checkout, so that `python -c` cannot import this one.
    version = run(
        bin_dir / "python", "-c", "import duckdb; print(duckdb.__version__)", cwd=tmp_path
    )
    assert version.splitlines()[-1] == OLDEST_DUCKDB
    located = run(
        bin_dir / "python", "-c", "import connector; print(connector.__file__)", cwd=tmp_path
    )
    assert str(tmp_path / "venv") in located  # the installed package, not the checkout

    demo = run(bin_dir / "target-sync", "demo", "--workdir", tmp_path / "demo", cwd=tmp_path)
    assert "demo OK: only changed profiles were sent" in demo

    # A small sync with the installed command and DuckDB 2.0.0 writing the state file.
    warehouse = tmp_path / "warehouse.duckdb"
    run(
        bin_dir / "python",
        "-c",
        f"import duckdb; duckdb.connect({str(warehouse)!r}).execute({CUSTOMERS.format(n=40)!r})",
        cwd=tmp_path,
    )
    with Emulator(client_code="demo") as emulator:
        config = tmp_path / "tiny.yaml"
        document: dict[str, Any] = {
            "name": "tiny",
            "source": {
                "type": "duckdb",
                "database": str(warehouse),
                "query": "select * from customers",
            },
            "identity": {"column": "customer_id"},
            "attributes": {"loyaltyTier": "tier", "city": "city"},
            "target": {
                "client_code": "demo",
                "base_url": emulator.base_url,
                "status_poll_interval_seconds": 0.05,
            },
            "state": {"path": str(tmp_path / "state.duckdb")},
        }
        config.write_text(yaml.safe_dump(document))
        run(bin_dir / "target-sync", "sync", config, cwd=tmp_path)
        assert len(emulator.profiles()) == 40 and len(emulator.uploads) == 1
        with duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True) as con:
            (scheme,) = con.execute("SELECT fingerprint_scheme FROM ts_syncs").fetchone() or ("",)
        assert scheme == f"typed-2/duckdb-hash/{OLDEST_DUCKDB}"

        # The newest DuckDB (this environment's) takes the state file over: fingerprints are
        # recomputed from the stored cells as text fingerprints, which staging then migrates
        # to typed ones; nothing is resent.
        assert duckdb.__version__ != OLDEST_DUCKDB
        result = connector.sync(config)
        assert (result.unchanged, result.new, result.changed, result.sent) == (40, 0, 0, 0)
        assert result.full_resend_reason is None and len(emulator.uploads) == 1
        with duckdb.connect(str(tmp_path / "state.duckdb"), read_only=True) as con:
            (scheme,) = con.execute("SELECT fingerprint_scheme FROM ts_syncs").fetchone() or ("",)
        assert scheme == f"typed-2/duckdb-hash/{duckdb.__version__}"
