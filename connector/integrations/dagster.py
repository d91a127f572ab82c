"""Run syncs from Dagster: an asset per sync config, with the run's counts as metadata.

::

    import dagster as dg
    from connector.integrations.dagster import target_sync_asset

    vip = target_sync_asset("configs/vip.yaml")
    defs = dg.Definitions(assets=[vip])

- **Asset.** ``target_profiles_<name>``: the Adobe Target profiles the sync keeps in step. For
  a dbt source it depends on the model's asset (``AssetKey([model])``, dagster-dbt's default
  key), so it materializes downstream of ``dbt build``.
- **Retries.** A :class:`dagster.RetryPolicy` (3 retries, exponential backoff from 60 s by
  default) retries transient failures (Target or the warehouse unreachable, the state lock
  held, dbt's build of the model failed or stale). Errors a retry cannot cure (config,
  guardrail, strict rejects, a batch or token Target refused) raise
  ``dagster.Failure(allow_retries=False)``.
- **One at a time.** Every sync asset runs in the concurrency pool ``target_sync``: set its
  limit to 1 (``dagster instance concurrency set target_sync 1``, or ``concurrency: pools:
  default_limit: 1`` in dagster.yaml) and two materializations never collide on a state file's
  lock. A collision that happens anyway fails with "locked" and is retried.
- **Metadata.** Counts as ``MetadataValue.int`` (rows read, new, changed, removed, sent,
  rejected, failed, batches, bytes...), so Dagster plots them over time; the outcome, the next
  step and, for a dbt source, the profile, target and model read.
- **Check.** The asset check ``no_rejected_or_failed_rows`` warns (severity WARN, never blocks)
  when a run left rows behind: rejected, or failed in Target. The next run retries them.

Dagster is not a dependency of target-sync: import this module where Dagster is installed.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations at
# definition time and needs the real AssetExecutionContext class, not its name.
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from ..errors import TargetSyncError
from ._run import dbt_model_name, is_permanent, source_facts, summary, sync_name

POOL = "target_sync"
CHECK = "no_rejected_or_failed_rows"
DEFAULT_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=60, backoff=dg.Backoff.EXPONENTIAL)
COUNTS = (
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
)


def asset_key(config_path: str | os.PathLike[str]) -> dg.AssetKey:
    """``target_profiles_<sync name>`` (reading the name needs none of the config's variables)."""
    return dg.AssetKey([f"target_profiles_{_identifier(sync_name(config_path))}"])


def dbt_model_key(config_path: str | os.PathLike[str]) -> dg.AssetKey:
    """The asset key dagster-dbt gives the config's model by default: ``[model name]``."""
    _, model = dbt_model_name(config_path)
    return dg.AssetKey([model])


def _identifier(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


def metadata(result_summary: dict[str, Any]) -> dict[str, dg.MetadataValue]:
    """A run summary as materialization metadata: counts as ints, so Dagster plots them."""
    values: dict[str, dg.MetadataValue] = {
        name: dg.MetadataValue.int(int(result_summary[name])) for name in COUNTS
    }
    for reason, count in sorted(result_summary["rejected"].items()):
        values[f"rejected_{reason}"] = dg.MetadataValue.int(int(count))
    values["duration_seconds"] = dg.MetadataValue.float(float(result_summary["duration_seconds"]))
    for name in ("outcome", "run_id", "next_step"):
        values[name] = dg.MetadataValue.text(str(result_summary[name]))
    if result_summary.get("full_resend_reason"):
        values["full_resend_reason"] = dg.MetadataValue.text(result_summary["full_resend_reason"])
    for name, value in (result_summary.get("source") or {}).items():
        if value is not None:
            values[name] = dg.MetadataValue.text(str(value))
    return values


def target_sync_asset(
    config_path: str | os.PathLike[str],
    *,
    key: dg.AssetKey | None = None,
    deps: Sequence[Any] | None = None,
    group_name: str = "target_sync",
    pool: str | None = POOL,
    retry_policy: dg.RetryPolicy | None = DEFAULT_RETRY_POLICY,
    fail_on_rejects: bool = False,
) -> dg.AssetsDefinition:
    """A Dagster asset that runs the sync of ``config_path``, with its asset check.

    ``deps`` defaults, for a dbt source, to the model's dagster-dbt key (:func:`dbt_model_key`;
    that loads the config, so its variables must be set); pass ``deps=[]`` to have none.
    ``fail_on_rejects`` fails the materialization (without retry) when rows were rejected.
    """
    path = Path(config_path)
    asset_key_ = key or asset_key(path)
    if deps is None:
        deps = [dbt_model_key(path)] if _is_dbt(path) else []

    @dg.asset(
        key=asset_key_,
        group_name=group_name,
        deps=list(deps),
        kinds={"adobe_target"},
        pool=pool,
        retry_policy=retry_policy,
        description=f"Adobe Target profiles kept in step by {path.name}",
        check_specs=[
            dg.AssetCheckSpec(
                CHECK,
                asset=asset_key_,
                blocking=False,
                description="The last run left no rows behind (rejected, or failed in Target).",
            )
        ],
    )
    def _profiles(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        import connector

        with source_facts() as facts:
            try:
                result = connector.sync(path)
            except TargetSyncError as exc:
                if is_permanent(exc):
                    raise dg.Failure(description=str(exc), allow_retries=False) from exc
                raise
        data = summary(result, facts)
        if result.exit_code != 0:
            context.log.warning(f"{result.message}; {result.next_step}")
            if fail_on_rejects and result.rejected_total:
                raise dg.Failure(description=result.message, allow_retries=False)
        else:
            context.log.info(result.message)
        left_behind = result.rejected_total + result.failed
        check = dg.AssetCheckResult(
            check_name=CHECK,
            passed=left_behind == 0,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                "no rows left behind"
                if left_behind == 0
                else f"{result.rejected_total} rejected, {result.failed} failed in Target; "
                f"{result.next_step}"
            ),
            metadata={
                "rejected_total": dg.MetadataValue.int(result.rejected_total),
                "failed": dg.MetadataValue.int(result.failed),
                **{
                    f"rejected_{reason}": dg.MetadataValue.int(count)
                    for reason, count in sorted(result.rejected.items())
                },
            },
        )
        return dg.MaterializeResult(metadata=metadata(data), check_results=[check])

    return _profiles


def _is_dbt(path: Path) -> bool:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return False
    source = raw.get("source") if isinstance(raw, dict) else None
    return isinstance(source, dict) and source.get("type") == "dbt"
