"""Why a run would send every profile, and when it must not send at all.

:func:`full_resend_reason` words why profiles are resent whatever their data (the first run,
fingerprints that cannot be recomputed, profiles sent under another mapping or destination);
:func:`check_guardrails` stops a run whose result looks like a broken upstream model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import GuardrailError
from .mapping import describe_change

if TYPE_CHECKING:
    from .config import SyncConfig
    from .state import PrepareReport, StageReport


def full_resend_reason(config: SyncConfig, binding: str, prepared: PrepareReport) -> str | None:
    """Why profiles are resent whatever their data, in words (``plan`` and the summary)."""
    census = prepared.census
    total = sum(census.values())
    if prepared.snapshot_size == 0:
        return "first run (the snapshot is empty)"
    if prepared.unrefreshable:
        return (
            f"fingerprints were made by another version (of target-sync's fingerprints or of "
            f"the store's engine) and the snapshot keeps no values to recompute them "
            f"(state.keep_values: false): "
            f"{prepared.unrefreshable:,} profiles are resent once"
        )
    others = {b: n for b, n in census.items() if b != binding}
    if not others:
        return None
    largest = max(others, key=lambda b: others[b])
    old = prepared.bindings.get(largest) if largest is not None else None
    reason = (
        describe_change(old.mapping, old.destination, config)
        if old is not None
        else "profiles bound to no recorded mapping: every one is resent"
    )
    moved = sum(others.values())
    if moved < total:
        reason = f"{moved:,} of {total:,} profiles were last sent under another binding: {reason}"
    return reason


def check_guardrails(config: SyncConfig, staged: StageReport, prepared: PrepareReport) -> None:
    """Stop before sending when the result looks like a broken upstream model."""
    valid = staged.new + staged.changed + staged.retried + staged.unchanged
    rejected = sum(staged.rejected.values())
    previous = prepared.snapshot_size
    override = "rerun with --force (force=True in Python)"
    where = str(config.config_path) if config.config_path else "the config"
    if config.min_rows is not None and staged.rows < config.min_rows:
        raise GuardrailError(
            f"{config.label}: the source returned {staged.rows:,} row(s), fewer than "
            f"min_rows={config.min_rows:,}; nothing was sent and the snapshot is unchanged. "
            f"Check the query's upstream data; if so few rows are right, {override} or lower "
            f"min_rows in {where}"
        )
    limit = config.max_removed_fraction
    if limit is not None and previous > 0 and staged.removed / previous > limit:
        share = (
            f"{config.label}: {staged.removed:,} of the {previous:,} synced profiles "
            f"({staged.removed / previous:.0%}) left the query result, more than "
            f"max_removed_fraction={limit:g} allows; nothing was sent and the snapshot is "
            f"unchanged ({valid:,} valid profiles remain, {rejected:,} rows rejected)"
        )
        here = str(config.config_path) if config.config_path else None
        if prepared.previous_config and here and prepared.previous_config != here:
            from .state import location_of

            shared = location_of(config)
            raise GuardrailError(
                f"{share}. This snapshot was last written by another config, "
                f"{prepared.previous_config}: two configs with the name '{config.name}' share "
                f"the {shared}, and each would undo the other. Give one of them another name "
                f"(or another {shared.key})"
            )
        raise GuardrailError(
            f"{share}. Check the query's upstream data; if the drop is real, {override}, "
            f"or raise max_removed_fraction in {where}"
        )
