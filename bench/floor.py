"""The physical floors of a sync on this machine: what any run must at least spend.

``python -m bench.floor --data FILE.parquet --floor stream|hash`` runs, in this process (the
runner measures it from outside, as every variant):

* ``stream``: the source read, as the baseline and the connector's ``duckdb`` source read it
  (100,000-row Arrow batches from ``read_parquet``), each batch dropped once counted;
* ``hash``: DuckDB scanning that same stream and hashing every row, id and attributes,
  into one sum: the least a diff of every row against a snapshot can cost, before any join,
  staging table or write.

It prints one JSON object on stdout: the seconds of the step, the rows it saw and, for
``hash``, the sum of the row hashes (so that the work cannot be skipped unseen).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import duckdb

from .baseline import source_stream
from .generate import ATTRIBUTES, ID_COLUMN
from .stopwatch import Stopwatch

FLOORS = ("stream", "hash")


def stream(data: Path) -> dict[str, object]:
    """Read every batch of the source stream and drop it."""
    watch = Stopwatch()
    rows = 0
    with duckdb.connect() as source:
        for batch in source_stream(source, data):
            rows += batch.num_rows
    watch.lap("read")
    return {"seconds": watch.seconds, "rows": rows}


def hash_rows(data: Path) -> dict[str, object]:
    """Scan the source stream in a second DuckDB connection (as the baseline stages it) and
    hash every row."""
    watch = Stopwatch()
    columns = ", ".join([ID_COLUMN, *ATTRIBUTES])
    with duckdb.connect() as source, duckdb.connect() as con:
        con.register("source_stream", source_stream(source, data))
        row = con.execute(f"SELECT count(*), sum(hash({columns})) FROM source_stream").fetchone()
    watch.lap("scan+hash")
    assert row is not None
    return {"seconds": watch.seconds, "rows": int(row[0]), "hash_sum": str(row[1])}


def main() -> None:
    """Parse the arguments, run one floor, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--floor", choices=FLOORS, required=True)
    args = parser.parse_args()
    run = stream if args.floor == "stream" else hash_rows
    print(json.dumps(run(args.data)))


if __name__ == "__main__":
    main()
