"""Synthetic warehouses for the benchmarks, generated inside DuckDB and cached as Parquet.

A warehouse of N profiles has two versions, each one Parquet file under
``bench/data/n{N}/``:

* ``first.parquet``: N rows, the identity ``customer_id`` and 10 attributes of mixed types
  (strings with commas, spaces, ``%``, ``&``, ``+``, ``/``, quotes, newlines and non-ASCII
  text; BIGINT, DOUBLE, DECIMAL(12,2), BOOLEAN, DATE, TIMESTAMP), each with some NULLs;
* ``next.parquet``: the same profiles a day later: 1% changed (``visits`` moves by one, and
  some also lose their ``city`` or change ``tier``), 0.5% removed and N/200 new ones.

Every value is a function of the row number and the seed (DuckDB's ``hash()``), so a
version is reproducible and no Python loop touches a row. ``manifest.json`` records what was
generated and the expected diff counts; a cache whose manifest does not match (another
generator version, seed or DuckDB version, whose ``hash()`` may differ) is rebuilt.

Run ``python -m bench.generate --sizes 1000000`` to build the caches ahead of a benchmark.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

DATA_DIR = Path(__file__).resolve().parent / "data"
GENERATOR_VERSION = 1
DEFAULT_SEED = 20_240_601
ID_COLUMN = "customer_id"

# Changed rows: u < CHANGED; removed rows: CHANGED <= u < CHANGED + REMOVED (u in 0..9999).
CHANGED = 100
REMOVED = 50


def _h(k: int, seed: int) -> str:
    """A pseudo-random UBIGINT of the row number ``i``, independent per ``k``."""
    return f"hash(i, {seed}, {k})"


def _nullable(expr: str, k: int, seed: int, percent: int) -> str:
    """``expr``, or NULL for about ``percent`` % of the rows."""
    return f"CASE WHEN {_h(k + 1000, seed)} % 100 < {percent} THEN NULL ELSE {expr} END"


def attribute_sql(seed: int) -> dict[str, str]:
    """The 10 attribute columns of the first version, as SQL over the row number ``i``."""
    tiers = "['bronze', 'silver', 'gold', 'platinum', 'gold, plus', 'VIP & friends']"
    cities = (
        "['São Paulo', 'Zürich', 'New York, NY', 'Kraków', '東京', 'Saint-Étienne', "
        "'L''Aquila', '100% Café', 'Berlin', 'a b+c/d']"
    )
    note = (
        f"CASE {_h(4, seed)} % 8 "
        f"WHEN 0 THEN 'promo ' || ({_h(40, seed)} % 100) || '% off & free shipping' "
        "WHEN 1 THEN 'a, b, c' "
        "WHEN 2 THEN 'naïve café ☕' "
        "WHEN 3 THEN '“quoted” text, with \"double\" quotes' "
        "WHEN 4 THEN 'x+y=z / 2' "
        "WHEN 5 THEN 'line one' || chr(10) || 'line two' "
        "WHEN 6 THEN '' "
        f"ELSE 'plain note ' || ({_h(40, seed)} % 1000) END"
    )
    return {
        "tier": _nullable(f"{tiers}[1 + CAST({_h(1, seed)} % 6 AS BIGINT)]", 1, seed, 3),
        "city": _nullable(f"{cities}[1 + CAST({_h(2, seed)} % 10 AS BIGINT)]", 2, seed, 5),
        "email": _nullable("'user.' || i || '@example.com'", 3, seed, 2),
        "note": _nullable(note, 4, seed, 20),
        "visits": _nullable(f"CAST({_h(5, seed)} % 1000 AS BIGINT)", 5, seed, 5),
        "score": _nullable(
            f"(CAST({_h(6, seed)} % 2000001 AS DOUBLE) - 1000000) / 1000", 6, seed, 5
        ),
        "ltv": _nullable(
            f"CAST(CAST({_h(7, seed)} % 100000000 AS DECIMAL(12, 0)) / 100 AS DECIMAL(12, 2))",
            7,
            seed,
            5,
        ),
        "vip": _nullable(f"{_h(8, seed)} % 10 = 0", 8, seed, 5),
        "signup_date": _nullable(
            f"DATE '2015-01-01' + CAST({_h(9, seed)} % 3650 AS INTEGER)", 9, seed, 5
        ),
        "last_seen": _nullable(
            "TIMESTAMP '2024-01-01' + to_microseconds(CAST(CASE "
            f"WHEN {_h(11, seed)} % 2 = 0 THEN {_h(10, seed)} % 31536000 * 1000000 "
            f"ELSE {_h(10, seed)} % 31536000000000 END AS BIGINT))",
            10,
            seed,
            5,
        ),
    }


ATTRIBUTES = list(attribute_sql(DEFAULT_SEED))


@dataclass(frozen=True)
class Dataset:
    """The two versions of one synthetic warehouse and the diff expected between them."""

    n: int
    first: Path
    next: Path
    expected: dict[str, int]


def _rows_sql(n_rows: int, seed: int) -> str:
    """Every column of rows ``0 .. n_rows - 1`` plus ``u``, which decides each row's fate."""
    columns = ",\n    ".join(f"{sql} AS {name}" for name, sql in attribute_sql(seed).items())
    return (
        f"SELECT i, {_h(999, seed)} % 10000 AS u, "
        f"'cust-' || lpad(CAST(i AS VARCHAR), 10, '0') AS {ID_COLUMN},\n    {columns}\n"
        f"FROM range(0, {n_rows}) AS t(i)"
    )


