"""The read-mostly operations around a sync: plan, validate, status, reset."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from .config import SyncConfig
from .errors import GuardrailError, StateError
from .lock import StateLock, current_holder
from .pipeline import Run, as_config, check_guardrails, new_run_id, prepare
from .result import SyncResult
from .state import StateStore

SAMPLE_SIZE = 5


@dataclass
class PlanReport:
    """What the next run would send, computed without sending or changing the snapshot."""

    sync: str
    rows_read: int
    new: int
    changed: int
    removed: int
    unchanged: int
    rejected: dict[str, int]
    attribute_changes: dict[str, int]
    stale_nulls: dict[str, int]
    full_resend_reason: str | None
    guardrail: str
    on_removed: str
    samples: list[dict[str, Any]] = field(default_factory=list)
    reject_samples: list[dict[str, Any]] = field(default_factory=list)
    pending_batches: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(config: SyncConfig | str | os.PathLike[str], sample: int = SAMPLE_SIZE) -> PlanReport:
    """Diff the source against the snapshot and report, sending nothing."""
    config = as_config(config)
    with (
        StateLock(Path(config.state.path), config.name),
        StateStore.open(config.state, config.name) as store,
    ):
        run = Run(config, store, SyncResult(config.name, new_run_id(), dry_run=True), None)
        try:
            prepare(run, strict=False, force=True, record=False)
            result = run.result
            try:
                # plan changes nothing: the snapshot still holds what the run would start from.
                check_guardrails(run, store.snapshot_size())
                verdict = "pass"
            except GuardrailError as exc:
                verdict = f"would stop the run: {exc}"
            names = list(config.attributes)
            previous = store.previous_mapping()
            old_attributes = previous[1].get("attributes") if previous else None
            old_names = list(old_attributes) if isinstance(old_attributes, dict) else names
            changes: dict[str, int] = {}
            if old_names == names:
                nullable = [s.null is None for s in config.attributes.values()]
                changes, _ = store.attribute_changes(names, nullable)
            samples = [
                {
                    "kind": kind,
                    "id": profile_id,
                    "old": _decode(old_names, old) if old is not None else None,
                    "new": _decode(names, new) if new is not None else None,
                }
                for kind, profile_id, old, new in store.sample_changes(sample)
            ]
            rejects = [
                {"id": i, "reason": reason, "detail": detail}
                for i, reason, detail in store.rejects(sample * 4)
            ]
            pending = len(store.pending_batches())
        finally:
            store.drop_work_tables()
    on_removed = config.on_removed if isinstance(config.on_removed, str) else "set"
    return PlanReport(
        sync=config.name,
        rows_read=result.rows_read,
        new=result.new,
        changed=result.changed,
        removed=result.removed,
        unchanged=result.unchanged,
        rejected=result.rejected,
        attribute_changes=changes,
        stale_nulls=result.stale_nulls,
        full_resend_reason=result.full_resend_reason,
        guardrail=verdict,
        on_removed=on_removed,
        samples=samples,
        reject_samples=rejects,
        pending_batches=pending,
    )


def _decode(names: list[str], cells: str) -> dict[str, str]:
    return {name: unquote(value) for name, value in zip(names, cells.split(","), strict=False)}


def status(config: SyncConfig | str | os.PathLike[str], runs: int = 10) -> dict[str, Any]:
    """The last runs, pending batches, and the failed and rejected rows of the last run."""
    config = as_config(config)
    path = Path(config.state.path)
    if not path.exists():
        return {
            "sync": config.name,
            "state_path": str(path),
            "snapshot_profiles": 0,
            "runs": [],
            "pending_batches": [],
            "failed_rows": [],
            "rejects": [],
        }
    try:
        store = StateStore.open(config.state, config.name, read_only=True)
    except StateError:
        # DuckDB lets one process open a file for writing; a running sync holds it.
        holder = current_holder(path)
        if holder is None:
            raise
        raise StateError(
            f"{config.label}: a run is in progress ({holder}) and holds {path}; "
            "run status again when it has finished"
        ) from None
    with store:
        history = store.runs(runs)
        last = history[0]["run_id"] if history else None
        report: dict[str, Any] = {
            "sync": config.name,
            "state_path": str(path),
            "snapshot_profiles": store.snapshot_size(),
            "runs": [_jsonable(run) for run in history],
            "pending_batches": [_jsonable(b) for b in store.batches(state="pending")],
            "failed_rows": [_jsonable(r) for r in store.failed_rows(last, 100)] if last else [],
            "rejects": [_jsonable(r) for r in store.stored_rejects(last, 100)] if last else [],
        }
    return report


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if key == "summary" and isinstance(value, str):
            value = json.loads(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        out[key] = value
    return out


def reset(config: SyncConfig | str | os.PathLike[str]) -> int:
    """Forget the snapshot of a sync; returns how many profiles it held."""
    config = as_config(config)
    with (
        StateLock(Path(config.state.path), config.name),
        StateStore.open(config.state, config.name) as store,
    ):
        return store.reset()


def validate(config: SyncConfig | str | os.PathLike[str]) -> dict[str, Any]:
    """Check the source connection, the mapped columns and their types, and Target."""
    import requests

    from . import sources
    from .serialize import attribute_columns, check_columns, describe_rule, id_text_sql
    from .staging import check_staging
    from .target import batch_status_url, check_transport, upload_url

    config = as_config(config)
    schema = sources.probe_schema(config)
    check_columns(config, schema)
    # Both raise a ConfigError naming the attribute (or the id) whose type has no text form.
    columns = attribute_columns(config, schema)
    check_staging(config, schema)  # what else a run would refuse before its first row
    id_type = schema.field(config.identity.column).type
    id_text_sql(config.identity.column, id_type, config.locate("identity", "column"))
    mapped = [
        {
            "attribute": column.name,
            "column": spec.column,
            "type": str(schema.field(spec.column).type) if spec.column else "static",
            "serialized_as": (
                describe_rule(schema.field(spec.column).type, spec.format)
                if spec.column
                else "the value as written"
            ),
            "null": spec.null,
        }
        for column, spec in zip(columns, config.attributes.values(), strict=True)
    ]
    url = upload_url(config.target)
    check_transport(url, config.target.allow_insecure_http, f"{config.label}: target.base_url")
    try:
        answer = requests.get(
            batch_status_url(config.target),
            params={"batchId": "target-sync-validate"},
            timeout=(config.target.connect_timeout_seconds, 15),
        )
        reachable = f"reachable (HTTP {answer.status_code})"
    except requests.RequestException as exc:
        reachable = f"unreachable ({type(exc).__name__})"
    return {
        "sync": config.name,
        "identity": {
            "column": config.identity.column,
            "type": str(id_type),
            "serialized_as": describe_rule(id_type, None),
            "as": config.identity.type,
        },
        "attributes": mapped,
        "target": {"url": url, "status": reachable},
    }


def attribute_conflicts(configs: list[SyncConfig]) -> list[str]:
    """Warnings for syncs that write different attributes of the same Target profiles.

    Consecutive v2 batches for the same id override the properties the earlier batch gave the
    profile (shared/target-api.md, section 2), so two syncs with the same client code and id
    type but different attribute sets undo each other wherever their ids overlap.
    """
    groups: dict[tuple[str, str], list[SyncConfig]] = {}
    for config in configs:
        key = (config.target.client_code, config.identity.type)
        groups.setdefault(key, []).append(config)
    warnings = []
    for (client, id_type), members in groups.items():
        for index, first in enumerate(members):
            for second in members[index + 1 :]:
                only_first = [n for n in first.attributes if n not in second.attributes]
                only_second = [n for n in second.attributes if n not in first.attributes]
                if not only_first and not only_second:
                    continue
                differ = "; ".join(
                    f"only {config.label}: {', '.join(names)}"
                    for config, names in ((first, only_first), (second, only_second))
                    if names
                )
                warnings.append(
                    f"{first.label} ({first.config_path}) and {second.label} "
                    f"({second.config_path}) both write {id_type} profiles of Target client "
                    f"'{client}' but with different attributes ({differ}). A Target batch "
                    "overrides the properties the previous batch gave the same profile, so "
                    "where their ids overlap each run undoes the other's; map the same "
                    "attributes in both, or merge them into one sync"
                )
    return warnings
