"""``type: dbt``: a dbt model's relation, read through the engine of the project's dbt profile.

The project, ``profiles.yml``, profile and target are found exactly as dbt finds them
(:mod:`.dbt_profiles`: the source's keys, then ``DBT_*`` variables, then dbt's defaults). The
model is looked up by name or by a ``meta`` entry in ``<target-path>/manifest.json``, and
``run_results.json`` must not say its latest build failed (:mod:`.dbt_artifacts`). Each open
logs, at INFO, which profile and target the run uses and the model's latest build (a
``dbt_source`` event in the JSON log).

The query ``SELECT <columns or *> FROM <relation>`` then runs on the duckdb source (adapter
``duckdb``: ``path``, relative paths taken from the project directory), the snowflake source
(adapter ``snowflake``) or the sqlalchemy source with a ``postgresql+psycopg`` URL (adapter
``postgres``), configured in memory from the profile. dbt itself is never imported.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from pydantic import ValidationError

from ..config import DbtSource, DuckDBSource, SnowflakeSource, SqlAlchemySource, SyncConfig
from ..errors import ConfigError
from . import open_reader as _open_reader
from . import probe_schema as _probe_schema
from . import require
from .dbt_artifacts import BuildStatus, check_build, find_model, load_manifest, relation
from .dbt_profiles import DbtSetup, setup

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_ADAPTERS = "duckdb, snowflake, postgres"
# The profile keys read here; only these are rendered, so Jinja elsewhere in the profile
# (hooks, settings of other tools) does not matter.
_SNOWFLAKE_KEYS = {
    "account": "account",
    "user": "user",
    "password": "password",
    "role": "role",
    "warehouse": "warehouse",
    "database": "database",
    "schema": "schema",
    "private_key_path": "private_key_file",
    "private_key_passphrase": "private_key_passphrase",
    "host": "host",
    "port": "port",
    "protocol": "protocol",
    "connect_timeout": "login_timeout",
}
_POSTGRES_KEYS = ("host", "port", "user", "pass", "dbname", "sslmode")
_USED_KEYS = {"type", "path", "authenticator", "private_key", *_SNOWFLAKE_KEYS, *_POSTGRES_KEYS}


@dataclass(frozen=True)
class DbtResolution:
    """A dbt source, resolved: the engine source that reads the model, and where it came from."""

    config: SyncConfig  # the sync config with the engine source in place of the dbt source
    setup: DbtSetup
    model: str  # the model's unique id
    relation: str
    build: BuildStatus

    def fields(self) -> dict[str, Any]:
        """JSON-able facts for logs and orchestrator metadata."""
        return {
            "dbt_project_dir": str(self.setup.project_dir),
            "dbt_profiles_yml": str(self.setup.profiles_yml),
            "dbt_profile": self.setup.profile,
            "dbt_profile_from": self.setup.profile_from,
            "dbt_target": self.setup.target,
            "dbt_target_from": self.setup.target_from,
            "dbt_model": self.model,
            "relation": self.relation,
            "dbt_last_command": self.build.command,
            "dbt_model_status": self.build.status,
            "dbt_model_built_at": (
                self.build.completed_at.isoformat() if self.build.completed_at else None
            ),
        }


def open_reader(config: SyncConfig) -> AbstractContextManager[pa.RecordBatchReader]:
    """Resolve the model and its profile, then stream it through the matching engine source."""
    return _open_reader(resolve(config))


def probe_schema(config: SyncConfig) -> pa.Schema:
    """The model's schema, fetched by the matching engine source without reading rows."""
    return _probe_schema(resolve(config))


def resolve(config: SyncConfig) -> SyncConfig:
    """``config`` with its dbt source replaced by the engine source that reads the model.

    Logs (INFO) which profile and target it uses and the model's latest build; raises
    :class:`~connector.errors.UpstreamError` when that build failed or is too old.
    """
    resolution = resolve_dbt(config)
    fields = resolution.fields()
    log.info(
        "%s reads dbt model %s (%s) with %s; %s",
        config.label,
        resolution.model,
        resolution.relation,
        resolution.setup.describe(),
        resolution.build.describe(),
        extra={"event_fields": {"event": "dbt_source", "sync": config.name, **fields}},
    )
    return resolution.config


