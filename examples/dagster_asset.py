"""Run target-sync from Dagster: one asset per sync config, materialized every 30 minutes.

Load it as a code location (``dagster dev -f examples/dagster_asset.py``) with target-sync and
dagster installed, and ``TARGET_SYNC_CONFIGS`` (or ``CONFIG_DIR``) pointing at the folder of
sync configs. The secrets the configs read as ``${VARS}`` must be in the environment.

The assets come from :func:`connector.integrations.dagster.target_sync_asset`:

- ``target_profiles_<name>``: the Target profiles a config keeps in step; for a dbt source it
  depends on the model's dagster-dbt asset, so it can run right after ``dbt build``;
- each materialization records the run's counts as int metadata (plotted over time), and the
  asset check ``no_rejected_or_failed_rows`` warns when a run left rows behind;
- transient failures are retried by the asset's RetryPolicy; config, guardrail and strict
  errors fail at once;
- all run in the concurrency pool ``target_sync``: give it a limit of 1
  (``dagster instance concurrency set target_sync 1``) so two runs never meet on a state file.
"""

import os
from pathlib import Path

import dagster as dg

from connector.integrations.dagster import target_sync_asset

CONFIG_DIR = Path(os.environ.get("TARGET_SYNC_CONFIGS", "/opt/target-sync/configs"))
SCHEDULE = "*/30 * * * *"


def build_definitions(config_dir: Path = CONFIG_DIR) -> dg.Definitions:
    """Assets for every ``*.yaml`` in ``config_dir``, a job over them and its schedule."""
    assets = [
        target_sync_asset(path)
        for path in sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")])
    ]
    job = dg.define_asset_job(
        "target_sync",
        selection=dg.AssetSelection.groups("target_sync"),
        # One asset at a time: configs in one folder share a state file by default.
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[dg.ScheduleDefinition(job=job, cron_schedule=SCHEDULE)],
    )


defs = build_definitions()
