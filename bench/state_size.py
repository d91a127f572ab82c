"""How big the state file is with and without stored attribute values (``state.keep_values``).

``python -m bench.state_size [--size 1000000]`` syncs the benchmark warehouse (first version,
then the next day's) to the benchmark's sink emulator twice, once keeping values and once
with ``keep_values: false``, and prints the state file's size after each run and the ratio.
Each sync runs in a subprocess of its own, as a user's would.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .generate import dataset
from .run import BENCH_DIR, WORK_DIR, EmulatorProcess, connector_config


def _sync(config: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.connector_run", str(config)],
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the sync of {config} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")


def main() -> None:
    """Measure and print the sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    args = parser.parse_args()
    data = dataset(args.size)
    work = WORK_DIR / f"state-size-n{args.size}"
    shutil.rmtree(work, ignore_errors=True)
    sink = EmulatorProcess(sink=True)
    sizes: dict[bool, list[int]] = {}
    try:
        for keep in (True, False):
            state = work / f"keep-{str(keep).lower()}" / "state.duckdb"
            sizes[keep] = []
            for version in (data.first, data.next):
                config = connector_config(
                    work / f"keep-{keep}.yaml", version, state, sink.base_url, None
                )
                settings = yaml.safe_load(config.read_text())
                settings["state"]["keep_values"] = keep
                config.write_text(yaml.safe_dump(settings, sort_keys=False))
                _sync(config)
                sizes[keep].append(state.stat().st_size)
    finally:
        sink.stop()
    print(f"state file size, {args.size:,} profiles x 10 attributes:")
    print(f"  {'':<22}{'after first run':>18}{'after next run':>18}")
    for keep in (True, False):
        label = f"keep_values: {str(keep).lower()}"
        first, later = sizes[keep]
        print(f"  {label:<22}{first / 2**20:>15.1f} MiB{later / 2**20:>15.1f} MiB")
    ratio = sizes[False][1] / sizes[True][1]
    print(f"  keep_values: false / true after the next run: {ratio:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
