"""Run target-sync from Airflow: one task per sync config, one after the other, every 30 min.

Copy this file into the DAGs folder of an Airflow that has target-sync installed, and set
``TARGET_SYNC_CONFIGS`` (or edit ``CONFIG_DIR``) to the folder of sync configs. The secrets the
configs read as ``${VARS}`` must be in the workers' environment.

- A run that fails raises :class:`connector.TargetSyncError` (or a subclass), so the task
  fails and Airflow retries it; rerunning is always safe (the snapshot only holds what Target
  accepted). A config error (:class:`connector.ConfigError`) fails the same way, and retrying
  will not help until the YAML is fixed.
- A run that finishes with rejected or failed rows succeeds (those rows are retried by the
  next run) and logs a warning; ``fail_on_rejects=True`` fails the task instead.
- The task's return value (the run summary: counts, batches, bytes, outcome) lands in XCom.
- The tasks are chained, not parallel: configs in one folder share the state file by default
  (``.target-sync/state.duckdb`` next to them) and a second run on it would be refused.

The sync itself is the plain function :func:`run_sync`, usable (and tested) without Airflow;
the DAG is only defined when Airflow is importable.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import connector

log = logging.getLogger(__name__)

CONFIG_DIR = Path(os.environ.get("TARGET_SYNC_CONFIGS", "/opt/target-sync/configs"))
SCHEDULE = "*/30 * * * *"


def run_sync(
    config_path: str | os.PathLike[str], *, fail_on_rejects: bool = False
) -> dict[str, Any]:
    """Run one sync; returns its summary (JSON-able, for XCom).

    Raises :class:`connector.TargetSyncError` when the run fails, and also when rows were
    rejected or failed and ``fail_on_rejects`` is set.
    """
    result = connector.sync(config_path)
    if result.exit_code != 0:
        # Exit code 3: delivered, but some rows were rejected or failed in Target.
        if fail_on_rejects:
            raise connector.TargetSyncError(result.message)
        log.warning("%s; %s", result.message, result.next_step)
    else:
        log.info("%s", result.message)
    summary = result.to_dict()
    summary.pop("batch_files", None)
    return summary


def build_dag(config_dir: Path = CONFIG_DIR) -> Any:
    """The Airflow DAG: one chained task per ``*.yaml`` in ``config_dir``."""
    try:
        from airflow.sdk import dag, task  # Airflow 3
    except ImportError:  # Airflow 2.x
        from airflow.decorators import dag, task

    @dag(
        dag_id="target_sync",
        schedule=SCHEDULE,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
        tags=["target-sync", "adobe-target"],
        doc_md=__doc__,
    )
    def target_sync() -> None:
        previous = None
        for path in sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")]):

            @task(task_id=f"sync_{path.stem}")
            def sync_config(config: str) -> dict[str, Any]:
                return run_sync(config)

            current = sync_config(str(path))
            if previous is not None:
                previous >> current
            previous = current

    return target_sync()


try:
    import airflow  # noqa: F401
except ImportError:  # Airflow is not installed here: run_sync above still works on its own.
    pass
else:
    target_sync_dag = build_dag()