def _next_sql(n: int, seed: int) -> str:
    """The second version: changed rows altered, removed rows left out, new rows added."""
    changed = f"(i < {n} AND u < {CHANGED})"
    altered = {
        "visits": f"CASE WHEN {changed} THEN coalesce(visits, 0) + 1 ELSE visits END",
        "city": f"CASE WHEN {changed} AND u < 30 THEN NULL ELSE city END",
        "tier": f"CASE WHEN {changed} AND u >= 30 AND u < 60 THEN 'gold, plus' ELSE tier END",
    }
    columns = ", ".join(f"{altered.get(name, name)} AS {name}" for name in ATTRIBUTES)
    return (
        f"SELECT {ID_COLUMN}, {columns} FROM ({_rows_sql(n + n // 200, seed)}) "
        f"WHERE i >= {n} OR u < {CHANGED} OR u >= {CHANGED + REMOVED}"
    )


def _manifest(n: int, seed: int) -> dict[str, object]:
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "duckdb_version": duckdb.__version__,
        "n": n,
    }


def dataset(n: int, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR) -> Dataset:
    """The cached warehouse of ``n`` profiles, generated first when missing or stale."""
    found = cached(n, seed, data_dir)
    if found is not None:
        return found
    return _generate(n, seed, data_dir / f"n{n}", _manifest(n, seed))


def cached(n: int, seed: int = DEFAULT_SEED, data_dir: Path = DATA_DIR) -> Dataset | None:
    """The cached warehouse of ``n`` profiles, or None when it is missing or stale."""
    if n < 200:
        raise ValueError(f"n must be at least 200 (so that n/200 new rows exist), got {n}")
    folder = data_dir / f"n{n}"
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return None
    wanted = _manifest(n, seed)
    stored = json.loads(manifest_path.read_text())
    if {k: stored.get(k) for k in wanted} != wanted:
        return None
    return _load(folder, stored)


def _load(folder: Path, manifest: dict[str, object]) -> Dataset:
    expected = manifest["expected"]
    assert isinstance(expected, dict)
    return Dataset(
        n=int(str(manifest["n"])),
        first=folder / "first.parquet",
        next=folder / "next.parquet",
        expected={k: int(v) for k, v in expected.items()},
    )


def _generate(n: int, seed: int, folder: Path, manifest: dict[str, object]) -> Dataset:
    """Write both versions into a scratch folder, then move it into place."""
    scratch = folder.with_name(folder.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    started = time.perf_counter()
    with duckdb.connect() as con:
        con.execute(f"SET temp_directory = '{scratch / 'tmp'}'")
        first = f"SELECT * EXCLUDE (i, u) FROM ({_rows_sql(n, seed)}) ORDER BY i"
        for name, sql in (("first", first), ("next", _next_sql(n, seed))):
            con.execute(
                f"COPY ({sql}) TO '{scratch / f'{name}.parquet'}' "
                "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
            )
        row = con.execute(
            f"SELECT count(*) FILTER (WHERE u < {CHANGED}), "
            f"count(*) FILTER (WHERE u >= {CHANGED} AND u < {CHANGED + REMOVED}) "
            f"FROM (SELECT {_h(999, seed)} % 10000 AS u FROM range(0, {n}) AS t(i))"
        ).fetchone()
    assert row is not None
    changed, removed = int(row[0]), int(row[1])
    new = n // 200
    expected = {
        "first_rows": n,
        "next_rows": n - removed + new,
        "new": new,
        "changed": changed,
        "removed": removed,
    }
    shutil.rmtree(scratch / "tmp", ignore_errors=True)
    stored = {**manifest, "expected": expected, "seconds": round(time.perf_counter() - started, 2)}
    (scratch / "manifest.json").write_text(json.dumps(stored, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    scratch.rename(folder)
    return _load(folder, stored)


def main() -> None:
    """``python -m bench.generate --sizes 1000000,10000000``: build the caches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000", help="comma-separated profile counts")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()
    for n in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        data = dataset(n, args.seed, args.data_dir)
        print(f"n={n}: {data.first.parent} ({time.perf_counter() - started:.1f} s) {data.expected}")


if __name__ == "__main__":
    main()
