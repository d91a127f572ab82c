"""What dbt's artifacts say about a model: its relation, and whether its latest build is usable.

``<project>/<target-path>/manifest.json`` (written by ``dbt compile``, ``run``, ``build``...)
gives the model, found by name or by a ``meta`` entry, and its relation.
``<target-path>/run_results.json`` (rewritten by every dbt command) gives the latest result of
each node the latest command ran. A sync reads the model only when that tells nothing against
it: :func:`check_build` refuses a model whose latest ``dbt run``/``build``/``retry`` errored or
skipped it, or ran a test attached to it that failed (``dbt build`` would skip everything
downstream of it, and a sync is downstream); with ``max_age``, it also refuses a model whose
last successful build is older than that, or cannot be dated from ``run_results.json``.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import DbtSource
from ..errors import ConfigError, UpstreamError
from ..text import one_line
from .dbt_profiles import DbtSetup, render

log = logging.getLogger(__name__)

# The commands whose run_results say whether a model's table was (re)built.
BUILD_COMMANDS = ("run", "build", "retry")
FAILED_MODEL = ("error", "skipped", "partial success")
FAILED_TEST = ("fail", "error")


@dataclass(frozen=True)
class Manifest:
    """The parts of manifest.json a dbt source reads."""

    path: Path
    nodes: dict[str, dict[str, Any]]
    invocation_id: str | None


@dataclass(frozen=True)
class BuildStatus:
    """What run_results.json says about the model's latest build."""

    command: str | None  # "run", "build", ...; None when there is no run_results.json
    status: str | None  # the model's status; None when the latest command did not build it
    completed_at: datetime | None  # when that build finished (UTC)

    def describe(self, now: datetime | None = None) -> str:
        if self.command is None:
            return "no target/run_results.json: the model's latest build is not known"
        if self.status is None:
            return f"the latest dbt command ({self.command}) did not build it"
        when = ""
        if self.completed_at is not None:
            age = (now or datetime.now(UTC)) - self.completed_at
            when = f", {_age(age)} ago ({self.completed_at.isoformat(timespec='seconds')})"
        return f"latest `dbt {self.command}`: {self.status}{when}"


def target_dir(
    project_dir: Path,
    project: Mapping[str, Any],
    label: str,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """``<project>/<target-path>``: ``$DBT_TARGET_PATH``, else dbt_project.yml's, else target."""
    environ = os.environ if environ is None else environ
    path = environ.get("DBT_TARGET_PATH") or render(
        project.get("target-path", "target"), label, "dbt_project.yml", environ
    )
    return project_dir / str(path)


def load_manifest(project_dir: Path, project: Mapping[str, Any], label: str) -> Manifest:
    """The project's manifest.json, or a one-line ConfigError saying how to get one."""
    path = target_dir(project_dir, project, label) / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{label}: {path} does not exist; run `dbt compile` or `dbt build` in "
            f"{project_dir} first, then rerun"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{label}: cannot read the dbt manifest {path} ({exc})") from None
    metadata = data.get("metadata") or {}
    return Manifest(path, data.get("nodes") or {}, metadata.get("invocation_id"))


def find_model(
    source: DbtSource, manifest: Manifest, project_name: str | None, label: str
) -> dict[str, Any]:
    """The model the source names (``model``) or selects (``meta``)."""
    models = [n for n in manifest.nodes.values() if n.get("resource_type") == "model"]
    if source.meta is not None:
        return _by_meta(source.meta, models, manifest.path, label)
    wanted = str(source.model)
    matches = [
        node
        for node in models
        if wanted in (node.get("name"), f"{node.get('package_name')}.{node.get('name')}")
        or wanted == node.get("unique_id")
    ]
    matches = _latest_versions(matches)
    if len(matches) > 1:  # one name in several packages: the project's own
        matches = [n for n in matches if n.get("package_name") == project_name] or matches
    if len(matches) == 1:
        return dict(matches[0])
    if matches:
        raise ConfigError(
            f"{label}: dbt model '{wanted}' is ambiguous in {manifest.path} ({_ids(matches)}); "
            "write source.model as package.model"
        )
    names = sorted({str(n.get("name")) for n in models})
    close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.5) or names[:5]
    hint = f" (close names: {', '.join(close)})" if close else " (it has no models)"
    raise ConfigError(
        f"{label}: dbt model '{wanted}' is not in {manifest.path}{hint}; if it is new, run "
        "`dbt compile` or `dbt build` again"
    )


