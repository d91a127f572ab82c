"""Run the benchmarks: ``python -m bench.run --sizes 1000000,10000000``.

Per size N, on the cached synthetic warehouse of :mod:`bench.generate` (generated, when
missing, in a process of its own), each variant runs in a fresh subprocess started by
:mod:`bench.launcher`, a small process that times it from outside (wall time includes
interpreter start and imports) and reaps it with ``os.wait4``, so its peak RSS and CPU time
are its own and not the runner's:

* ``floor``: :mod:`bench.floor`, the physical floors measured in the same run: the bare
  Arrow stream of the source read and dropped, and DuckDB scanning that stream and hashing
  every row, on each version of the data;
* ``baseline``: :mod:`bench.baseline`, the same steps in raw DuckDB, no connector code;
* ``connector``: :func:`connector.sync` run by :mod:`bench.connector_run` (its result gives
  the per-stage seconds) against the emulator of :mod:`bench.emulator`, running in a
  process of its own whose CPU time is read around each run; the ``→ sink`` variants send to
  the same emulator with parsing switched off (``bench.emulator --sink``), so the difference
  is the emulator's share; the ``--dry-run --out DIR`` variants write the batch files
  instead of sending (and commit nothing);
* ``pandas``: :mod:`bench.naive_pandas`, what a user would write by hand.

Modes: ``first`` (empty state, the first version), ``incremental`` (the state after the first
run, the next version: 1% changed, 0.5% new, 0.5% removed) and ``unchanged`` (the state after
the first run, the first version again). At the largest N, the incremental run is repeated
with ``memory_limit: 512MB``. Every incremental-like run starts from a copy of the state the
first run left, so variants do not influence each other.

The table goes to stdout, everything measured to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psutil
import pyarrow
import yaml

from .floor import FLOORS
from .generate import ATTRIBUTES, DATA_DIR, ID_COLUMN, Dataset, cached

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_PATH = BENCH_DIR / "results" / "latest.json"
WORK_DIR = DATA_DIR / "work"
LOGS_DIR = DATA_DIR / "logs"
SYNC_NAME = "bench"
MEMORY_LIMIT = "512MB"
FLOOR_NAMES = {"stream": "arrow stream", "hash": "duckdb hash"}
MIB = 1024 * 1024


@dataclass
class Measurement:
    """One variant run once (or the median of ``--repeat`` runs) at one size."""

    n: int
    tool: str  # floor | baseline | connector | pandas
    variant: str  # what the table shows after the tool
    mode: str  # first | incremental | unchanged: what it is compared with (a floor: the
    # mode whose data it reads, first or incremental)
    rows: int  # rows read from the source
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    exit_code: int
    counts: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    emulator_cpu_seconds: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The row's name in the table: tool and variant."""
        return f"{self.tool} {self.variant}"

    @property
    def rows_per_second(self) -> float:
        """Source rows per second of wall time."""
        return self.rows / self.wall_seconds if self.wall_seconds else 0.0


@dataclass(frozen=True)
class Child:
    """What a measured subprocess left: its exit code, output and resource use."""

    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int
    stdout: str
    stderr: str


