"""Reading PostgreSQL: psycopg (today's reader) vs ADBC's binary COPY, against the floors.

``python -m bench.pg_read --rows 1000000 [--repeat 3]`` (``make bench-pg``) loads ROWS rows x
10 columns into PostgreSQL (127.0.0.1:5432, database ``test``, the table of
``bench/source_memory.py``, reused when it already holds ROWS rows), then runs each variant
in a fresh subprocess that drains the result and reports its own wall time, CPU time and
peak RSS (``VmHWM``, read by the child itself):

* ``query only``: ``SELECT count(*) FROM (query)``, the database running the query alone;
* ``bare ADBC stream``: ADBC's batches read and dropped, no conversion (streaming it out to
  nowhere, the floor of any Arrow-native read);
* ``reader: sqlalchemy``: the sqlalchemy source through psycopg, as every version before
  ``reader`` existed read it;
* ``reader: adbc``: the same source through ADBC, converted to the same Arrow.

Ratios are against ``reader: sqlalchemy`` of the same run. Figures vary run to run on shared
machines: compare within one run, and print ``--repeat`` medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.launcher import own_peak_rss_bytes
from bench.source_memory import PG_SCHEMA, PG_URL, load_postgres

QUERY = f"SELECT * FROM {PG_SCHEMA}.profiles"
VARIANTS = ("query only", "bare ADBC stream", "reader: sqlalchemy", "reader: adbc")
BASE = "reader: sqlalchemy"


def measure(variant: str) -> dict[str, Any]:
    """Run one variant in this process: rows, seconds, CPU seconds and peak MiB."""
    import pyarrow  # noqa: F401  (every variant needs it: imported before the clock starts)

    libpq = PG_URL.replace("postgresql+psycopg", "postgresql")
    rows = 0
    start, cpu = time.perf_counter(), time.process_time()
    if variant == "query only":
        import psycopg

        with psycopg.connect(libpq) as conn:
            rows = conn.execute(f"SELECT count(*) FROM ({QUERY}) AS q").fetchone()[0]  # type: ignore[index]
    elif variant == "bare ADBC stream":
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(libpq) as conn, conn.cursor() as cursor:
            cursor.execute(QUERY)
            for batch in cursor.fetch_record_batch():
                rows += batch.num_rows
    else:
        import yaml

        from connector.config import parse_config
        from connector.sources import open_reader

        source = {
            "type": "sqlalchemy",
            "url": PG_URL,
            "query": QUERY,
            "reader": variant.split(": ")[1],
            "batch_size": 100_000,
        }
        text = yaml.safe_dump(
            {
                "name": "bench_pg_read",
                "source": source,
                "identity": {"column": "id"},
                "attributes": {"name": "name"},
                "target": {"client_code": "bench"},
            }
        )
        config = parse_config(text, Path("bench.yaml"), {})
        with open_reader(config) as reader:
            for batch in reader:
                rows += batch.num_rows
    return {
        "variant": variant,
        "rows": rows,
        "seconds": round(time.perf_counter() - start, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "peak_mib": round(own_peak_rss_bytes() / 2**20, 1),
    }


def run_child(variant: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.pg_read", "--measure", variant],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Load the data, run every variant ``--repeat`` times in fresh subprocesses, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--measure", metavar="VARIANT")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return

    start = time.perf_counter()
    load_postgres(args.rows)
    print(f"postgres: {args.rows:,} rows ready in {time.perf_counter() - start:.1f} s")
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeat):
        for variant in VARIANTS:  # interleaved: load changes hit every variant alike
            runs[variant].append(run_child(variant))
    medians = {
        v: min(rs, key=lambda r: abs(r["seconds"] - statistics.median(x["seconds"] for x in rs)))
        for v, rs in runs.items()
    }
    base = medians[BASE]
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeat}; ratios to {BASE}")
    print(
        f"{'variant':<20} {'rows':>10} {'wall s':>8} {'x':>6} {'cpu s':>8} {'x':>6} {'peak MiB':>9}"
    )
    for variant, r in medians.items():
        assert r["rows"] == args.rows, (variant, r["rows"])
        print(
            f"{variant:<20} {r['rows']:>10,} {r['seconds']:>8.2f} "
            f"{r['seconds'] / base['seconds']:>6.2f} {r['cpu_seconds']:>8.2f} "
            f"{r['cpu_seconds'] / max(base['cpu_seconds'], 1e-9):>6.2f} {r['peak_mib']:>9}"
        )


if __name__ == "__main__":
    main()
