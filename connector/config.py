"""The sync config: YAML in, frozen pydantic models out.

``load_config(path)`` reads one YAML file, substitutes ``${VAR}`` (and ``${VAR:-default}``)
from the environment, resolves paths relative to the file, and validates it. Every problem is
a :class:`~connector.errors.ConfigError` naming the file, the line, the key path and what is
expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import ConfigError

DEFAULT_STATE_PATH = ".target-sync/state.duckdb"
MAX_ROWS_PER_BATCH = 500_000
MAX_BYTES_PER_BATCH = 50_000_000
MAX_ATTRIBUTE_NAME_CHARS = 128

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is None or value.is_absolute() or str(value) == ":memory:":
        return value
    return (Path(base) / value).resolve()


RelPath = Annotated[Path, AfterValidator(_resolve_path)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class _QuerySource(_Frozen):
    """A source that runs one SQL query, given inline or in a file."""

    query: str | None = None
    query_file: RelPath | None = None
    batch_size: int = Field(100_000, ge=1_000, le=1_000_000)

    @model_validator(mode="after")
    def _one_query(self) -> _QuerySource:
        if (self.query is None) == (self.query_file is None):
            raise ValueError("give exactly one of 'query' or 'query_file'")
        return self

    def query_text(self) -> str:
        """The SQL to run, read from ``query_file`` when that is how it was given."""
        if self.query is not None:
            return self.query
        assert self.query_file is not None
        try:
            text = self.query_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"source.query_file: cannot read {self.query_file} ({exc.strerror or exc})"
            ) from None
        return text.strip().rstrip(";")


class DuckDBSource(_QuerySource):
    """A DuckDB database file (the embedded default)."""

    type: Literal["duckdb"]
    database: RelPath


class SnowflakeSource(_QuerySource):
    """Snowflake through snowflake-connector-python."""

    type: Literal["snowflake"]
    connection_name: str | None = None
    account: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    private_key_file: RelPath | None = None
    private_key_passphrase: SecretStr | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    schema_: str | None = Field(None, alias="schema")
    # host/port/protocol reach a proxy or a local fake Snowflake server.
    host: str | None = None
    port: int | None = None
    protocol: Literal["https", "http"] | None = None
    login_timeout: int = 60


class SqlAlchemySource(_QuerySource):
    """Any database SQLAlchemy has a dialect for."""

    type: Literal["sqlalchemy"]
    url: SecretStr


class DbtSource(_Frozen):
    """A dbt model, resolved through the project's ``target/manifest.json``."""

    type: Literal["dbt"]
    project_dir: RelPath
    model: str
    profiles_dir: RelPath | None = None
    profile: str | None = None
    target: str | None = None
    columns: list[str] | None = None
    batch_size: int = Field(100_000, ge=1_000, le=1_000_000)


Source = Annotated[
    DuckDBSource | SnowflakeSource | SqlAlchemySource | DbtSource,
    Field(discriminator="type"),
]


class Identity(_Frozen):
    """The column that identifies the visitor, and which Target id it is."""

    column: str
    type: Literal["thirdPartyId", "pcId"] = "thirdPartyId"


class Attribute(_Frozen):
    """One Target profile attribute: a column, or a static value."""

    column: str | None = None
    value: str | None = None
    null: str | None = None
    format: str | None = None

    @model_validator(mode="after")
    def _column_or_value(self) -> Attribute:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' or 'value'")
        if self.value is not None and (self.null is not None or self.format is not None):
            raise ValueError("'null' and 'format' apply to a column, not to a static 'value'")
        return self


class RemovedSet(_Frozen):
    """Send these attributes once for profiles that left the result, then forget them."""

    set: dict[str, str] = Field(min_length=1)


