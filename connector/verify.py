"""``verify``: read a random sample of synced profiles back from Target and compare them with
what the snapshot says was sent.

Adobe documents that up to 0.1% of a large batch may be lost, and that updates take up to
24 hours to show. The snapshot records what Target accepted; ``verify`` checks what Target
holds. For each sampled profile it reads ``/rest/v1/profiles/thirdPartyId/{id}`` (or
``/rest/v1/profiles/{pcId}``) through the same pace and retries as every call, and compares
every attribute that was sent with a value; an empty cell sent nothing, so Target may hold
anything there. Each profile is then:

* **matched**: every sent value is what Target holds (however recently it was sent);
* **mismatched**: some attribute holds another value, or none;
* **not found**: Target knows no such profile (lost, or expired: Target drops profiles after
  14 days without activity by default, and a profile that does not change is not resent);
* **too recent**: it does not match yet, but its batch went out less than
  ``settle_minutes`` ago (or is still pending), so Target may still be applying it.

The mismatch rate is (mismatched + not found) / judged, where judged excludes the too recent,
with a 95% Wilson score interval. ``verify`` never changes the snapshot, unless asked to mark
the profiles it found wrong for resending (:func:`mark_for_resend`, under the run lock).
"""

from __future__ import annotations

import logging
import math
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from . import state
from .config import SyncConfig
from .errors import RunInProgress, StateError, TargetFatalError
from .mapping import binding_signature
from .pipeline import as_config
from .result import EXIT_OK, EXIT_PARTIAL

log = logging.getLogger(__name__)

DEFAULT_SAMPLE = 200
DEFAULT_MAX_MISMATCH = 0.005
# Adobe: updates usually show within an hour, at most 24 hours.
DEFAULT_SETTLE_MINUTES = 24 * 60
CONFIDENCE = 0.95
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class SampledProfile:
    """One snapshot row drawn for verification."""

    id: str
    cells: str | None  # None: the snapshot keeps no values (state.keep_values: false)
    uploaded_at: datetime | None  # naive UTC, as stored
    pending: bool  # its batch's status is not resolved yet


@dataclass(frozen=True)
class SnapshotSample:
    """What the snapshot says was sent, for a random sample of its profiles."""

    snapshot_profiles: int
    id_type: str
    attributes: list[str]
    profiles: list[SampledProfile]


@dataclass
class VerifyReport:
    """What ``verify`` found; ``exit_code`` is 3 when the rate is over ``max_mismatch``."""

    sync: str
    client_code: str
    snapshot_profiles: int
    sampled: int
    matched: int = 0
    mismatched: int = 0
    not_found: int = 0
    too_recent: int = 0
    mismatch_rate: float | None = None
    interval: dict[str, float] = field(default_factory=dict)
    max_mismatch: float = DEFAULT_MAX_MISMATCH
    settle_minutes: float = DEFAULT_SETTLE_MINUTES
    seed: int = 0
    mismatches: list[dict[str, str | None]] = field(default_factory=list)
    mismatched_ids: list[str] = field(default_factory=list)
    not_found_ids: list[str] = field(default_factory=list)
    too_recent_ids: list[str] = field(default_factory=list)
    marked_for_resend: int | None = None
    exit_code: int = EXIT_OK
    verdict: str = ""

    @property
    def judged(self) -> int:
        """Profiles that count in the rate: all sampled but the too recent."""
        return self.matched + self.mismatched + self.not_found

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["judged"] = self.judged
        return data


