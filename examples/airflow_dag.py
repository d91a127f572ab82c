"""Run target-sync from Airflow 3: one task per sync config, one after the other, every 30 min.

Copy this file into the DAGs folder of an Airflow that has target-sync installed, and set
``TARGET_SYNC_CONFIGS`` (or edit ``CONFIG_DIR``) to the folder of sync configs. The secrets the
configs read as ``${VARS}`` must be in the workers' environment.

The tasks are :class:`connector.integrations.airflow.TargetSyncOperator`:

- a config, guardrail or strict-reject error fails the task at once (no retry: a person must
  look); an unreachable Target or warehouse, a held lock or a failed dbt build is retried
  (rerunning is always safe: the snapshot only holds what Target accepted);
- rejected or failed rows do not fail the task (the next run retries them) but log a warning;
- the run summary is the task's XCom return value;
- each task declares its sync as an asset outlet (``target_sync.<name>``), so other DAGs can
  be scheduled on it.

The tasks are chained, not parallel: configs in one folder share the state file by default
(``.target-sync/state.duckdb`` next to them) and a second run on it would be refused.

To sync right after dbt builds a model instead of on a clock, schedule a DAG on the model's
asset and declare the same asset as an outlet of the task that runs dbt::

    from connector.integrations.airflow import dbt_model_asset

    with DAG("vip_after_dbt", schedule=[dbt_model_asset(CONFIG_DIR / "vip.yaml")], ...):
        TargetSyncOperator(config_path=CONFIG_DIR / "vip.yaml")
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, chain

from connector.integrations.airflow import TargetSyncOperator

CONFIG_DIR = Path(os.environ.get("TARGET_SYNC_CONFIGS", "/opt/target-sync/configs"))
SCHEDULE = "*/30 * * * *"
# Timezone-aware: Airflow schedules in UTC; a naive datetime would depend on the server.
START = datetime(2025, 1, 1, tzinfo=UTC)


def config_files(config_dir: Path = CONFIG_DIR) -> list[Path]:
    return sorted([*config_dir.glob("*.yaml"), *config_dir.glob("*.yml")])


def build_dag(config_dir: Path = CONFIG_DIR) -> Any:
    """The Airflow DAG: one chained task per ``*.yaml`` in ``config_dir``."""
    with DAG(
        dag_id="target_sync",
        schedule=SCHEDULE,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
        tags=["target-sync", "adobe-target"],
        doc_md=__doc__,
    ) as dag:
        chain(*[TargetSyncOperator(config_path=path) for path in config_files(config_dir)])
    return dag


target_sync_dag = build_dag()