def _latest_versions(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of several versions of one model, the latest (matches without versions stay)."""
    if len(matches) < 2:
        return matches
    latest = [n for n in matches if n.get("version") in (None, n.get("latest_version"))]
    return latest or matches


def _ids(matches: list[dict[str, Any]]) -> str:
    return ", ".join(sorted(str(n.get("unique_id")) for n in matches))


def model_meta(node: Mapping[str, Any]) -> dict[str, Any]:
    """A model's meta: ``config.meta`` (dbt >= 1.10) merged over the older top-level ``meta``."""
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def _meta_matches(meta: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        held = meta.get(key)
        if held != value and not (isinstance(held, list) and value in held):
            return False
    return True


def _by_meta(
    wanted: Mapping[str, Any], models: list[dict[str, Any]], path: Path, label: str
) -> dict[str, Any]:
    matches = _latest_versions([n for n in models if _meta_matches(model_meta(n), wanted)])
    entries = ", ".join(f"{k}: {v!r}" for k, v in wanted.items())
    if len(matches) == 1:
        return dict(matches[0])
    if matches:
        raise ConfigError(
            f"{label}: several dbt models have meta {{{entries}}} in {path} ({_ids(matches)}); "
            "a sync reads one model: make the meta entry unique or name source.model"
        )
    raise ConfigError(
        f"{label}: no dbt model in {path} has meta {{{entries}}}; add it to the model's "
        "config.meta in its schema.yml and run `dbt compile` or `dbt build` again"
    )


def relation(node: Mapping[str, Any], label: str, quote: Any) -> str:
    """The model's relation as SQL, as the manifest renders it."""
    name = node.get("name")
    if (node.get("config") or {}).get("materialized") == "ephemeral":
        raise ConfigError(
            f"{label}: dbt model '{name}' is ephemeral and has no table or view to read; "
            "materialize it as a table or view"
        )
    if node.get("relation_name"):
        return str(node["relation_name"])
    parts = [node.get("database"), node.get("schema"), node.get("alias") or name]
    return ".".join(quote(str(part)) for part in parts if part)


def _read_run_results(setup: DbtSetup, label: str) -> dict[str, Any] | None:
    path = target_dir(setup.project_dir, setup.project, label) / "run_results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{label}: cannot read dbt's {path} ({exc})") from None
    return data if isinstance(data, dict) else None


def check_build(
    source: DbtSource,
    setup: DbtSetup,
    manifest: Manifest,
    node: Mapping[str, Any],
    label: str,
    now: datetime | None = None,
) -> BuildStatus:
    """Refuse a model whose latest dbt build failed, or whose data is older than max_age.

    Also refuses artifacts written for another dbt target than the one this sync connects
    with: the relation in the manifest would name the other target's table.
    """
    now = now or datetime.now(UTC)
    results = _read_run_results(setup, label)
    path = target_dir(setup.project_dir, setup.project, label) / "run_results.json"
    model_id = str(node.get("unique_id"))
    name = node.get("name")
    if results is None:
        status = BuildStatus(None, None, None)
    else:
        args = results.get("args") or {}
        metadata = results.get("metadata") or {}
        if metadata.get("invocation_id") == manifest.invocation_id:
            _check_same_target(args, setup, manifest.path, label)
        command = str(args.get("which") or "unknown")
        by_id = {str(r.get("unique_id")): r for r in results.get("results") or []}
        mine = by_id.get(model_id) if command in BUILD_COMMANDS else None
        completed = _completed_at(mine, metadata) if mine else None
        status = BuildStatus(command, str(mine.get("status")) if mine else None, completed)
        if mine is not None and not source.allow_failed_build:
            override = "or set source.allow_failed_build: true to sync the previous table"
            if status.status in FAILED_MODEL:
                message = one_line(mine.get("message") or "")
                raise UpstreamError(
                    f"{label}: dbt's latest `dbt {command}` of model '{name}' ended "
                    f"'{status.status}'{f' ({message})' if message else ''} ({path}); nothing "
                    f"was read or sent. Fix the model and rerun dbt, {override}"
                )
            failed_tests = sorted(
                str(manifest.nodes.get(uid, {}).get("name") or uid)
                for uid, result in by_id.items()
                if result.get("status") in FAILED_TEST
                and manifest.nodes.get(uid, {}).get("attached_node") == model_id
            )
            if failed_tests:
                raise UpstreamError(
                    f"{label}: dbt's latest `dbt {command}` failed test(s) on model '{name}' "
                    f"({', '.join(failed_tests)}; {path}): dbt would skip everything "
                    f"downstream of it; nothing was read or sent. Fix the data and rerun dbt, "
                    f"{override}"
                )
    if source.max_age is not None:
        _check_age(source.max_age, status, name, path, label, now)
    return status


def _check_same_target(
    args: Mapping[str, Any], setup: DbtSetup, manifest_path: Path, label: str
) -> None:
    """The manifest's relations are those of the target dbt compiled for: it must be ours."""
    # dbt records --profile/--target (or DBT_PROFILE/DBT_TARGET) when given; without them it
    # used the defaults, which are ours too unless our profile names another target.
    their_profile = args.get("profile") or setup.default_profile
    their_target = args.get("target") or setup.default_target
    checks = (
        ("profile", setup.profile, setup.profile_from, their_profile),
        ("target", setup.target, setup.target_from, their_target),
    )
    for what, ours, origin, theirs in checks:
        if theirs is None or str(theirs) == ours:
            continue
        raise ConfigError(
            f"{label}: {manifest_path} was written by `dbt {args.get('which', '?')}` for "
            f"{what} '{theirs}', but this sync reads {what} '{ours}' (from {origin}): its "
            f"relation names would be the other {what}'s tables. Run dbt for {what} '{ours}' "
            f"first (e.g. dbt build --{what} {ours}), or read {what} '{theirs}'"
        )


def _completed_at(result: Mapping[str, Any], metadata: Mapping[str, Any]) -> datetime | None:
    timing = {t.get("name"): t for t in result.get("timing") or [] if isinstance(t, dict)}
    text = (timing.get("execute") or {}).get("completed_at") or metadata.get("generated_at")
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _check_age(
    max_age: timedelta,
    status: BuildStatus,
    name: object,
    path: Path,
    label: str,
    now: datetime,
) -> None:
    limit = f"max_age {_age(max_age)}"
    if status.status != "success" or status.completed_at is None:
        raise UpstreamError(
            f"{label}: cannot tell when dbt model '{name}' was last built successfully "
            f"({status.describe(now)}; {path}), so its {limit} cannot be checked; nothing was "
            "read or sent. Run `dbt build` (or `dbt run`) for it, or remove source.max_age"
        )
    age = now - status.completed_at
    if age > max_age:
        raise UpstreamError(
            f"{label}: dbt model '{name}' was last built {_age(age)} ago "
            f"({status.completed_at.isoformat(timespec='seconds')}), more than its {limit}; "
            "nothing was read or sent. Rerun dbt, or raise source.max_age"
        )


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        hours, rest = divmod(seconds, 3600)
        return f"{hours}h{rest // 60:02d}m" if rest >= 60 else f"{hours}h"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"
