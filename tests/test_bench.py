"""The benchmark's own measuring: peak RSS per child, the data set generated apart, floors."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from bench.run import prepared_dataset, run_child

MIB = 1024 * 1024

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB and inherited on Linux"
)


def _hold(mib: int) -> bytes:
    """``mib`` MiB of touched memory (``*`` writes every byte, so every page is resident)."""
    return b"\x01" * (mib * MIB)


@linux_only
def test_a_tiny_child_reports_a_tiny_peak_after_the_runner_held_300_mb(tmp_path: Path) -> None:
    held = _hold(300)
    child = run_child([sys.executable, "-c", "pass"], tmp_path / "logs")
    assert len(held) == 300 * MIB  # held while the child ran
    assert child.exit_code == 0
    # An empty interpreter is ~10-20 MiB; spawned straight from this process it would
    # report this process's ~300+ MiB high-water mark.
    assert child.peak_rss_bytes < 100 * MIB, child.peak_rss_bytes / MIB


@linux_only
def test_a_child_that_allocates_200_mb_reports_at_least_that(tmp_path: Path) -> None:
    code = "import sys; b = b'\\x01' * (200 * 2**20); print(len(b)); print('err', file=sys.stderr)"
    child = run_child([sys.executable, "-c", code], tmp_path / "logs")
    assert child.exit_code == 0
    assert child.peak_rss_bytes >= 200 * MIB, child.peak_rss_bytes / MIB
    assert child.cpu_seconds > 0
    assert child.stdout.strip() == str(200 * MIB)
    assert child.stderr.strip() == "err"


def test_a_failing_child_reports_its_exit_code(tmp_path: Path) -> None:
    child = run_child([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "logs")
    assert child.exit_code == 3


def test_the_data_set_is_generated_in_a_process_of_its_own(tmp_path: Path) -> None:
    data = prepared_dataset(1000, data_dir=tmp_path)
    e = data.expected
    assert e["first_rows"] == 1000
    assert e["next_rows"] == 1000 - e["removed"] + e["new"]
    with duckdb.connect() as con:
        for path, rows in ((data.first, e["first_rows"]), (data.next, e["next_rows"])):
            assert con.execute(f"SELECT count(*) FROM '{path}'").fetchone() == (rows,)
    # Cached: a second call finds the same files and does not rewrite them.
    stamp = data.first.stat().st_mtime_ns
    assert prepared_dataset(1000, data_dir=tmp_path) == data
    assert data.first.stat().st_mtime_ns == stamp