def resolve_dbt(config: SyncConfig, environ: Mapping[str, str] | None = None) -> DbtResolution:
    """Find the project, profile, target and model as dbt does, and check the model's latest
    build (:func:`~connector.sources.dbt_artifacts.check_build`)."""
    assert isinstance(config.source, DbtSource)
    source = config.source
    label = config.label
    found = setup(source, label, _USED_KEYS, environ)
    manifest = load_manifest(found.project_dir, found.project, label)
    node = find_model(source, manifest, found.project.get("name"), label)
    build = check_build(source, found, manifest, node, label)
    where = found.describe()
    columns = ", ".join(_quote(c) for c in source.columns) if source.columns else "*"
    sql_relation = relation(node, label, _quote)
    engine = _engine_source(
        found.output, where, f"SELECT {columns} FROM {sql_relation}", source, found, label
    )
    return DbtResolution(
        config=config.model_copy(update={"source": engine}),
        setup=found,
        model=str(node.get("unique_id")),
        relation=sql_relation,
        build=build,
    )


def _quote(identifier: str) -> str:
    # Plain names stay unquoted so each engine applies its own case rules (Snowflake folds
    # them to upper case); anything else is quoted as written.
    if _IDENTIFIER.match(identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def _engine_source(
    output: Mapping[str, Any],
    where: str,
    query: str,
    source: DbtSource,
    found: DbtSetup,
    label: str,
) -> DuckDBSource | SnowflakeSource | SqlAlchemySource:
    adapter = str(output.get("type", "")).lower()
    common = {"query": query, "batch_size": source.batch_size}
    try:
        if adapter == "duckdb":
            path = str(output.get("path") or ":memory:")
            if path == ":memory:" or path.startswith("md:"):
                raise ConfigError(
                    f"{label}: {where} uses DuckDB at '{path}', which another process cannot "
                    "read; point the profile at a database file"
                )
            return DuckDBSource.model_validate(
                {"type": "duckdb", "database": os.path.expanduser(path), **common},
                context={"base_dir": found.project_dir},
            )
        if adapter == "snowflake":
            return SnowflakeSource.model_validate(
                {"type": "snowflake", **_snowflake_settings(output, where, label), **common},
                context={"base_dir": found.project_dir},
            )
        if adapter == "postgres":
            return SqlAlchemySource.model_validate(
                {"type": "sqlalchemy", "url": _postgres_url(output, where, label), **common}
            )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise ConfigError(f"{label}: {where}: {problems}") from None
    raise ConfigError(
        f"{label}: {where} uses the '{adapter or '(none)'}' adapter, which the dbt source does "
        f"not support (supported: {_ADAPTERS}); use a source of type sqlalchemy instead"
    )


def _snowflake_settings(output: Mapping[str, Any], where: str, label: str) -> dict[str, Any]:
    authenticator = str(output.get("authenticator", "snowflake")).lower()
    if authenticator not in ("snowflake", "snowflake_jwt") or output.get("private_key"):
        what = "an inline private_key" if output.get("private_key") else authenticator
        raise ConfigError(
            f"{label}: {where} authenticates with {what}, which the dbt source does not "
            "support; use a password or private_key_path"
        )
    return {ours: output[k] for k, ours in _SNOWFLAKE_KEYS.items() if output.get(k) is not None}


def _postgres_url(output: Mapping[str, Any], where: str, label: str) -> str:
    require("sqlalchemy", "postgres", f"{label} (dbt adapter postgres)")
    from sqlalchemy.engine import URL

    port = output.get("port")
    if port is not None and not str(port).isdigit():
        raise ConfigError(f"{label}: {where}: port must be a number")
    query = {k: str(output[k]) for k in ("sslmode", "connect_timeout") if output.get(k)}
    url = URL.create(
        "postgresql+psycopg",
        username=output.get("user"),
        password=output.get("password") or output.get("pass"),
        host=output.get("host"),
        port=int(port) if port is not None else None,
        database=output.get("dbname") or output.get("database"),
        query=query,
    )
    return url.render_as_string(hide_password=False)
