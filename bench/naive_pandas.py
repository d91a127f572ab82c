"""What a user would write by hand with pandas: the comparison point for memory and speed.

``python -m bench.naive_pandas --data FILE.parquet --snapshot SNAP.parquet --out DIR``
reads the whole Parquet file into a DataFrame; when a snapshot (the previous run's data)
exists, merges the two on id and keeps rows that are new or differ in any attribute,
compared NULL-correctly (a plain ``!=`` counts NaN != NaN as a change); writes those rows as
one CSV file; and keeps the input file as the next snapshot (a file copy, the cheapest swap
there is, so the figure flatters pandas). It prints one JSON object on
stdout: the seconds of each step and the counts.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pandas as pd

from .generate import ATTRIBUTES, ID_COLUMN
from .stopwatch import Stopwatch


def run(data: Path, snapshot: Path, out_dir: Path) -> dict[str, object]:
    """One naive sync of ``data`` against ``snapshot`` (if it exists)."""
    watch = Stopwatch()

    current = pd.read_parquet(data)
    watch.lap("read")
    counts = {"new": len(current), "changed": 0, "removed": 0}
    if snapshot.exists():
        previous = pd.read_parquet(snapshot)
        merged = current.merge(
            previous, on=ID_COLUMN, how="outer", suffixes=("", "_prev"), indicator=True
        )
        both = merged["_merge"] == "both"
        differs = pd.Series(False, index=merged.index)
        for column in ATTRIBUTES:
            new, old = merged[column], merged[f"{column}_prev"]
            same = (new == old) | (new.isna() & old.isna())
            differs |= ~same.fillna(False).astype(bool)
        is_new = merged["_merge"] == "left_only"
        changes = merged.loc[is_new | (both & differs), [ID_COLUMN, *ATTRIBUTES]]
        counts = {
            "new": int(is_new.sum()),
            "changed": int((both & differs).sum()),
            "removed": int((merged["_merge"] == "right_only").sum()),
        }
    else:
        changes = current
    watch.lap("diff")
    out_dir.mkdir(parents=True, exist_ok=True)
    changes.to_csv(out_dir / "changes.csv", index=False)
    watch.lap("csv")
    shutil.copyfile(data, snapshot)
    watch.lap("swap")
    return {"seconds": watch.seconds, "counts": counts}


def main() -> None:
    """Parse the arguments, run, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(run(args.data, args.snapshot, args.out)))


if __name__ == "__main__":
    main()