def run_child(command: list[str], logs: Path) -> Child:
    """Run ``command`` through :mod:`bench.launcher`: its own peak RSS and CPU time, not
    inflated by this process's memory (see the launcher for why)."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / "stdout.txt", logs / "stderr.txt"
    launcher = [sys.executable, "-m", "bench.launcher"]
    launcher += ["--stdout", str(out_path), "--stderr", str(err_path), "--", *command]
    ran = subprocess.run(
        launcher, capture_output=True, text=True, cwd=BENCH_DIR.parent, check=False
    )
    if ran.returncode != 0:
        raise RuntimeError(f"the benchmark launcher failed: {ran.stderr.strip()[-2000:]}")
    usage = json.loads(ran.stdout)
    return Child(
        exit_code=int(usage["exit_code"]),
        wall_seconds=float(usage["wall_seconds"]),
        cpu_seconds=float(usage["cpu_seconds"]),
        peak_rss_bytes=int(usage["peak_rss_bytes"]),
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )


class EmulatorProcess:
    """:mod:`bench.emulator` (``sink``: with ``--sink``) in a subprocess; :meth:`cpu_seconds`
    reads its CPU time."""

    def __init__(self, sink: bool = False) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.emulator", *(["--sink"] if sink else [])],
            stdout=subprocess.PIPE,
            text=True,
            cwd=BENCH_DIR.parent,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http://"):
            self.stop()
            raise RuntimeError("the benchmark emulator did not start")
        self._ps = psutil.Process(self.process.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the emulator process has used so far."""
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        """Stop the emulator process."""
        self.process.terminate()
        self.process.wait(timeout=10)


def prepared_dataset(n: int, data_dir: Path = DATA_DIR) -> Dataset:
    """The warehouse of ``n`` profiles, generated (when missing or stale) by
    :mod:`bench.generate` in a process of its own: generating 10M rows takes GBs, which this
    process should never hold."""
    found = cached(n, data_dir=data_dir)
    if found is not None:
        return found
    command = [sys.executable, "-m", "bench.generate", "--sizes", str(n)]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir)],
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    # Its report goes to stderr with the runner's progress: stdout is for the table.
    print(done.stdout.strip(), done.stderr.strip()[-3000:], sep="\n", file=sys.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"bench.generate failed with exit code {done.returncode}")
    found = cached(n, data_dir=data_dir)
    if found is None:
        raise RuntimeError(f"bench.generate left no data set of {n} profiles in {data_dir}")
    return found


