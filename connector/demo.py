"""``target-sync demo``: the whole path on the embedded default, in a minute.

Builds a small DuckDB warehouse from ``demo_data/warehouse.sql``, starts the Target emulator on
loopback, runs ``demo_data/demo.yaml`` against it, changes a few rows with
``demo_data/changes.sql``, runs again, and shows that only those profiles were sent. The
``demo_data`` folder ships inside the package, so the demo runs from an installed wheel too.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click
import duckdb

from .config import load_config
from .emulator import Emulator
from .pipeline import sync
from .private import private_folder, private_umask
from .result import EXIT_OK, SyncResult

DEMO_DATA = Path(__file__).resolve().parent / "demo_data"


def _asset(name: str) -> Path:
    return DEMO_DATA / name


def run_demo(workdir: Path) -> int:
    """Run the demo in ``workdir`` (recreated); returns the exit code."""
    config_path = _asset("demo.yaml")
    if workdir.exists():
        shutil.rmtree(workdir)
    private_folder(workdir)
    warehouse = workdir / "warehouse.duckdb"
    # The demo warehouse holds (made-up) customer data: private like a state file.
    with private_umask(), duckdb.connect(str(warehouse)) as con:
        con.execute(_asset("warehouse.sql").read_text(encoding="utf-8"))
        customers = con.execute("SELECT count(*) FROM customers WHERE is_active").fetchall()[0][0]
    click.echo(f"1. built a demo warehouse with {customers:,} active customers: {warehouse}")

    with Emulator(client_code="demo") as emulator:
        click.echo(f"2. started the Target emulator at {emulator.base_url}")
        environ = {
            **os.environ,
            "DEMO_WAREHOUSE": str(warehouse.resolve()),
            "DEMO_STATE": str((workdir / "state.duckdb").resolve()),
            "TARGET_BASE_URL": emulator.base_url,
        }
        config = load_config(config_path, environ=environ)

        first = sync(config)
        _show("3. first sync", first, emulator)
        second = sync(config)
        _show("4. second sync, nothing changed", second, emulator)

        with private_umask(), duckdb.connect(str(warehouse)) as con:
            con.execute(_asset("changes.sql").read_text(encoding="utf-8"))
        click.echo("5. changed the warehouse: 3 tier upgrades, 1 move, 2 new customers")
        third = sync(config)
        _show("6. third sync", third, emulator)
        last = emulator.uploads[-1]
        click.echo("   what Target received in that batch:")
        for row in last.rows:
            click.echo(
                "     "
                + ", ".join(f"{n}={v!r}" for n, v in zip(last.header_names, row, strict=False))
            )
        profile = emulator.profiles()["cust-00001"]
        click.echo(f"   profile cust-00001 in Target now: {profile}")

    ok = first.sent == customers and second.sent == 0 and third.sent == 6
    click.echo(
        "demo OK: only changed profiles were sent"
        if ok
        else "demo FAILED: the counts above are not what the demo expects"
    )
    return EXIT_OK if ok else 1


def _show(title: str, result: SyncResult, emulator: Emulator) -> None:
    click.echo(
        f"{title}: {result.rows_read:,} rows read, {result.new:,} new, {result.changed:,} "
        f"changed, {result.unchanged:,} unchanged -> {result.sent:,} profile(s) sent in "
        f"{result.batches} batch(es), {result.bytes_sent:,} bytes "
        f"(emulator has received {len(emulator.uploads)} upload(s), holds "
        f"{len(emulator.profiles()):,} profiles)"
    )
