"""One connector run for the benchmark, through the public Python API.

``python -m bench.connector_run CONFIG [--dry-run --out DIR]`` calls
:func:`connector.sync` as an orchestrator would (with a listener, as the CLI always has one)
and prints one JSON object on stdout: the run's result and every event with the seconds
since the call started. It exits 1 when the run raises (the JSON then holds the error).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import connector
from connector.errors import TargetSyncError
from connector.result import Event


def main() -> None:
    """Run the sync of CONFIG once and print what happened."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    events: list[dict[str, Any]] = []

    def listen(event: Event) -> None:
        seconds = round(time.perf_counter() - started, 3)
        events.append({"t": seconds, "event": event.name, **event.fields})

    try:
        result = connector.sync(
            args.config, dry_run=args.dry_run, out_dir=args.out, listener=listen
        )
    except Exception as exc:  # report any failure as JSON; the runner shows it
        error = str(exc) if isinstance(exc, TargetSyncError) else f"{type(exc).__name__}: {exc}"
        print(json.dumps({"error": error, "events": events}, default=str))
        sys.exit(1)
    print(json.dumps({"result": result.to_dict(), "events": events}, default=str))


if __name__ == "__main__":
    main()
