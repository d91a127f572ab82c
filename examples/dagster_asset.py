"""Run target-sync from Dagster: one asset per sync config, materialized every 30 minutes.

Load it as a code location (``dagster dev -f examples/dagster_asset.py``) with target-sync and
dagster installed, and ``TARGET_SYNC_CONFIGS`` (or ``CONFIG_DIR``) pointing at the folder of
sync configs. The secrets the configs read as ``${VARS}`` must be in the environment.

- Each asset ``target_profiles_<config>`` is "the Target profiles this config keeps in step";
  its materialization carries the run's counts as metadata (rows read, new, changed, removed,
  rejected, sent, batches, bytes, failed), so Dagster plots them over time.
- A run that fails raises :class:`connector.TargetSyncError`: the materialization fails and can
  be retried safely. Rejected or failed rows do not fail it (the next run retries them) but
  are logged as a warning and visible in the metadata.
- To sync right after a dbt model builds, pass ``deps=[AssetKey([...])]`` to
  :func:`target_sync_asset`.
- The job runs its assets one at a time (in-process executor): configs in one folder share
  the state file by default, and a second run on it would be refused.

The sync itself is the plain function :func:`run_sync`, usable (and tested) without Dagster;
the Dagster definitions are only built when Dagster is importable.
"""

import logging
import os
from pathlib import Path
from typing import Any

import connector

try:
    import dagster as dg
except ImportError:  # Dagster is not installed here: run_sync below still works on its own.
    dg = None

log = logging.getLogger(__name__)

CONFIG_DIR = Path(os.environ.get("TARGET_SYNC_CONFIGS", "/opt/target-sync/configs"))
SCHEDULE = "*/30 * * * *"
METADATA_FIELDS = (
    "rows_read",
    "new",
    "changed",
    "removed",
    "unchanged",
    "rejected_total",
    "sent",
    "removed_sent",
    "batches",
    "bytes_sent",
    "failed",
    "pending_batches",
    "duration_seconds",
)


def run_sync(config_path: str | os.PathLike[str]) -> connector.SyncResult:
    """Run one sync; raises :class:`connector.TargetSyncError` when it fails."""
    result = connector.sync(config_path)
    if result.exit_code != 0:  # 3: delivered, but some rows were rejected or failed
        log.warning("%s; %s", result.message, result.next_step)
    return result


def metadata(result: connector.SyncResult) -> dict[str, Any]:
    """The numbers a materialization records (plain values; Dagster wraps them)."""
    data = result.to_dict()
    out: dict[str, Any] = {name: data[name] for name in METADATA_FIELDS}
    out.update(outcome=result.outcome, run_id=result.run_id, next_step=result.next_step)
    out.update({f"rejected_{reason}": n for reason, n in result.rejected.items()})
    return out


def target_sync_asset(config_path: Path, deps: list[Any] | None = None) -> Any:
    """A Dagster asset that runs the sync of ``config_path``."""

    @dg.asset(
        name=f"target_profiles_{config_path.stem}",
        group_name="target_sync",
        deps=deps,
        kinds={"adobe_target"},
        description=f"Adobe Target profiles kept in step by {config_path.name}",
    )
    def _profiles(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        result = run_sync(config_path)
        context.log.info(result.message)
        return dg.MaterializeResult(metadata=metadata(result))

    return _profiles


def build_definitions(config_dir: Path = CONFIG_DIR) -> Any:
    """Assets for every ``*.yaml`` in ``config_dir``, a sequential job and its schedule."""
    assets = [
        target_sync_asset(path)
        for path in sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")])
    ]
    job = dg.define_asset_job(
        "target_sync",
        selection=dg.AssetSelection.groups("target_sync"),
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[dg.ScheduleDefinition(job=job, cron_schedule=SCHEDULE)],
    )


if dg is not None:
    defs = build_definitions()
