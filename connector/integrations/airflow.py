"""Run syncs from Airflow 3: an operator, and the assets it produces and can wait for.

::

    from connector.integrations.airflow import TargetSyncOperator, dbt_model_asset

    with DAG("crm_syncs", schedule=[dbt_model_asset("configs/vip.yaml")], ...):
        TargetSyncOperator(config_path="configs/vip.yaml")

- **Failures.** Errors a retry cannot cure (a wrong config, a tripped guardrail, rows rejected
  in strict mode, a batch or token Target refused) raise ``AirflowFailException``: the task
  fails at once, without its retries. Anything else (Target or the warehouse unreachable, the
  state lock held by another run, dbt's build of the model failed or is stale) is raised as
  it is, so the task's ``retries`` apply; rerunning a sync is always safe.
- **Rows left behind** (exit code 3: rejected, or failed in Target) do not fail the task: the
  next run retries them, and a warning is logged. With ``fail_on_rejects=True`` rejected rows
  fail it without retry (the data must be fixed) and failed rows fail it with retries (a
  retry resends them).
- **XCom.** The task returns the run summary (counts, batches, bytes, outcome, and for a dbt
  source which profile, target and model it read).
- **Assets.** Each task declares the sync's asset (:func:`sync_asset`) as its outlet; a DAG can
  be scheduled on :func:`dbt_model_asset` of its config, which the task running dbt declares
  as an outlet.

Airflow is not a dependency of target-sync: import this module where Airflow is installed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ..errors import TargetSyncError
from ._run import dbt_model_name, is_permanent, source_facts, summary, sync_name

log = logging.getLogger(__name__)

ASSET_SCHEME = "x-target-sync"
DBT_ASSET_SCHEME = "x-dbt"


def sync_asset(config_path: str | os.PathLike[str]) -> Asset:
    """The Adobe Target profiles a sync keeps in step, as an Airflow asset.

    Named after the sync (``target_sync.<name>``); reading it needs no variables, so DAG files
    can call it when they are parsed.
    """
    name = sync_name(config_path)
    return Asset(name=f"target_sync.{name}", uri=f"{ASSET_SCHEME}://{name}", group="target_sync")


def dbt_model_asset(config_path: str | os.PathLike[str], uri: str | None = None) -> Asset:
    """The dbt model a config reads, as an Airflow asset: schedule a DAG on it, and declare it
    as an outlet of the task that builds the model (``outlets=[dbt_model_asset(...)]``).

    Named ``dbt.<project>.<model>`` with the URI ``x-dbt://<project>/<model>``, unless ``uri``
    names the one your dbt tasks already emit. Loads the config (its variables must be set).
    """
    project, model = dbt_model_name(config_path)
    return Asset(
        name=f"dbt.{project}.{model}",
        uri=uri or f"{DBT_ASSET_SCHEME}://{project}/{model}",
        group="dbt",
    )


def run_sync(
    config_path: str | os.PathLike[str],
    *,
    fail_on_rejects: bool = False,
    force: bool = False,
    strict: bool | None = None,
) -> dict[str, Any]:
    """Run one sync the Airflow way; returns its summary (JSON-able, for XCom).

    Raises ``AirflowFailException`` (no retry) for permanent errors, and lets transient ones
    through (retried).
    """
    import connector

    with source_facts() as facts:
        try:
            result = connector.sync(config_path, force=force, strict=strict)
        except TargetSyncError as exc:
            if is_permanent(exc):
                raise AirflowFailException(str(exc)) from exc
            raise
    if result.exit_code != 0:
        if fail_on_rejects and result.rejected_total:
            raise AirflowFailException(f"{result.message}; {result.next_step}")
        if fail_on_rejects and result.failed:
            raise TargetSyncError(f"{result.message}; {result.next_step}")
        log.warning("%s; %s", result.message, result.next_step)
    else:
        log.info("%s", result.message)
    return summary(result, facts)


class TargetSyncOperator(BaseOperator):
    """Run the sync of one config file; its summary is the task's XCom return value.

    ``task_id`` defaults to ``sync_<config file stem>`` and ``outlets`` to the sync's asset.
    """

    template_fields: Sequence[str] = ("config_path",)
    ui_color = "#fa0f00"

    def __init__(
        self,
        *,
        config_path: str | os.PathLike[str],
        fail_on_rejects: bool = False,
        force: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("task_id", f"sync_{Path(config_path).stem}")
        if kwargs.get("outlets") is None:
            kwargs["outlets"] = [sync_asset(config_path)]
        super().__init__(**kwargs)
        self.config_path = str(config_path)
        self.fail_on_rejects = fail_on_rejects
        self.force = force
        self.strict = strict

    def execute(self, context: Any) -> dict[str, Any]:
        return run_sync(
            self.config_path,
            fail_on_rejects=self.fail_on_rejects,
            force=self.force,
            strict=self.strict,
        )
