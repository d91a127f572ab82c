"""``python -m connector`` is the ``target-sync`` command."""

from .cli import main

main(prog_name="target-sync")
