"""Start one measured command from a small process, so its peak RSS is its own.

``python -m bench.launcher --stdout FILE --stderr FILE -- COMMAND...`` runs COMMAND with its
output in the two files, reaps it with ``os.wait4`` and prints one JSON object: its exit
code, wall seconds (spawn to reap), CPU seconds and peak RSS in bytes.

Why a process in between: on Linux a child's ``ru_maxrss`` starts from the high-water mark
of the address space it was spawned from (``subprocess`` uses ``vfork``, and ``exec`` keeps
the old address space's mark), so every child of a runner that once held a 3 GB data set
reported 3 GB. The launcher is a fresh interpreter that imports only the standard library:
what its child inherits is its own mark, about that of an empty interpreter.

Only the standard library here: each import would raise the floor every child inherits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path


def own_peak_rss_bytes() -> int:
    """This process's own peak RSS: ``VmHWM``, the high-water mark of its address space
    alone (``ru_maxrss`` of ``RUSAGE_SELF`` would include the mark inherited at spawn)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def launch(command: list[str], stdout: Path, stderr: Path) -> dict[str, float | int]:
    """Run ``command`` to its end; its exit code and resource use (its own and that of any
    process it waited for, as ``wait4`` reports them)."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait
    return {
        "exit_code": process.returncode,
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
    }


def main() -> None:
    """Parse the arguments, run the command, print the JSON object."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stdout", type=Path, required=True)
    parser.add_argument("--stderr", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    print(json.dumps(launch(command, args.stdout, args.stderr)))


if __name__ == "__main__":
    main()