def connector_config(
    path: Path, data: Path, state: Path, base_url: str, memory_limit: str | None
) -> Path:
    """Write the sync config of one connector run; returns its path."""
    state_settings: dict[str, Any] = {"path": str(state)}
    if memory_limit:
        state_settings["memory_limit"] = memory_limit
    config = {
        "name": SYNC_NAME,
        "source": {
            "type": "duckdb",
            "database": ":memory:",
            "query": f"select * from read_parquet('{data}')",
        },
        "identity": {"column": ID_COLUMN},
        "attributes": {name: name for name in ATTRIBUTES},
        "target": {
            "client_code": "bench",
            "base_url": base_url,
            "max_rows_per_batch": 500_000,
            "max_bytes_per_batch": 50_000_000,
            "calls_per_minute": 50,
            "status_poll_interval_seconds": 0.05,
            "status_deadline_seconds": 300,
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 1,
        },
        "state": state_settings,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    return path


def copy_state(source: Path, target: Path) -> None:
    """A fresh copy of a state file (and nothing else: no lock, no temp folder)."""
    remove_state(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def remove_state(path: Path) -> None:
    """Remove a DuckDB file with its WAL, lock file and temp folder."""
    for extra in (path, Path(f"{path}.wal"), Path(f"{path}.lock")):
        extra.unlink(missing_ok=True)
    shutil.rmtree(f"{path}.tmp", ignore_errors=True)


def _slug(label: str) -> str:
    """A folder name for a variant's logs."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", label.replace("→", "to")).strip("-")


class Bench:
    """Runs every variant at one size and collects the measurements."""

    def __init__(
        self,
        data: Dataset,
        emulator: EmulatorProcess,
        sink: EmulatorProcess,
        repeat: int,
        with_pandas: bool,
        largest: bool,
    ) -> None:
        self.data = data
        self.emulator = emulator
        self.sink = sink
        self.repeat = repeat
        self.with_pandas = with_pandas
        self.largest = largest
        self.work = WORK_DIR / f"n{data.n}"
        self.logs = LOGS_DIR / f"n{data.n}"
        self.results: list[Measurement] = []
        self.skipped: list[str] = []

    def run_all(self) -> list[Measurement]:
        """Every variant, in an order where each one's starting state exists."""
        shutil.rmtree(self.work, ignore_errors=True)
        shutil.rmtree(self.logs, ignore_errors=True)
        first, nxt = self.data.first, self.data.next
        for floor in FLOORS:
            self.floor(floor, "first", first)
            self.floor(floor, "incremental", nxt)
        base_v1 = self.work / "baseline-v1.duckdb"
        self.baseline("first", "first", first, None, base_v1)
        self.baseline("incremental", "incremental", nxt, base_v1, None)
        self.baseline("unchanged", "unchanged", first, base_v1, None)
        if self.largest:
            self.baseline(f"incremental {MEMORY_LIMIT}", "incremental", nxt, base_v1, None)
        conn_v1 = self.work / "connector-v1.duckdb"
        self.connector("first", "first", first, None, conn_v1)
        # A snapshot belongs to one destination: the sink's runs start from a state made
        # against the sink (one from the emulator would be resent in full).
        conn_sink_v1 = self.work / "connector-sink-v1.duckdb"
        self.connector("first → sink", "first", first, None, conn_sink_v1, sink=True)
        self.connector("first --dry-run", "first", first, None, None, dry_run=True)
        self.connector("incremental", "incremental", nxt, conn_v1, None)
        self.connector("incremental → sink", "incremental", nxt, conn_sink_v1, None, sink=True)
        self.connector("incremental --dry-run", "incremental", nxt, conn_v1, None, dry_run=True)
        # The checkpoint after a first run of many batches merges the row groups those
        # batches left, once (~1 s at 10M); "settled" runs start after that, as every later
        # run does.
        conn_settled = self.work / "connector-settled.duckdb"
        self.connector("unchanged", "unchanged", first, conn_v1, conn_settled)
        self.connector("unchanged, settled", "unchanged", first, conn_settled, None)
        self.connector("incremental, settled", "incremental", nxt, conn_settled, None)
        if self.largest:
            self.connector(
                f"incremental {MEMORY_LIMIT}",
                "incremental",
                nxt,
                conn_v1,
                None,
                memory_limit=MEMORY_LIMIT,
            )
        if self.with_pandas:
            snap_v1 = self.work / "pandas-v1.parquet"
            self.pandas("first", "first", first, None, snap_v1)
            self.pandas("incremental", "incremental", nxt, snap_v1, None)
        shutil.rmtree(self.work, ignore_errors=True)
        return self.results

    def expected(self, tool: str, mode: str) -> dict[str, int]:
        """The counts a correct run of ``tool`` in ``mode`` finds (a floor: the rows read)."""
        e = self.data.expected
        if tool == "floor":
            return {"rows": self.rows(mode)}
        if mode == "first":
            return {"new": e["first_rows"], "changed": 0, "removed": 0}
        if mode == "incremental":
            return {"new": e["new"], "changed": e["changed"], "removed": e["removed"]}
        return {"new": 0, "changed": 0, "removed": 0}

    def rows(self, mode: str) -> int:
        """The source rows a run of ``mode`` reads."""
        return self.data.expected["next_rows" if mode == "incremental" else "first_rows"]

    def repeated(
        self,
        tool: str,
        variant: str,
        mode: str,
        start: Path | None,
        prepare: Callable[[], None],
        once: Callable[[], Measurement],
        keep: Callable[[], None],
    ) -> None:
        """Run a variant ``repeat`` times from the same ``start`` (a state or snapshot file
        an earlier variant left; None: empty) and keep the median-wall run."""
        if start is not None and not start.exists():
            note = f"{tool} {variant}: skipped, the run it starts from failed"
            self.skipped.append(note)
            print(f"  {note}", file=sys.stderr, flush=True)
            return
        self.work.mkdir(parents=True, exist_ok=True)
        runs = []
        for _ in range(self.repeat):
            prepare()
            load = os.getloadavg()[0]
            measured = once()
            measured.details["load_average_before"] = round(load, 2)
            runs.append(measured)
        ordered = sorted(runs, key=lambda m: m.wall_seconds)
        chosen = ordered[(len(ordered) - 1) // 2]
        chosen.details["all_wall_seconds"] = [round(m.wall_seconds, 3) for m in runs]
        expected = self.expected(tool, mode)
        if chosen.exit_code == 0:
            keep()
        else:
            chosen.problems.append(f"exit code {chosen.exit_code}")
        if {k: chosen.counts.get(k) for k in expected} != expected:
            chosen.problems.append(f"counts {chosen.counts} != expected {expected}")
        self.results.append(chosen)
        print(f"  {tool} {variant}: {chosen.wall_seconds:.2f} s", file=sys.stderr, flush=True)

    def floor(self, floor: str, mode: str, data: Path) -> None:
        """Measure one of :mod:`bench.floor`'s floors on the data ``mode`` reads."""

        def once() -> Measurement:
            command = [sys.executable, "-m", "bench.floor", "--data", str(data), "--floor", floor]
            variant = floor_variant(floor, mode)
            child = run_child(command, self.logs / _slug(f"floor {variant}"))
            summary = json.loads(child.stdout) if child.exit_code == 0 else {}
            return self.measurement(
                "floor",
                variant,
                mode,
                child,
                counts={"rows": summary["rows"]} if "rows" in summary else {},
                stage_seconds=summary.get("seconds", {}),
                details={"hash_sum": summary["hash_sum"]} if "hash_sum" in summary else {},
            )

        def nothing() -> None:
            pass

        self.repeated("floor", floor_variant(floor, mode), mode, None, nothing, once, nothing)

    def baseline(
        self, variant: str, mode: str, data: Path, start: Path | None, save: Path | None
    ) -> None:
        """Measure :mod:`bench.baseline` from the state ``start`` (None: empty)."""
        state = self.work / "baseline.duckdb"
        out = self.work / "baseline-out"
        memory_limit = MEMORY_LIMIT if MEMORY_LIMIT in variant else None

        def prepare() -> None:
            remove_state(state)
            shutil.rmtree(out, ignore_errors=True)
            if start is not None:
                copy_state(start, state)

        def once() -> Measurement:
            command = [sys.executable, "-m", "bench.baseline", "--data", str(data)]
            command += ["--state", str(state), "--out", str(out)]
            if memory_limit:
                command += ["--memory-limit", memory_limit]
            child = run_child(command, self.logs / _slug(f"baseline {variant}"))
            summary = json.loads(child.stdout) if child.exit_code == 0 else {}
            return self.measurement(
                "baseline",
                variant,
                mode,
                child,
                counts=summary.get("counts", {}),
                stage_seconds=summary.get("seconds", {}),
                details={"files": summary.get("files"), "bytes": summary.get("bytes")},
            )

        self.repeated("baseline", variant, mode, start, prepare, once, self.keeper(state, save))

    def connector(
        self,
        variant: str,
        mode: str,
        data: Path,
        start: Path | None,
        save: Path | None,
        dry_run: bool = False,
        memory_limit: str | None = None,
        sink: bool = False,
    ) -> None:
        """Measure :func:`connector.sync` from the state ``start`` (None: empty), sending to
        the emulator (``sink``: to the sink) unless ``dry_run``."""
        state = self.work / "connector" / "state.duckdb"
        out = self.work / "connector-out"
        target = self.sink if sink else self.emulator
        config = connector_config(
            self.work / "connector" / "sync.yaml", data, state, target.base_url, memory_limit
        )

        def prepare() -> None:
            remove_state(state)
            shutil.rmtree(out, ignore_errors=True)
            if start is not None:
                copy_state(start, state)

        def once() -> Measurement:
            command = [sys.executable, "-m", "bench.connector_run", str(config)]
            command += ["--dry-run", "--out", str(out)] if dry_run else []
            emulator_before = target.cpu_seconds()
            child = run_child(command, self.logs / _slug(f"connector {variant}"))
            emulator_cpu = target.cpu_seconds() - emulator_before
            measured = self.connector_measurement(variant, mode, child, emulator_cpu, dry_run)
            measured.details["target"] = "none" if dry_run else "sink" if sink else "emulator"
            return measured

        self.repeated("connector", variant, mode, start, prepare, once, self.keeper(state, save))

    def connector_measurement(
        self, variant: str, mode: str, child: Child, emulator_cpu: float, dry_run: bool
    ) -> Measurement:
        """A connector run's measurement, with counts and timings from its result and events."""
        try:
            output = json.loads(child.stdout)
        except json.JSONDecodeError:
            output = {"error": child.stderr.strip().splitlines()[-3:]}
        result = output.get("result", {})
        events = output.get("events", [])
        uploads = [e for e in events if e["event"] == "batch_uploaded"]
        details = {key: result.get(key) for key in ("outcome", "sent", "batches", "bytes_sent")}
        details["upload_round_trip_seconds"] = round(sum(e["elapsed"] for e in uploads), 3)
        details["events"] = [e for e in events if e["event"] not in ("read_progress", "run_end")]
        if "error" in output:
            details["error"] = output["error"]
        return self.measurement(
            "connector",
            variant,
            mode,
            child,
            counts={k: result[k] for k in ("new", "changed", "removed") if k in result},
            stage_seconds=dict(result.get("stage_seconds", {})),
            details=details,
            emulator_cpu=None if dry_run else round(emulator_cpu, 3),
        )

    def pandas(
        self, variant: str, mode: str, data: Path, start: Path | None, save: Path | None
    ) -> None:
        """Measure :mod:`bench.naive_pandas` from the snapshot ``start`` (None: none)."""
        snapshot = self.work / "pandas-snapshot.parquet"
        out = self.work / "pandas-out"

        def prepare() -> None:
            snapshot.unlink(missing_ok=True)
            shutil.rmtree(out, ignore_errors=True)
            if start is not None:
                shutil.copyfile(start, snapshot)

        def once() -> Measurement:
            command = [sys.executable, "-m", "bench.naive_pandas", "--data", str(data)]
            command += ["--snapshot", str(snapshot), "--out", str(out)]
            child = run_child(command, self.logs / _slug(f"pandas {variant}"))
            summary = json.loads(child.stdout) if child.exit_code == 0 else {}
            return self.measurement(
                "pandas",
                variant,
                mode,
                child,
                counts=summary.get("counts", {}),
                stage_seconds=summary.get("seconds", {}),
            )

        def keep() -> None:
            if save is not None:
                shutil.copyfile(snapshot, save)

        self.repeated("pandas", variant, mode, start, prepare, once, keep)

    def keeper(self, state: Path, save: Path | None) -> Callable[[], None]:
        """After a variant: keep its final state as the start of later ones."""

        def keep() -> None:
            if save is not None:
                copy_state(state, save)

        return keep

    def measurement(
        self,
        tool: str,
        variant: str,
        mode: str,
        child: Child,
        *,
        counts: dict[str, int],
        stage_seconds: dict[str, float],
        details: dict[str, Any] | None = None,
        emulator_cpu: float | None = None,
    ) -> Measurement:
        """A measurement of this size from a child's resource use and what it reported."""
        return Measurement(
            n=self.data.n,
            tool=tool,
            variant=variant,
            mode=mode,
            rows=self.rows(mode),
            wall_seconds=round(child.wall_seconds, 3),
            cpu_seconds=round(child.cpu_seconds, 3),
            peak_rss_bytes=child.peak_rss_bytes,
            exit_code=child.exit_code,
            counts=counts,
            stage_seconds=stage_seconds,
            emulator_cpu_seconds=emulator_cpu,
            details=details or {},
        )


def floor_variant(floor: str, mode: str) -> str:
    """A floor's variant name: what it does and which version of the data it reads."""
    return f"{FLOOR_NAMES[floor]}, {'next' if mode == 'incremental' else 'first'}"


# -- reporting -------------------------------------------------------------------------------


def _find(results: list[Measurement], tool: str, variant: str) -> Measurement | None:
    """The measurement of ``tool`` ``variant``, if it ran."""
    return next((m for m in results if m.tool == tool and m.variant == variant), None)


def _ratio(a: float, b: float | None) -> str:
    """``a / b`` as ``1.23×``, or ``-`` without ``b``."""
    return f"{a / b:.2f}×" if b else "-"


def table(results: list[Measurement]) -> str:
    """The figures of one size as a fixed-width table."""
    head = (
        f"{'variant':<34}{'wall s':>8}{'rows/s':>11}{'peak RSS':>10}{'CPU s':>8}"
        f"{'×base':>8}{'CPU×base':>9}{'×floor':>8}{'CPU×fl':>8}{'×pandas':>9}{'RSS×pd':>8}"
        "  notes"
    )
    lines = [head, "-" * len(head)]
    for m in results:
        base = _find(results, "baseline", m.mode)
        pandas = _find(results, "pandas", m.mode)
        # The floor of a row: DuckDB hashing the rows it reads (unchanged runs read the first
        # version, as first runs do).
        floor = _find(results, "floor", floor_variant("hash", m.mode))
        floor = floor if floor is not m else None
        notes = [f"load {m.details.get('load_average_before', 0):.1f}"]
        if m.emulator_cpu_seconds is not None:
            notes.append(f"{m.details['target']} {m.emulator_cpu_seconds:.1f} s CPU")
        if m.tool == "connector" and m.details.get("batches") is not None:
            notes.append(f"batches: {m.details['batches']}")
        notes.extend(m.problems)
        base = base if m.tool != "baseline" else None
        pandas = pandas if m.tool == "connector" else None
        lines.append(
            f"{m.label:<34}{m.wall_seconds:>8.2f}{m.rows_per_second:>11,.0f}"
            f"{m.peak_rss_bytes / MIB:>7,.0f} MiB{m.cpu_seconds:>8.1f}"
            f"{_ratio(m.wall_seconds, base.wall_seconds if base else None):>8}"
            f"{_ratio(m.cpu_seconds, base.cpu_seconds if base else None):>9}"
            f"{_ratio(m.wall_seconds, floor.wall_seconds if floor else None):>8}"
            f"{_ratio(m.cpu_seconds, floor.cpu_seconds if floor else None):>8}"
            f"{_ratio(m.wall_seconds, pandas.wall_seconds if pandas else None):>9}"
            f"{_ratio(m.peak_rss_bytes, pandas.peak_rss_bytes if pandas else None):>8}"
            f"  {'; '.join(notes)}"
        )
    return "\n".join(lines)


def stages(results: list[Measurement]) -> str:
    """Per-stage seconds of every run; ``other`` is the rest of the wall time (interpreter
    start, imports, opening and closing the state file, bookkeeping)."""
    lines = []
    for m in results:
        other = m.wall_seconds - sum(m.stage_seconds.values())
        parts = ", ".join(f"{k} {v:.2f}" for k, v in [*m.stage_seconds.items(), ("other", other)])
        lines.append(f"  {m.label:<34}{parts}")
    return "\n".join(lines)


def targets(results: list[Measurement]) -> list[dict[str, Any]]:
    """The performance targets at the largest size (the typed-fingerprint issue's: CPU and
    wall against the baseline, peak RSS), reported, never asserted; the ×pandas columns of
    the table show how the connector compares with pandas."""
    n = max(m.n for m in results)
    at_n = [m for m in results if m.n == n]

    def get(tool: str, variant: str) -> Measurement | None:
        return _find(at_n, tool, variant)

    checks: list[dict[str, Any]] = []

    def check(name: str, value: float | None, limit: float, unit: str = "×") -> None:
        met = value is not None and value <= limit
        checks.append({"n": n, "target": name, "value": value, "limit": limit, "met": met})
        shown = "n/a" if value is None else f"{value:.2f}{unit}"
        print(f"  [{'met' if met else 'MISSED'}] {name}: {shown} (target ≤ {limit}{unit})")

    def ratios(variant: str, base_variant: str) -> tuple[float | None, float | None]:
        a, b = get("connector", variant), get("baseline", base_variant)
        if a is None or b is None:
            return None, None
        return a.cpu_seconds / b.cpu_seconds, a.wall_seconds / b.wall_seconds

    print(f"targets at N={n:,} (reported, not asserted; CPU and wall against the baseline):")
    for variant, base_variant, limit in (
        ("incremental → sink", "incremental", 1.2),
        ("incremental --dry-run", "incremental", 1.2),
        ("unchanged", "unchanged", 1.0),
        ("unchanged, settled", "unchanged", 1.0),
        ("first --dry-run", "first", 1.3),
        (f"incremental {MEMORY_LIMIT}", "incremental", 2.0),
    ):
        cpu, wall = ratios(variant, base_variant)
        check(f"{variant}, CPU vs baseline {base_variant}", cpu, limit)
        check(f"{variant}, wall vs baseline {base_variant}", wall, limit)
    defaults = [
        m.peak_rss_bytes for m in at_n if m.tool == "connector" and MEMORY_LIMIT not in m.variant
    ]
    peak = max(defaults, default=None)
    check("connector peak RSS, defaults", None if peak is None else peak / 1024**3, 1.5, " GiB")
    limited = get("connector", f"incremental {MEMORY_LIMIT}")
    check(
        f"connector peak RSS, memory_limit {MEMORY_LIMIT}",
        None if limited is None or limited.problems else limited.peak_rss_bytes / 1024**3,
        1.0,
        " GiB",
    )
    return checks


def code_version() -> dict[str, str]:
    """Which connector code was measured: the commit, and a digest of the working tree's
    ``connector/`` sources (others edit them between commits)."""
    root = BENCH_DIR.parent
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    ).stdout.strip()
    digest = hashlib.sha256()
    for path in sorted((root / "connector").rglob("*")):
        if path.suffix in (".py", ".sql") and path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return {"git_head": head, "connector_sources_sha256": digest.hexdigest()[:16]}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
    }


def main() -> None:
    """Parse the arguments, run every size, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated profile counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant (median kept)")
    parser.add_argument(
        "--skip-pandas-above",
        type=int,
        default=10_000_000,
        metavar="N",
        help="skip the pandas variants for sizes above N (they need ~0.9 GB per million rows)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_PATH)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    code = code_version()
    results: list[Measurement] = []
    skipped: list[str] = []
    emulator, sink = EmulatorProcess(), EmulatorProcess(sink=True)
    try:
        for n in sizes:
            print(f"N={n:,}: generating or reusing the warehouse", file=sys.stderr, flush=True)
            bench = Bench(
                prepared_dataset(n),
                emulator,
                sink,
                repeat=args.repeat,
                with_pandas=n <= args.skip_pandas_above,
                largest=n == max(sizes),
            )
            results.extend(bench.run_all())
            skipped.extend(bench.skipped)
    finally:
        emulator.stop()
        sink.stop()
    for n in sizes:
        print(
            f"\nN={n:,}  (wall includes interpreter start; ×base, ×floor, ×pandas: wall ratios; "
            "×floor: against DuckDB hashing the same data)"
        )
        print(table([m for m in results if m.n == n]))
        print("per-stage seconds:")
        print(stages([m for m in results if m.n == n]))
    for note in skipped:
        print(note)
    print()
    checks = targets(results)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine(),
        "code": code,
        "sizes": sizes,
        "repeat": args.repeat,
        "measurements": [asdict(m) for m in results],
        "skipped": skipped,
        "targets": checks,
    }
    args.results.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.results}")


if __name__ == "__main__":
    main()
