"""``type: dbt``: a dbt model's relation, read through the engine of the project's dbt profile.

The model is looked up in ``<project_dir>/<target-path>/manifest.json`` (written by ``dbt
compile``, ``dbt run`` or ``dbt build``), which gives its relation. The connection comes from the
dbt profile, read as plain YAML without importing dbt:

- ``profiles.yml`` from ``profiles_dir``, else ``$DBT_PROFILES_DIR``, else the project
  directory, else ``~/.dbt``;
- the profile named by ``profile:`` in the sync config, else by ``dbt_project.yml``;
- the output named by ``target:``, else the profile's own ``target``;
- string values may use ``{{ env_var('NAME') }}`` and ``{{ env_var('NAME', 'default') }}``,
  optionally piped through ``int``, ``as_number``, ``as_bool``, ``as_native`` or ``as_text``;
  any other Jinja is refused with a message rather than passed on as text.

The query ``SELECT <columns or *> FROM <relation>`` then runs on the duckdb source (adapter
``duckdb``: ``path``, relative paths taken from the project directory), the snowflake source
(adapter ``snowflake``) or the sqlalchemy source with a ``postgresql+psycopg`` URL (adapter
``postgres``), configured in memory from the profile.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml
from pydantic import ValidationError

from ..config import DbtSource, DuckDBSource, SnowflakeSource, SqlAlchemySource, SyncConfig
from ..errors import ConfigError
from . import open_reader as _open_reader
from . import probe_schema as _probe_schema
from . import require

_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%|\{#", re.S)
_ENV_VAR = re.compile(
    r"""^\s*env_var\(\s*(['"])(?P<name>[^'"]+)\1\s*"""
    r"""(?:,\s*(?:(['"])(?P<default>.*?)\3|(?P<number>-?[\d.]+))\s*)?\)"""
    r"""\s*(?:\|\s*(?P<filter>\w+)\s*)?$""",
    re.S,
)
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


def open_reader(config: SyncConfig) -> AbstractContextManager[pa.RecordBatchReader]:
    """Resolve the model and its profile, then stream it through the matching engine source."""
    return _open_reader(resolve(config))


def probe_schema(config: SyncConfig) -> pa.Schema:
    """The model's schema, fetched by the matching engine source without reading rows."""
    return _probe_schema(resolve(config))


def resolve(config: SyncConfig) -> SyncConfig:
    """``config`` with its dbt source replaced by the engine source that reads the model."""
    assert isinstance(config.source, DbtSource)
    source = config.source
    label = config.label
    project_dir = source.project_dir
    project = _load_yaml(project_dir / "dbt_project.yml", label, "the dbt project file")
    if not isinstance(project, dict):
        raise ConfigError(f"{label}: {project_dir / 'dbt_project.yml'} is not a dbt project file")
    node = _model_node(source, project, label)
    relation = _relation(node, source, label)
    columns = ", ".join(_quote(c) for c in source.columns) if source.columns else "*"
    query = f"SELECT {columns} FROM {relation}"

    profile_name = source.profile or _render(project.get("profile"), label, "dbt_project.yml")
    if not profile_name:
        raise ConfigError(
            f"{label}: {project_dir / 'dbt_project.yml'} names no profile; set source.profile"
        )
    output, where = _profile_output(source, str(profile_name), label)
    engine = _engine_source(output, where, query, source, label)
    return config.model_copy(update={"source": engine})


def _load_yaml(path: Path, label: str, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{label}: {what} {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read {what} {path} ({exc.strerror or exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{label}: {where}: invalid YAML ({problem})") from None


def _model_node(source: DbtSource, project: Mapping[str, Any], label: str) -> dict[str, Any]:
    target_path = os.environ.get("DBT_TARGET_PATH") or _render(
        project.get("target-path", "target"), label, "dbt_project.yml"
    )
    manifest_path = source.project_dir / str(target_path) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{label}: {manifest_path} does not exist; run `dbt compile` or `dbt build` in "
            f"{source.project_dir} first, then rerun"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{label}: cannot read the dbt manifest {manifest_path} ({exc})"
        ) from None

    models = [
        node for node in manifest.get("nodes", {}).values() if node.get("resource_type") == "model"
    ]
    wanted = source.model
    matches = [
        node
        for node in models
        if wanted in (node.get("name"), f"{node.get('package_name')}.{node.get('name')}")
        or wanted == node.get("unique_id")
    ]
    if len(matches) > 1:
        # Several versions of one model: the latest; one name in several packages: the
        # project's own.
        matches = [
            n for n in matches if n.get("version") in (None, n.get("latest_version"))
        ] or matches
    if len(matches) > 1:
        matches = [n for n in matches if n.get("package_name") == project.get("name")] or matches
    if len(matches) == 1:
        return dict(matches[0])
    if matches:
        ids = ", ".join(sorted(str(n.get("unique_id")) for n in matches))
        raise ConfigError(
            f"{label}: dbt model '{wanted}' is ambiguous in {manifest_path} ({ids}); "
            "write source.model as package.model"
        )
    names = sorted({str(n.get("name")) for n in models})
    close = difflib.get_close_matches(wanted, names, n=5, cutoff=0.5) or names[:5]
    hint = f" (close names: {', '.join(close)})" if close else " (it has no models)"
    raise ConfigError(
        f"{label}: dbt model '{wanted}' is not in {manifest_path}{hint}; if it is new, run "
        "`dbt compile` or `dbt build` again"
    )


def _relation(node: Mapping[str, Any], source: DbtSource, label: str) -> str:
    if node.get("config", {}).get("materialized") == "ephemeral":
        raise ConfigError(
            f"{label}: dbt model '{source.model}' is ephemeral and has no table or view to read; "
            "materialize it as a table or view"
        )
    if node.get("relation_name"):
        return str(node["relation_name"])
    parts = [node.get("database"), node.get("schema"), node.get("alias") or node.get("name")]
    return ".".join(_quote(str(part)) for part in parts if part)


def _quote(identifier: str) -> str:
    # Plain names stay unquoted so each engine applies its own case rules (Snowflake folds
    # them to upper case); anything else is quoted as written.
    if _IDENTIFIER.match(identifier):
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def _profile_output(source: DbtSource, profile_name: str, label: str) -> tuple[dict[str, Any], str]:
    """The profile's output (connection settings), rendered, and where it came from."""
    if source.profiles_dir is not None:
        candidates = [source.profiles_dir]
    elif os.environ.get("DBT_PROFILES_DIR"):
        candidates = [Path(os.environ["DBT_PROFILES_DIR"]).expanduser()]
    else:
        candidates = [source.project_dir, Path.home() / ".dbt"]
    path = next((d / "profiles.yml" for d in candidates if (d / "profiles.yml").is_file()), None)
    if path is None:
        looked = ", ".join(str(d / "profiles.yml") for d in candidates)
        raise ConfigError(f"{label}: no dbt profiles.yml found (looked for {looked})")
    profiles = _load_yaml(path, label, "the dbt profiles file") or {}
    profile = profiles.get(profile_name) if isinstance(profiles, dict) else None
    if not isinstance(profile, dict):
        known = ", ".join(sorted(k for k in profiles if k != "config")) or "none"
        raise ConfigError(
            f"{label}: {path} has no profile '{profile_name}' (profiles there: {known})"
        )
    target = source.target or _render(profile.get("target"), label, str(path))
    outputs = profile.get("outputs") or {}
    if not target or target not in outputs:
        known = ", ".join(sorted(outputs)) or "none"
        raise ConfigError(
            f"{label}: dbt profile '{profile_name}' in {path} has no target "
            f"'{target or '(none set)'}' (targets: {known}); set source.target"
        )
    raw = outputs[target]
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: {path}: target '{target}' is not a mapping")
    output = {k: _render(v, label, str(path)) for k, v in raw.items() if k in _USED_KEYS}
    return output, f"dbt profile '{profile_name}' target '{target}' ({path})"


def _render(value: Any, label: str, where: str) -> Any:
    """dbt's ``{{ env_var(...) }}`` rendering of every string in ``value``."""
    if isinstance(value, dict):
        return {k: _render(v, label, where) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, label, where) for v in value]
    if not isinstance(value, str) or not _JINJA.search(value):
        return value
    whole = re.fullmatch(r"\s*\{\{(.*?)\}\}\s*", value, re.S)
    if whole and "{{" not in whole.group(1):
        # A value that is one expression may become a number or a boolean through a filter.
        return _env_var(whole.group(1), label, where, typed=True)

    def text(match: re.Match[str]) -> str:
        if match.group(1) is None:
            raise ConfigError(_unsupported(value, label, where))
        return str(_env_var(match.group(1), label, where, typed=False))

    return _JINJA.sub(text, value)


def _env_var(expression: str, label: str, where: str, typed: bool) -> Any:
    match = _ENV_VAR.match(expression)
    if match is None:
        raise ConfigError(_unsupported("{{" + expression + "}}", label, where))
    name = match.group("name")
    if name in os.environ:
        value = os.environ[name]
    elif match.group("default") is not None:
        value = match.group("default")
    elif match.group("number") is not None:
        value = match.group("number")
    else:
        raise ConfigError(
            f"{label}: {where} reads environment variable {name}, which is not set "
            "(set it, or give env_var a default)"
        )
    kind = match.group("filter")
    if kind in (None, "as_text", "string"):
        return value
    if not typed:
        # Inside a longer string a filtered value is rendered as text, as Jinja does.
        return str(_env_var(expression, label, where, typed=True))
    try:
        if kind == "int":
            return int(value)
        if kind == "as_number":
            return int(value) if re.fullmatch(r"-?\d+", value.strip()) else float(value)
        if kind == "as_bool":
            return {"true": True, "false": False}[value.strip().lower()]
        if kind == "as_native":
            return yaml.safe_load(value)
    except (ValueError, KeyError, yaml.YAMLError):
        raise ConfigError(
            f"{label}: {where}: environment variable {name} does not read as {kind}"
        ) from None
    raise ConfigError(_unsupported("{{" + expression + "}}", label, where))


def _unsupported(text: str, label: str, where: str) -> str:
    shown = " ".join(text.split())[:80]
    return (
        f"{label}: {where} uses Jinja this reader does not support ({shown}); only "
        "{{ env_var('NAME') }} and {{ env_var('NAME', 'default') }} are rendered: set the "
        "value directly, or give the sync a source of type duckdb/snowflake/sqlalchemy"
    )


def _engine_source(
    output: Mapping[str, Any], where: str, query: str, source: DbtSource, label: str
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
                context={"base_dir": source.project_dir},
            )
        if adapter == "snowflake":
            return SnowflakeSource.model_validate(
                {"type": "snowflake", **_snowflake_settings(output, where, label), **common},
                context={"base_dir": source.project_dir},
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
