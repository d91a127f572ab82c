"""Peak memory of streaming a large result through a source vs. materializing it whole.

``python -m bench.source_memory --rows 1000000`` loads ROWS rows x 10 columns into PostgreSQL
(127.0.0.1:5432, database ``test``, schema ``ts_bench_source_memory``, reused when it already
holds ROWS rows) and into a fakesnow server started in a process of its own, then measures
each variant in a fresh subprocess that reports its own peak RSS (``VmHWM``) and the RSS
it had just before the query (imports done), so the difference is what the query cost:

* ``stream``: ``open_reader`` with ``batch_size`` 100,000, each batch dropped after counting;
* ``arrow table``: ``open_reader(...).read_all()``, the whole result as one Arrow table;
* ``fetchall`` (PostgreSQL): SQLAlchemy's default client-side cursor, ``fetchall()``;
* ``fetch_arrow_all`` (Snowflake): the connector's whole result as one Arrow table.

fakesnow answers a query with one response holding every row (real Snowflake splits results
into chunks the connector downloads as they are read), so for it streaming can only bound
what the source adds on top of that response.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .launcher import own_peak_rss_bytes

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PG_SCHEMA = "ts_bench_source_memory"
SF_DATABASE = "BENCH"
BATCH_SIZE = 100_000
MIB = 1024 * 1024

PG_TABLE_SQL = """
CREATE TABLE {schema}.profiles AS
SELECT i::bigint AS id,
       'customer-' || i AS name,
       md5(i::text) AS token,
       (((i * 7919) % 10000000) / 100.0)::numeric(12, 2) AS amount,
       i * 0.5::float8 AS score,
       i % 2 = 0 AS flag,
       date '2000-01-01' + (i % 10000)::int AS day,
       timestamp '2020-01-01' + i * interval '1 second' AS seen_at,
       CASE WHEN i % 3 = 0 THEN NULL ELSE i * 1000003 END AS maybe,
       (i % 50)::int AS bucket
FROM generate_series(1::bigint, {rows}) AS i
"""
# fakesnow runs on DuckDB and passes its range() table function through.
SF_TABLE_SQL = """
CREATE OR REPLACE TABLE profiles AS
SELECT range::NUMBER(18,0) AS id,
       'customer-' || range AS name,
       md5(range::VARCHAR) AS token,
       (((range * 7919) % 10000000) / 100.0)::NUMBER(12,2) AS amount,
       range * 0.5::FLOAT AS score,
       range % 2 = 0 AS flag,
       DATEADD(day, range % 10000, '2000-01-01'::DATE) AS day,
       DATEADD(second, range, '2020-01-01'::TIMESTAMP_NTZ) AS seen_at,
       IFF(range % 3 = 0, NULL, range * 1000003)::NUMBER(18,0) AS maybe,
       (range % 50)::NUMBER(9,0) AS bucket
