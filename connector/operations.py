"""The operations around a sync: plan, status, reset, validate, from the same stage
functions as :func:`connector.sync`.

None of them breaks a run: ``status`` reads the state store without disturbing a run (and
shows a run in progress, with its counts so far); ``plan`` works on a private view of the
snapshot and never writes it; ``reset`` is a run of its own (it takes the run lock). Each
reaches the store through :func:`connector.state.open_store`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

from . import state
from .config import SyncConfig
from .delivery import Session
from .delivery.retry import RetryPolicy
from .errors import GuardrailError, RunInProgress, StateError
from .guardrails import check_guardrails
from .mapping import binding_signature
from .pipeline import Run, as_config, new_run_id, prepare
from .private import private_umask
from .state import ResetReport

SAMPLE_SIZE = 5
MIGRATION_NOTE = (
    "one-time migration: the snapshot's fingerprints were made from texts by an earlier "
    "version; the next run builds every row's texts once to compare them, and profiles "
    "whose texts did not change take the new fingerprints without being sent"
)
# validate answers within seconds; a sync keeps trying for longer (target.max_attempts).
VALIDATE_ATTEMPTS = 3
VALIDATE_RETRY_SECONDS = 30.0


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
    retried: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    reject_samples: list[dict[str, Any]] = field(default_factory=list)
    pending_batches: int = 0
    # Profiles of an upload an earlier run never recorded (it died between sending a batch
    # and committing it): Target may hold them, so the next run resends them (in ``retried``).
    unconfirmed: int = 0
    # False: the snapshot keeps no attribute values (state.keep_values: false), so old
    # values, field changes and stale NULLs cannot be shown.
    values_kept: bool = True
    # The snapshot's fingerprints are of an earlier scheme: the next run migrates them once
    # (every row's texts compared; unchanged profiles are not sent), see MIGRATION_NOTE.
    fingerprint_migration: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(config: SyncConfig | str | os.PathLike[str], sample: int = SAMPLE_SIZE) -> PlanReport:
    """Diff the source against the snapshot and report, sending nothing and writing nothing
    (it works on a private view of the snapshot)."""
    config = as_config(config)
    with private_umask(), state.open_store(config, "plan") as store:
        session = Session(config, store, new_run_id(), binding_signature(config), _quiet)
        run = Run(config, session, dry_run=True, listener=None, started_at="")
        prepare(run, strict=False, force=True, record=False)
        assert run.staged is not None and run.prepared is not None
        try:
            check_guardrails(config, run.staged, run.prepared)
            verdict = "pass"
        except GuardrailError as exc:
            verdict = f"would stop the run: {exc}"
        names = list(config.attributes)
        bindings = run.prepared.bindings

        def old_names(binding: str | None) -> list[str]:
            known = bindings.get(binding) if binding is not None else None
            return list(known.mapping.get("attributes", {})) if known is not None else names

        samples = [
            {
                "kind": s.kind,
                "id": s.id,
                "old": _decode(old_names(s.old_binding), s.old_cells)
                if s.old_cells is not None
                else None,
                "new": _decode(names, s.new_cells) if s.new_cells is not None else None,
            }
            for s in store.samples(sample)
        ]
        rejects = [
            {"id": i, "reason": reason, "detail": detail}
            for i, reason, detail in store.staged_rejects(sample * 4)
        ]
        pending = len(store.pending_batches())
        store.drop_work_tables()
    staged = run.staged
    on_removed = config.on_removed if isinstance(config.on_removed, str) else "set"
    return PlanReport(
        sync=config.name,
        rows_read=staged.rows,
        **staged.diff(),
        rejected=staged.rejected,
        attribute_changes=run.field_changes.changed,
        stale_nulls=run.field_changes.stale,
        full_resend_reason=run.full_resend_reason,
        guardrail=verdict,
        on_removed=on_removed,
        samples=samples,
        reject_samples=rejects,
        pending_batches=pending,
        unconfirmed=run.prepared.unconfirmed,
        values_kept=config.state.keep_values,
        fingerprint_migration=run.prepared.migrating,
    )


def _quiet(name: str, **fields: object) -> None:
    """plan tells nobody about its stages."""


def _decode(names: list[str], cells: str) -> dict[str, str]:
    return {name: unquote(value) for name, value in zip(names, cells.split(","), strict=False)}


def status(config: SyncConfig | str | os.PathLike[str], runs: int = 10) -> dict[str, Any]:
    """The last runs, pending batches, the failed and rejected rows of the last run, and the
    run in progress (with its counts so far) if there is one."""
    config = as_config(config)
    where = state.location_of(config)
    report: dict[str, Any] = {
        "sync": config.name,
        "state": str(where),
        "state_path": where.path,
        "running": None,
        "snapshot_profiles": 0,
        "runs": [],
        "pending_batches": [],
        "failed_rows": [],
        "rejects": [],
    }
    try:
        with state.open_store(config, "read") as store:
            history = [_jsonable(run) for run in store.history.runs(runs)]
            for run in history:
                if run["outcome"] == "running":  # nobody holds the lock: that run died
                    summary = json.dumps(run["summary"]) if run["summary"] else None
                    dead = store.history.interrupted_summary(run["run_id"], summary)
                    run.update(outcome="interrupted", summary=dead, message=dead["message"])
            last = history[0]["run_id"] if history else None
            report.update(
                snapshot_profiles=store.snapshot_size(),
                runs=history,
                pending_batches=[_jsonable(b) for b in store.history.batches(state="pending")],
                failed_rows=[_jsonable(r) for r in store.history.failed_rows(last, 100)]
                if last
                else [],
                rejects=[_jsonable(r) for r in store.history.rejects(last, 100)] if last else [],
            )
    except RunInProgress as busy:
        # The running process owns the store; it says how far it got.
        report["running"] = busy.holder
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


def reset(config: SyncConfig | str | os.PathLike[str]) -> ResetReport:
    """Forget the snapshot of a sync so that the next run sends every profile.

    No forgotten value lingers in the store; a damaged state file is kept aside (the report
    says where) and a new one started.
    """
    config = as_config(config)
    with private_umask(), state.open_store(config, "reset") as store:
        return store.reset()


def invariant_violations(config: SyncConfig | str | os.PathLike[str]) -> list[str]:
    """What is wrong with a sync's snapshot (empty when it tells the truth); see
    :meth:`connector.state.StateStore.invariant_violations`. Raises StateError while a run
    holds the store."""
    config = as_config(config)
    try:
        with state.open_store(config, "read") as store:
            return store.invariant_violations()
    except RunInProgress:
        raise StateError(
            f"{config.label}: a run is in progress; check again once it ends"
        ) from None


def validate(config: SyncConfig | str | os.PathLike[str]) -> dict[str, Any]:
    """Check the source connection, the mapped columns and their types, and Target.

    Target is asked, with the configured client code and token, whether it knows the one
    and accepts the other (nothing is uploaded; see :meth:`TargetClient.probe`). The report's
    ``exit_code`` is 1 when a sync would fail at Target, else 0.
    """
    from . import sources
    from .delivery.client import TargetClient
    from .mapping import attribute_columns, check_columns, check_staging, describe_rule, id_text_sql

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
    target = config.target
    retry = RetryPolicy(
        max_attempts=min(VALIDATE_ATTEMPTS, target.max_attempts),
        max_seconds=min(VALIDATE_RETRY_SECONDS, target.max_retry_seconds),
        base_seconds=target.backoff_base_seconds,
        cap_seconds=min(5.0, target.backoff_max_seconds),
    )
    client = TargetClient(target, config.label, retry=retry)
    try:
        reached = client.probe()
    finally:
        client.close()
    return {
        "sync": config.name,
        "identity": {
            "column": config.identity.column,
            "type": str(id_type),
            "serialized_as": describe_rule(id_type, None),
            "as": config.identity.type,
        },
        "attributes": mapped,
        "target": {
            "url": client.url,
            "check": reached.check,
            "ok": reached.ok,
            "http_status": reached.http_status,
            "status": reached.message,
        },
        "exit_code": 0 if reached.ok else 1,
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
