"""What the orchestrator integrations share: running a sync, its summary, and which failures
a retry can cure.

A retry cannot cure a wrong config, a tripped guardrail (a person must look), rows rejected
under strict mode, or an answer Target gives on purpose (rejected batch, refused token):
those are *permanent*. Everything else (Target or the warehouse unreachable, the state lock
held by another run, dbt's build of the model failed or is stale) may pass: *transient*.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, GuardrailError, StrictRejectError, TargetFatalError
from ..result import SyncResult

PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    ConfigError,
    GuardrailError,
    StrictRejectError,
    TargetFatalError,
)
# The loggers whose INFO events describe where a run read from (see dbt_source.resolve).
SOURCE_LOGGERS = ("connector.sources.dbt_source",)
SOURCE_EVENTS = ("dbt_source",)


def is_permanent(error: BaseException) -> bool:
    """Whether retrying the same run cannot help."""
    return isinstance(error, PERMANENT_ERRORS)


@dataclass
class SourceFacts:
    """The source's own account of a run (for dbt: profile, target, model, latest build)."""

    fields: dict[str, Any] = field(default_factory=dict)


class _Collector(logging.Handler):
    def __init__(self, facts: SourceFacts) -> None:
        super().__init__(logging.INFO)
        self.facts = facts

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "event_fields", None)
        if isinstance(fields, dict) and fields.get("event") in SOURCE_EVENTS:
            self.facts.fields.update(
                {k: v for k, v in fields.items() if k not in ("event", "sync")}
            )


@contextmanager
def source_facts() -> Iterator[SourceFacts]:
    """Collect what the source logs about itself while a run goes.

    Its INFO lines are let through for the run (and so reach the orchestrator's task log),
    whatever level the application set on our loggers.
    """
    facts = SourceFacts()
    collector = _Collector(facts)
    saved = []
    for name in SOURCE_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        logger.addHandler(collector)
    try:
        yield facts
    finally:
        for logger, level in saved:
            logger.removeHandler(collector)
            logger.setLevel(level)


def summary(result: SyncResult, facts: SourceFacts | None = None) -> dict[str, Any]:
    """The run's summary, JSON-able (for XCom and metadata), with the source's facts."""
    data = result.to_dict()
    data.pop("batch_files", None)
    if facts is not None and facts.fields:
        data["source"] = dict(facts.fields)
    return data


def sync_name(config_path: str | os.PathLike[str]) -> str:
    """The sync's ``name`` read from its file without validating it (no variables needed:
    orchestrators call this when they parse their DAGs and definitions); the file's stem if
    it has none."""
    path = Path(config_path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raw = None
    name = raw.get("name") if isinstance(raw, dict) else None
    return str(name) if isinstance(name, str) and name else path.stem


def dbt_model_name(config_path: str | os.PathLike[str]) -> tuple[str, str]:
    """(dbt project name, model name) of a dbt-sourced config; a model chosen by ``meta`` is
    looked up in the manifest. Loads the config (its variables must be set)."""
    from ..config import DbtSource, load_config
    from ..sources.dbt_artifacts import find_model, load_manifest
    from ..sources.dbt_profiles import load_project, project_dir

    config = load_config(config_path)
    source = config.source
    if not isinstance(source, DbtSource):
        raise ConfigError(f"{config.label}: its source is {source.type}, not a dbt model")
    folder = project_dir(source, config.label, os.environ, Path.cwd())
    project = load_project(folder, config.label)
    project_name = str(project.get("name") or folder.name)
    if source.model is not None and source.model.count(".") == 0:
        return project_name, source.model
    node = find_model(source, load_manifest(folder, project, config.label), None, config.label)
    return project_name, str(node["name"])