def wilson_interval(failures: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``failures / total`` (95% by default).

    It stays inside [0, 1] and is honest for small samples and rates near 0, where the
    normal approximation claims certainty it does not have (0 of 200 is not "exactly 0%").
    """
    if total <= 0:
        return 0.0, 1.0
    p = failures / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denominator
    # At 0 (or all) failures the bound is exact; floating point would leave dust.
    low = 0.0 if failures == 0 else max(0.0, centre - half)
    high = 1.0 if failures == total else min(1.0, centre + half)
    return low, high


def verify(
    config: SyncConfig | str | os.PathLike[str],
    *,
    sample: int = DEFAULT_SAMPLE,
    max_mismatch: float = DEFAULT_MAX_MISMATCH,
    settle_minutes: float = DEFAULT_SETTLE_MINUTES,
    seed: int | None = None,
    resend_mismatched: bool = False,
) -> VerifyReport:
    """Read ``sample`` random synced profiles back from Target and compare them with the
    snapshot. Changes nothing, unless ``resend_mismatched`` marks the mismatched and
    not-found profiles so the next run sends them again.

    Raises a TargetError when Target cannot be asked (unreachable, unknown client code,
    refused token), a StateError when the state store cannot be read.
    """
    from .delivery.client import TargetClient

    config = as_config(config)
    if sample < 1:
        raise ValueError("sample must be at least 1")
    seed = secrets.randbits(31) if seed is None else seed
    drawn = _sample_snapshot(config, sample, seed)
    report = VerifyReport(
        sync=config.name,
        client_code=config.target.client_code,
        snapshot_profiles=drawn.snapshot_profiles,
        sampled=len(drawn.profiles),
        max_mismatch=max_mismatch,
        settle_minutes=settle_minutes,
        seed=seed,
    )
    if drawn.profiles:
        settled_before = _utc_now() - timedelta(minutes=settle_minutes)
        client = TargetClient(config.target, config.label)
        try:
            reached = client.probe()
            if not reached.ok:
                raise TargetFatalError(f"{config.label}: cannot verify: {reached.message}")
            calls = config.target.calls_per_minute
            log.info(
                "%s: reading %d profiles back from Target at %d calls a minute",
                config.label,
                len(drawn.profiles),
                calls,
            )
            for profile in drawn.profiles:
                what = f"profile {profile.id!r} of {config.label}"
                held = client.read_profile(drawn.id_type, profile.id, what)
                _judge(report, drawn.attributes, profile, held, settled_before)
        finally:
            client.close()
    _conclude(report)
    if resend_mismatched and (report.mismatched or report.not_found):
        wrong = [*report.mismatched_ids, *report.not_found_ids]
        report.marked_for_resend = mark_for_resend(config, wrong)
    return report


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _judge(
    report: VerifyReport,
    names: list[str],
    profile: SampledProfile,
    held: dict[str, str] | None,
    settled_before: datetime,
) -> None:
    """Classify one profile and record it in the report."""
    recent = profile.pending or (
        profile.uploaded_at is not None and profile.uploaded_at > settled_before
    )
    differences: list[dict[str, str | None]] = []
    if held is not None and profile.cells is not None:
        for name, cell in zip(names, profile.cells.split(","), strict=False):
            if not cell:
                continue  # nothing was sent: Target may hold anything
            expected = unquote_plus(cell)  # Target form-decodes every cell
            found = held.get(name)
            if found != expected:
                differences.append(
                    {"id": profile.id, "attribute": name, "expected": expected, "found": found}
                )
    if held is not None and not differences:
        report.matched += 1
    elif recent:
        report.too_recent += 1
        report.too_recent_ids.append(profile.id)
    elif held is None:
        report.not_found += 1
        report.not_found_ids.append(profile.id)
    else:
        report.mismatched += 1
        report.mismatched_ids.append(profile.id)
        report.mismatches.extend(differences)


def _conclude(report: VerifyReport) -> None:
    """The rate, its interval, the exit code and a one-line verdict."""
    judged = report.judged
    wrong = report.mismatched + report.not_found
    if judged == 0:
        report.verdict = (
            "nothing to judge: the snapshot is empty"
            if report.sampled == 0
            else "nothing to judge yet: every sampled profile was sent too recently"
        )
        return
    report.mismatch_rate = wrong / judged
    low, high = wilson_interval(wrong, judged)
    report.interval = {"low": low, "high": high, "confidence": CONFIDENCE}
    over = report.mismatch_rate > report.max_mismatch
    report.exit_code = EXIT_PARTIAL if over else EXIT_OK
    report.verdict = (
        f"{wrong} of {judged} judged profiles differ from what was sent "
        f"({_pct(report.mismatch_rate)}, 95% interval {_pct(low)} to {_pct(high)}); "
        + (
            f"over the limit of {_pct(report.max_mismatch)}"
            if over
            else f"within the limit of {_pct(report.max_mismatch)}"
        )
    )


def _pct(value: float) -> str:
    return f"{value * 100:.2f}%"


# -- the state store: one read, and one optional write -------------------------------------------


def _sample_snapshot(config: SyncConfig, sample: int, seed: int) -> SnapshotSample:
    """Draw up to ``sample`` synced profiles at random (repeatably for a ``seed``), with
    the batch that last carried each, from the state store (read without disturbing a run).

    Only profiles confirmed or pending under the current mapping and destination are drawn:
    owed ones are resent by the next run anyway, and others were sent with other attributes.
    The only place ``verify`` reads the state store.
    """
    empty = SnapshotSample(0, config.identity.type, list(config.attributes), [])
    try:
        with state.open_store(config, "read") as store:
            binding = binding_signature(config)
            if binding not in store.bindings():
                return empty
            drawn = store.draw(binding, sample, seed)
            return SnapshotSample(
                snapshot_profiles=store.snapshot_size(),
                id_type=config.identity.type,
                attributes=list(config.attributes),
                profiles=[SampledProfile(p.id, p.cells, p.uploaded_at, p.pending) for p in drawn],
            )
    except RunInProgress as busy:
        raise StateError(
            f"{config.label}: a run is in progress ({busy.holder['holder']}); run "
            "verify again when it has finished"
        ) from None


def mark_for_resend(config: SyncConfig, ids: list[str]) -> int:
    """Mark these profiles owed in the snapshot, so the next run sends them again (as
    retried). Takes the run lock (so never while a run goes); returns how many."""
    if not ids:
        return 0
    with state.open_store(config, "run") as store:
        return store.mark_owed(ids)