FROM range(1, {rows} + 1)
"""


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _config(source: dict[str, Any]) -> Any:
    import yaml

    from connector.config import parse_config

    text = yaml.safe_dump(
        {
            "name": "bench_source_memory",
            "source": {**source, "batch_size": BATCH_SIZE},
            "identity": {"column": "id"},
            "attributes": {"name": "name"},
            "target": {"client_code": "bench"},
        }
    )
    return parse_config(text, Path("bench.yaml"), {})


def measure(engine: str, variant: str, port: int) -> dict[str, Any]:
    """Run one variant in this process and report rows, seconds and memory."""
    import pyarrow  # noqa: F401  (imported before the baseline, as every variant needs it)

    if engine == "postgres":
        import psycopg  # noqa: F401
        import sqlalchemy

        query = f"SELECT * FROM {PG_SCHEMA}.profiles"
        source: dict[str, Any] = {"type": "sqlalchemy", "url": PG_URL, "query": query}
    else:
        import snowflake.connector

        query = "SELECT * FROM profiles"
        source = {
            "type": "snowflake",
            "account": "fakesnow",
            "user": "fake",
            "password": "snow",
            "host": "127.0.0.1",
            "port": port,
            "protocol": "http",
            "database": SF_DATABASE,
            "schema": "PUBLIC",
            "query": query,
        }
    from connector.sources import open_reader

    config = _config(source)
    baseline = _rss()
    start = time.perf_counter()
    batches = 0
    largest = 0
    if variant == "stream":
        rows = 0
        with open_reader(config) as reader:
            for batch in reader:
                rows += batch.num_rows
                batches += 1
                largest = max(largest, batch.num_rows)
    elif variant == "arrow table":
        with open_reader(config) as reader:
            rows = reader.read_all().num_rows
    elif variant == "fetchall":
        engine_ = sqlalchemy.create_engine(PG_URL)
        with engine_.connect() as conn:
            rows = len(conn.exec_driver_sql(query).fetchall())
    elif variant == "fetch_arrow_all":
        snow = snowflake.connector.connect(
            **{k: v for k, v in source.items() if k not in ("type", "query")}
        )
        cursor = snow.cursor()
        cursor.execute(query)
        rows = cursor.fetch_arrow_all(force_return_table=True).num_rows
        snow.close()
    else:
        raise SystemExit(f"unknown variant {variant}")
    seconds = time.perf_counter() - start
    # Not ru_maxrss: it would include the high-water mark of the process that spawned this one.
    peak = own_peak_rss_bytes()
    return {
        "engine": engine,
        "variant": variant,
        "rows": rows,
        "batches": batches,
        "largest_batch": largest,
        "seconds": round(seconds, 2),
        "baseline_mib": round(baseline / MIB),
        "peak_mib": round(peak / MIB),
        "query_mib": round((peak - baseline) / MIB),
    }


def load_postgres(rows: int) -> None:
    """Create the table unless it already holds ``rows`` rows."""
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as c:
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
        exists = c.execute(f"SELECT to_regclass('{PG_SCHEMA}.profiles') IS NOT NULL").fetchone()
        if exists and exists[0]:
            count = c.execute(f"SELECT count(*) FROM {PG_SCHEMA}.profiles").fetchone()
            if count and count[0] == rows:
                return
            c.execute(f"DROP TABLE {PG_SCHEMA}.profiles")
        c.execute(PG_TABLE_SQL.format(schema=PG_SCHEMA, rows=rows))


@contextlib.contextmanager
def fakesnow_process() -> Iterator[int]:
    """fakesnow's server in a process of its own (its memory is not the client's)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        [sys.executable, "-m", "fakesnow", "-s", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("fakesnow's server did not start")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def load_fakesnow(port: int, rows: int) -> float:
    import snowflake.connector

    start = time.perf_counter()
    conn = snowflake.connector.connect(
        account="fakesnow",
        user="fake",
        password="snow",
        host="127.0.0.1",
        port=port,
        protocol="http",
        database=SF_DATABASE,
        schema="PUBLIC",
    )
    conn.cursor().execute(SF_TABLE_SQL.format(rows=rows))
    conn.close()
    return time.perf_counter() - start


def run_child(engine: str, variant: str, port: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.source_memory", "--measure", engine, variant, str(port)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{engine}/{variant} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    """Load the data, run every variant in a fresh subprocess, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="postgres,snowflake")
    parser.add_argument("--measure", nargs=3, metavar=("ENGINE", "VARIANT", "PORT"))
    args = parser.parse_args()
    if args.measure:
        engine, variant, port = args.measure
        print(json.dumps(measure(engine, variant, int(port))))
        return

    results = []
    engines = args.engines.split(",")
    if "postgres" in engines:
        start = time.perf_counter()
        load_postgres(args.rows)
        print(f"postgres: {args.rows:,} rows ready in {time.perf_counter() - start:.1f} s")
        for variant in ("stream", "arrow table", "fetchall"):
            results.append(run_child("postgres", variant, 0))
    if "snowflake" in engines:
        with fakesnow_process() as port:
            seconds = load_fakesnow(port, args.rows)
            print(f"fakesnow: {args.rows:,} rows loaded in {seconds:.1f} s")
            for variant in ("stream", "arrow table", "fetch_arrow_all"):
                results.append(run_child("snowflake", variant, port))

    header = f"{'engine':<10} {'variant':<16} {'rows':>10} {'batches':>8} {'max batch':>10}"
    header += f" {'seconds':>8} {'before MiB':>11} {'peak MiB':>9} {'query MiB':>10}"
    print(header)
    for r in results:
        print(
            f"{r['engine']:<10} {r['variant']:<16} {r['rows']:>10,} {r['batches']:>8} "
            f"{r['largest_batch']:>10,} {r['seconds']:>8} {r['baseline_mib']:>11} "
            f"{r['peak_mib']:>9} {r['query_mib']:>10}"
        )


if __name__ == "__main__":
    main()
