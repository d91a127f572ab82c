"""The tools around the syncs: the Target emulator, the demo, and dbt exposures."""

from __future__ import annotations

import errno
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import ConfigError
from ..result import EXIT_FAILED
from .configs import config_files, load_and_mask, selected
from .context import Context, fail, guarded
from .options import logging_options, selection_options

if TYPE_CHECKING:
    from ..config import SyncConfig


@click.command(short_help="The local Target emulator, for demos and development.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8899, show_default=True, help="Port to listen on (0: any).")
@click.option("--client-code", default="demo", show_default=True, help="Target client code.")
@logging_options
@click.pass_obj
def emulator(ctx: Context, host: str, port: int, client_code: str) -> None:
    """Run the local Target emulator (for demos and development) until interrupted.

    Once it listens, prints one line on stdout with its URL (the actual port with --port 0),
    to use as target.base_url; then one line per request on stderr (a JSON object each
    under --log-format json). Fault switches are set with POST /_emulator/faults.
    """
    from ..emulator import Emulator, serve_forever
    from .logs import show_request_log

    show_request_log("connector.emulator", ctx.log_format)

    def ready(emu: Emulator) -> None:
        click.echo(
            f"Target emulator for client '{emu.client_code}' listening on {emu.base_url} "
            "(Ctrl+C to stop)"
        )

    def run() -> None:
        try:
            serve_forever(host=host, port=port, client_code=client_code, on_ready=ready)
        except OSError as exc:  # binding the port: the only OSError that reaches here
            fail(ctx, _cannot_listen(host, port, exc), EXIT_FAILED, error=type(exc).__name__)

    guarded(ctx, run)


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    """One line saying why the emulator cannot listen, and what to do."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        advice = "another program uses it (another emulator?); choose another --port, or --port 0"
        return f"the emulator cannot listen on {where}: the port is in use; {advice}"
    if exc.errno == errno.EACCES:
        return (
            f"the emulator cannot listen on {where}: permission denied (ports below 1024 need "
            "privileges); choose a port above 1024, or --port 0"
        )
    reason = exc.strerror or str(exc)
    return f"the emulator cannot listen on {where}: {reason}; check --host and --port"


@click.command(short_help="The whole path on the embedded default: DuckDB + emulator.")
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    default="demo-work",
    show_default=True,
    help="Where the demo warehouse and state are created.",
)
@logging_options
@click.pass_obj
def demo(ctx: Context, workdir: str) -> None:
    """Run the whole path on the embedded default: DuckDB warehouse + local emulator."""
    from ..demo import run_demo

    code = guarded(ctx, lambda: run_demo(Path(workdir)))
    sys.exit(code)


@click.group(short_help="dbt integration: exposures for the syncs of dbt models.")
def dbt() -> None:
    """dbt integration: `target-sync dbt exposures` writes dbt exposures for the syncs that
    read dbt models, so dbt docs and `dbt ls --select +exposure:NAME` show them."""


@dbt.command(short_help="Write dbt exposures (YAML) for the syncs of dbt models.")
@click.argument("configs", nargs=-1, required=True, type=click.Path())
@click.option("--owner-name", help="The exposures' owner, for configs that name none.")
@click.option("--owner-email", help="The owner's email, for configs that name none.")
@selection_options
@logging_options
@click.pass_obj
def exposures(
    ctx: Context,
    configs: tuple[str, ...],
    owner_name: str | None,
    owner_email: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
) -> None:
    """Print dbt exposures for the syncs of CONFIGS (files or folders) that read a dbt model:

    \b
        target-sync dbt exposures configs/ --owner-email crm@example.com \\
            > models/exposures.yml

    Each is an exposure of type application named after its sync, depending on the model
    (dbt ls --select +exposure:NAME lists what feeds it). The owner comes from a config's
    source.exposure.owner, else from --owner-name/--owner-email.
    """
    from ..config import ExposureOwner
    from ..integrations.dbt import exposures_yaml

    def build() -> str:
        loaded: list[tuple[Path, SyncConfig | ConfigError]] = [
            (file, load_and_mask(file)) for file in config_files(configs)
        ]
        if select or exclude:
            loaded = selected(loaded, select, exclude)
        owner = None
        if owner_name or owner_email:
            owner = ExposureOwner(name=owner_name, email=owner_email)
        chosen = [config for _, config in loaded if not isinstance(config, ConfigError)]
        return exposures_yaml(chosen, owner)

    click.echo(guarded(ctx, build), nl=False)
