"""The ``target-sync`` command: parse, call one library function, render, exit.

:mod:`.app` is the command group; the commands are in :mod:`.sync`, :mod:`.commands` (plan,
validate, verify, status, reset) and :mod:`.tools` (emulator, demo, dbt). :mod:`.context`
turns exceptions into exit codes, :mod:`.progress` and :mod:`.reports` draw what a person
sees, :mod:`.logs` sets up logging (text, or one JSON object a line).
"""

from .app import main

__all__ = ["main"]