class TargetConfig(_Frozen):
    """Where and how batches are sent."""

    client_code: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    api_version: Literal[1, 2] = 2
    auth_token: SecretStr | None = None
    base_url: str | None = None
    allow_insecure_http: bool = False
    max_rows_per_batch: int = Field(MAX_ROWS_PER_BATCH, ge=1, le=MAX_ROWS_PER_BATCH)
    max_bytes_per_batch: int = Field(MAX_BYTES_PER_BATCH, ge=1_024, le=MAX_BYTES_PER_BATCH)
    connect_timeout_seconds: float = Field(10.0, gt=0)
    read_timeout_seconds: float = Field(120.0, gt=0)
    max_attempts: int = Field(8, ge=1, le=100)
    max_retry_seconds: float = Field(900.0, gt=0)
    backoff_base_seconds: float = Field(1.0, ge=0)
    backoff_max_seconds: float = Field(60.0, ge=0)
    # Target allows 50 calls a minute shared with the Admin and Reporting APIs.
    calls_per_minute: int = Field(40, ge=1, le=50)
    status_deadline_seconds: float = Field(120.0, ge=0)
    status_poll_interval_seconds: float = Field(2.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must start with http:// or https:// and name a host")
        return value.rstrip("/") if value else value


class StateConfig(_Frozen):
    """The DuckDB file holding snapshots and run history, and how DuckDB may use the host."""

    path: RelPath = Path(DEFAULT_STATE_PATH)
    memory_limit: str | None = None
    temp_directory: RelPath | None = None
    threads: int | None = Field(None, ge=1)
    keep_runs: int = Field(200, ge=1)


class SyncConfig(_Frozen):
    """One sync: a query, an identity, a mapping, and where to send it."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
    source: Source
    identity: Identity
    attributes: dict[str, Attribute] = Field(min_length=1)
    on_removed: Literal["ignore"] | RemovedSet = "ignore"
    target: TargetConfig
    state: StateConfig = StateConfig()
    strict: bool = False
    max_removed_fraction: float | None = Field(None, ge=0, le=1)
    min_rows: int | None = Field(None, ge=0)
    config_path: Path | None = Field(None, exclude=True)

    @field_validator("attributes", mode="before")
    @classmethod
    def _short_form(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            return value
        identity = (info.data.get("identity") if info.data else None) or None
        id_column = identity.column if isinstance(identity, Identity) else None
        for name, spec in value.items():
            if isinstance(spec, str) and spec == id_column:
                raise ValueError(
                    f"attribute '{name}' maps the identity column '{spec}', which is already "
                    f"sent as the key; if you mean it, write {name}: {{column: {spec}}}"
                )
        return {
            name: {"column": spec} if isinstance(spec, str) else spec
            for name, spec in value.items()
        }

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, value: dict[str, Attribute]) -> dict[str, Attribute]:
        for name in value:
            _check_attribute_name(name)
        return value

    @model_validator(mode="after")
    def _removed_attributes(self) -> SyncConfig:
        if isinstance(self.on_removed, RemovedSet):
            for name in self.on_removed.set:
                _check_attribute_name(name)
        return self

    @property
    def label(self) -> str:
        """How messages name this sync."""
        return f"sync '{self.name}'"


def _check_attribute_name(name: str) -> None:
    if not name or not name.strip():
        raise ValueError("attribute names must not be empty")
    if len(name) > MAX_ATTRIBUTE_NAME_CHARS:
        raise ValueError(f"attribute name '{name[:40]}...' is over 128 characters")
    if name.startswith("profile."):
        raise ValueError(
            f"attribute '{name}': write the plain name without 'profile.' "
            "(Target adds the prefix itself)"
        )
    if name in ("thirdPartyId", "pcId", "mbox3rdPartyId"):
        raise ValueError(f"attribute '{name}' is reserved for the profile id")


def load_config(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> SyncConfig:
    """Read and validate one sync config file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config ({exc.strerror or exc})") from None
    return parse_config(text, file, os.environ if environ is None else environ)


def parse_config(text: str, file: Path, environ: Mapping[str, str]) -> SyncConfig:
    """Validate config text that came from ``file`` (used for messages and relative paths)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML ({problem})") from None
    lines = _key_lines(root) if root is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of keys (name, source, ...) at the top")
    raw = _substitute(raw, (), environ, file, lines)
    try:
        config = SyncConfig.model_validate(raw, context={"base_dir": file.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, lines)) from None
    config = config.model_copy(update={"config_path": file.resolve()})
    if not isinstance(config.source, DbtSource):
        try:
            config.source.query_text()
        except ConfigError as exc:
            raise ConfigError(f"{file}: {exc}") from None
    return config


def _key_lines(node: yaml.Node, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map each key path to the 1-based line it is written on."""
    lines: dict[tuple[str, ...], int] = {path: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
            lines.update({k: v for k, v in _key_lines(value, child).items() if k != child})
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_key_lines(item, (*path, str(index))))
    return lines


def _substitute(
    value: Any,
    path: tuple[str, ...],
    environ: Mapping[str, str],
    file: Path,
    lines: dict[tuple[str, ...], int],
) -> Any:
    if isinstance(value, dict):
        # YAML reads a bare `null:` key as None; in attributes it is our `null` rule.
        return {
            ("null" if k is None else k): _substitute(
                v, (*path, "null" if k is None else str(k)), environ, file, lines
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_substitute(v, (*path, str(i)), environ, file, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{_where(file, lines, path)}: {'.'.join(path)}: environment variable "
            f"{name} is not set (set it, or write ${{{name}:-default}})"
        )

    return _VAR.sub(replace, value)


def _where(file: Path, lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> str:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return f"{file}:{lines[path[:end]]}"
    return str(file)


_SOURCE_TAGS = {"duckdb", "snowflake", "sqlalchemy", "dbt"}


def _describe(exc: ValidationError, file: Path, lines: dict[tuple[str, ...], int]) -> str:
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if len(loc) > 1 and loc[0] == "source" and loc[1] in _SOURCE_TAGS:
            del loc[1]
        if loc and loc[-1] in ("str", "RemovedSet", "literal['ignore']"):
            loc.pop()
        key = ".".join(loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README for the keys)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "union_tag_invalid":
            message = "unknown source type; expected one of duckdb, snowflake, sqlalchemy, dbt"
        problems.append(f"{_where(file, lines, tuple(loc))}: {key}: {message}")
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more
