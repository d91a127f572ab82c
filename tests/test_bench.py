"""The benchmark's own measuring: peak RSS per child, the data set generated apart, floors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from bench.generate import ATTRIBUTES, ID_COLUMN
from bench.run import Measurement, prepared_dataset, run_child, table

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent

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


@linux_only
def test_a_child_reads_its_own_peak_not_the_mark_it_inherited(tmp_path: Path) -> None:
    held = _hold(300)
    # Spawned straight from this process (no launcher): its ru_maxrss starts at our mark.
    code = "from bench.launcher import own_peak_rss_bytes; print(own_peak_rss_bytes())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert len(held) == 300 * MIB
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 100 * MIB, int(done.stdout) / MIB
    big = "b = b'\\x01' * (200 * 2**20); " + code
    done = subprocess.run([sys.executable, "-c", big], capture_output=True, text=True, cwd=ROOT)
    assert int(done.stdout) >= 200 * MIB, int(done.stdout) / MIB


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


def test_the_floors_read_and_hash_every_row(tmp_path: Path) -> None:
    data = prepared_dataset(1000, data_dir=tmp_path)
    columns = ", ".join([ID_COLUMN, *ATTRIBUTES])
    for path, rows in ((data.first, 1000), (data.next, data.expected["next_rows"])):
        ran = {}
        for floor in ("stream", "hash"):
            command = [sys.executable, "-m", "bench.floor", "--data", str(path), "--floor", floor]
            child = run_child(command, tmp_path / "logs" / floor)
            assert child.exit_code == 0, child.stderr
            ran[floor] = json.loads(child.stdout)
        assert ran["stream"]["rows"] == ran["hash"]["rows"] == rows
        assert set(ran["stream"]["seconds"]) == {"read"}
        # Every row and column hashed: the same sum as DuckDB reading the file directly.
        with duckdb.connect() as con:
            row = con.execute(f"SELECT sum(hash({columns})) FROM '{path}'").fetchone()
        assert row is not None
        assert ran["hash"]["hash_sum"] == str(row[0])


def _measured(tool: str, variant: str, mode: str, wall: float, cpu: float) -> Measurement:
    return Measurement(
        n=1000,
        tool=tool,
        variant=variant,
        mode=mode,
        rows=1000,
        wall_seconds=wall,
        cpu_seconds=cpu,
        peak_rss_bytes=100 * MIB,
        exit_code=0,
        details={"load_average_before": 0.5},
    )


def test_the_table_shows_the_floors_and_every_run_against_them() -> None:
    results = [
        _measured("floor", "arrow stream, first", "first", 0.5, 0.25),
        _measured("floor", "duckdb hash, first", "first", 1.0, 1.0),
        _measured("floor", "duckdb hash, next", "incremental", 2.0, 2.0),
        _measured("baseline", "first", "first", 2.0, 4.0),
        _measured("baseline", "unchanged", "unchanged", 3.0, 3.0),
        _measured("connector", "incremental", "incremental", 5.0, 8.0),
    ]
    lines = {line.split("  ")[0].strip(): line.split() for line in table(results).splitlines()}

    # After the label: wall, rows/s, RSS (2 words), CPU, ×base, CPU×base, ×floor, CPU×fl.
    def ratios(label: str) -> list[str]:
        words = lines[label]
        return words[len(label.split()) + 5 : len(label.split()) + 9]

    assert ratios("floor arrow stream, first") == ["0.25×", "0.06×", "0.50×", "0.25×"]
    assert ratios("floor duckdb hash, first") == ["0.50×", "0.25×", "-", "-"]
    assert ratios("baseline first") == ["-", "-", "2.00×", "4.00×"]
    # An unchanged run reads the first version: its floor is the first version's.
    assert ratios("baseline unchanged") == ["-", "-", "3.00×", "3.00×"]
    # No incremental baseline here: no ×base, but a floor of the next version.
    assert ratios("connector incremental") == ["-", "-", "2.50×", "4.00×"]
