"""The raw DuckDB baseline: the connector's steps, hand-written, with no connector code.

``python -m bench.baseline --data FILE.parquet --state STATE.duckdb --out DIR`` runs, in this
process (the runner measures it from outside):

1. stream the Parquet file as 100,000-row Arrow batches (the same reader the connector's
   ``duckdb`` source uses) into a staging table of a file-backed DuckDB database, with a
   64-bit ``hash()`` of the attributes per row;
2. without a snapshot (first run): every staged row is new, nothing to join or copy;
   otherwise one FULL OUTER JOIN on id (the snapshot side carrying only id and hash),
   comparing the hashes, into a changes table;
3. write the new and changed rows as CSV, at most 500,000 rows a file, with pyarrow's CSV
   writer, reading the changes in 100,000-row chunks;
4. swap the snapshot: the staging table becomes the snapshot.

It prints one JSON object on stdout: the seconds of each step and the counts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb
import pyarrow
import pyarrow.csv as pacsv

from .generate import ATTRIBUTES, ID_COLUMN
from .stopwatch import Stopwatch

READ_CHUNK_ROWS = 100_000
FILE_ROWS = 500_000


def source_stream(source: duckdb.DuckDBPyConnection, data: Path) -> pyarrow.RecordBatchReader:
    """The Parquet file as 100,000-row Arrow batches, read by the connection ``source``."""
    return source.sql(f"SELECT * FROM read_parquet('{data}')").to_arrow_reader(READ_CHUNK_ROWS)


def stage(con: duckdb.DuckDBPyConnection, data: Path) -> None:
    """Stream the Parquet file into ``stage`` with a hash of every row's attributes."""
    source = duckdb.connect()
    try:
        con.register("source_stream", source_stream(source, data))
        con.execute(
            f"CREATE OR REPLACE TABLE stage AS SELECT {ID_COLUMN} AS id, "
            f"{', '.join(ATTRIBUTES)}, hash({', '.join(ATTRIBUTES)}) AS h FROM source_stream"
        )
        con.unregister("source_stream")
    finally:
        source.close()


def diff(con: duckdb.DuckDBPyConnection, first_run: bool) -> dict[str, int]:
    """Without a snapshot, count the staged rows (all new: no join, no copy); otherwise fill
    ``changes`` with the new, changed and removed rows. Returns how many of each."""
    if first_run:
        new = con.execute("SELECT count(*) FROM stage").fetchall()[0][0]
        return {"new": int(new), "changed": 0, "removed": 0}
    con.execute(
        "CREATE OR REPLACE TABLE changes AS "
        "SELECT s.*, coalesce(s.id, p.id) AS key, CASE WHEN s.id IS NULL THEN 'removed' "
        "WHEN p.id IS NULL THEN 'new' ELSE 'changed' END AS kind "
        "FROM stage AS s FULL OUTER JOIN (SELECT id, h FROM snapshot) AS p ON s.id = p.id "
        "WHERE s.h IS DISTINCT FROM p.h"
    )
    counts = dict(con.execute("SELECT kind, count(*) FROM changes GROUP BY kind").fetchall())
    return {kind: int(counts.get(kind, 0)) for kind in ("new", "changed", "removed")}


def write_csv(con: duckdb.DuckDBPyConnection, out_dir: Path, first_run: bool) -> tuple[int, int]:
    """Write the new and changed rows as CSV files; return (files, bytes)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = "stage" if first_run else "changes WHERE kind <> 'removed'"
    reader = con.sql(f"SELECT id, {', '.join(ATTRIBUTES)} FROM {rows}").to_arrow_reader(
        READ_CHUNK_ROWS
    )
    files = 0
    writer: pacsv.CSVWriter | None = None
    rows_in_file = 0
    for chunk in reader:
        position = 0
        while position < chunk.num_rows:
            if writer is None or rows_in_file == FILE_ROWS:
                if writer is not None:
                    writer.close()
                files += 1
                writer = pacsv.CSVWriter(out_dir / f"batch-{files:04d}.csv", chunk.schema)
                rows_in_file = 0
            take = min(FILE_ROWS - rows_in_file, chunk.num_rows - position)
            writer.write_batch(chunk.slice(position, take))
            rows_in_file += take
            position += take
    if writer is not None:
        writer.close()
    size = sum(path.stat().st_size for path in out_dir.glob("batch-*.csv"))
    return files, size


def swap(con: duckdb.DuckDBPyConnection) -> None:
    """The staged rows become the snapshot; the changes are dropped."""
    con.execute("DROP TABLE IF EXISTS snapshot")
    con.execute("ALTER TABLE stage RENAME TO snapshot")
    con.execute("DROP TABLE IF EXISTS changes")
    con.execute("CHECKPOINT")


def run(data: Path, state: Path, out_dir: Path, memory_limit: str | None) -> dict[str, object]:
    """One baseline sync of ``data`` against the snapshot in ``state`` (if any)."""
    watch = Stopwatch()

    con = duckdb.connect(str(state))
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{state}.tmp'")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    first_run = not con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'snapshot'"
    ).fetchall()[0][0]
    stage(con, data)
    watch.lap("read")
    counts = diff(con, bool(first_run))
    watch.lap("diff")
    files, size = write_csv(con, out_dir, bool(first_run))
    watch.lap("csv")
    swap(con)
    con.close()
    watch.lap("swap")
    return {"seconds": watch.seconds, "counts": counts, "files": files, "bytes": size}


def main() -> None:
    """Parse the arguments, run, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--memory-limit")
    args = parser.parse_args()
    print(json.dumps(run(args.data, args.state, args.out, args.memory_limit)))


if __name__ == "__main__":
    main()
