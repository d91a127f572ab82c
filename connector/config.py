"""The sync config: YAML in, frozen pydantic models out.

``load_config(path)`` reads one YAML file, substitutes ``${VAR}`` (and ``${VAR:-default}``)
from the environment, resolves paths relative to the file, and validates it. Every problem is
a :class:`~connector.errors.ConfigError` naming the file, the line, the key path and what is
expected.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ConfigError

DEFAULT_STATE_PATH = ".target-sync/state.duckdb"
MAX_ROWS_PER_BATCH = 500_000
MAX_BYTES_PER_BATCH = 50_000_000
MAX_ATTRIBUTE_NAME_CHARS = 128
MAX_VALUE_CHARS = 256
# Stop a run that would drop more than this share of the synced profiles (a broken upstream
# model looks like that); `max_removed_fraction: null` turns the guardrail off.
DEFAULT_MAX_REMOVED_FRACTION = 0.5
# Target's documented rate limit for the bulk profile API, shared with its Admin and
# Reporting APIs.
TARGET_CALLS_PER_MINUTE = 50

# libyaml's loader when PyYAML has it (ten times faster), else the pure-Python one; both safe.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

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

    query: str | None = Field(
        None, description="The SQL query whose rows are synced (or `query_file`)."
    )
    query_file: RelPath | None = Field(
        None,
        description="A file holding the query, relative to the config file (or `query`).",
    )
    batch_size: int = Field(
        100_000,
        ge=1_000,
        le=1_000_000,
        description="Rows per Arrow batch read from the source (1,000 to 1,000,000).",
    )

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

    type: Literal["duckdb"] = Field(description="`duckdb`: a DuckDB database file.")
    database: RelPath = Field(
        description="The DuckDB database file, relative to the config file (read-only)."
    )


class SnowflakeSource(_QuerySource):
    """Snowflake through snowflake-connector-python."""

    type: Literal["snowflake"] = Field(description="`snowflake`: a Snowflake account.")
    connection_name: str | None = Field(
        None,
        description="A connection of Snowflake's own `connections.toml`, instead of the "
        "keys below.",
    )
    account: str | None = Field(None, description="Account identifier (`orgname-account`).")
    user: str | None = Field(None, description="User to log in as.")
    password: SecretStr | None = Field(
        None, description="Password (a secret: use `${VAR}`); or `private_key_file`."
    )
    private_key_file: RelPath | None = Field(
        None, description="PEM private key file for key-pair authentication."
    )
    private_key_passphrase: SecretStr | None = Field(
        None, description="Passphrase of an encrypted `private_key_file` (a secret)."
    )
    role: str | None = Field(None, description="Role to use; the user's default when unset.")
    warehouse: str | None = Field(
        None, description="Virtual warehouse that runs the query; the default when unset."
    )
    database: str | None = Field(
        None, description="Database the query's unqualified names refer to."
    )
    schema_: str | None = Field(
        None, alias="schema", description="Schema the query's unqualified names refer to."
    )
    # host/port/protocol reach a proxy or a local fake Snowflake server.
    host: str | None = Field(
        None, description="Host to connect to instead of the account's (a proxy, a test server)."
    )
    port: int | None = Field(None, description="Port for `host`.")
    protocol: Literal["https", "http"] | None = Field(
        None, description="Protocol for `host` (`https` by default)."
    )
    login_timeout: int = Field(60, description="Seconds to wait for the login.")


class SqlAlchemySource(_QuerySource):
    """Any database SQLAlchemy has a dialect for."""

    type: Literal["sqlalchemy"] = Field(
        description="`sqlalchemy`: any database with a SQLAlchemy dialect."
    )
    url: SecretStr = Field(
        description="SQLAlchemy URL, e.g. `postgresql+psycopg://user@host/db` (a secret: it "
        "may hold a password)."
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_DURATION_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _duration(value: Any) -> Any:
    """``"24h"``, ``"90m"``, ``"1d12h"``, ``"2w"`` (or a number of seconds) as a timedelta."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(
            f"'{value}' is not a duration; write a number and a unit: s, m, h, d or w "
            "(e.g. 24h, 90m, 1d12h)"
        )
    total = timedelta()
    for number, unit in parts:
        total += timedelta(**{_DURATION_UNITS[unit]: float(number)})
    if total <= timedelta():
        raise ValueError("must be longer than zero")
    return total


Duration = Annotated[timedelta, BeforeValidator(_duration)]
MetaValue = str | int | float | bool


class ExposureOwner(_Frozen):
    """Who owns a sync, as dbt's exposures name an owner (name, email or both)."""

    name: str | None = Field(None, min_length=1, description="The owner's name.")
    email: str | None = Field(None, min_length=3, description="The owner's email address.")

    @model_validator(mode="after")
    def _someone(self) -> ExposureOwner:
        if self.name is None and self.email is None:
            raise ValueError("give the owner a name or an email (or both)")
        return self


class DbtExposure(_Frozen):
    """How ``target-sync dbt exposures`` describes this sync to dbt."""

    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The exposure's name in dbt (default: the sync's name, with every "
        "character other than letters, digits and _ replaced by _).",
    )
    owner: ExposureOwner | None = Field(
        None, description="The exposure's owner (default: the command's --owner-* options)."
    )
    description: str | None = Field(
        None, description="The exposure's description (default: which attributes it sends)."
    )
    url: str | None = Field(None, description="A link for dbt docs, e.g. a runbook.")
    maturity: Literal["low", "medium", "high"] | None = Field(
        None, description="dbt's exposure maturity."
    )


class DbtSource(_Frozen):
    """A dbt model, resolved through the project's ``target/manifest.json``.

    The project, profiles folder, profile and target are found as dbt finds them: the keys
    here (dbt's flags), then ``DBT_PROJECT_DIR``, ``DBT_PROFILES_DIR``, ``DBT_PROFILE``,
    ``DBT_TARGET``, then dbt's defaults.
    """

    type: Literal["dbt"] = Field(description="`dbt`: a dbt model, read where dbt built it.")
    project_dir: RelPath | None = Field(
        None,
        description="The dbt project folder (default: $DBT_PROJECT_DIR, else the nearest "
        "folder holding dbt_project.yml from the working directory up, as dbt does).",
    )
    model: str | None = Field(
        None, min_length=1, description="The model: name, package.name or unique id."
    )
    meta: dict[str, MetaValue] | None = Field(
        None,
        min_length=1,
        description="Instead of model: the one model whose meta holds all these entries "
        "(a list value in the model's meta matches any of its items).",
    )
    profiles_dir: RelPath | None = Field(
        None,
        description="The folder of profiles.yml (default: $DBT_PROFILES_DIR, else the working "
        "directory if it has profiles.yml, else ~/.dbt).",
    )
    profile: str | None = Field(
        None, description="The dbt profile (default: $DBT_PROFILE, else dbt_project.yml's)."
    )
    target: str | None = Field(
        None, description="The profile's target (default: $DBT_TARGET, else the profile's)."
    )
    columns: list[str] | None = Field(
        None, description="Read only these columns of the model (default: all)."
    )
    batch_size: int = Field(
        100_000, ge=1_000, le=1_000_000, description="Rows per Arrow batch read from the model."
    )
    allow_failed_build: bool = Field(
        False,
        description="Sync even when dbt's latest run of the model (target/run_results.json) "
        "errored or was skipped, or a test on it failed: the previous table is read.",
    )
    max_age: Duration | None = Field(
        None,
        description="Refuse to sync when the model's last successful build in "
        "target/run_results.json is older than this (e.g. 24h, 90m, 1d12h).",
    )
    exposure: DbtExposure | None = Field(
        None, description="How `target-sync dbt exposures` describes this sync."
    )

    @model_validator(mode="after")
    def _one_model(self) -> DbtSource:
        if (self.model is None) == (self.meta is None):
            raise ValueError("give exactly one of 'model' or 'meta'")
        return self


Source = Annotated[
    DuckDBSource | SnowflakeSource | SqlAlchemySource | DbtSource,
    Field(discriminator="type"),
]


class Identity(_Frozen):
    """The column that identifies the visitor, and which Target id it is."""

    column: str = Field(description="The source column holding the visitor id.")
    type: Literal["thirdPartyId", "pcId"] = Field(
        "thirdPartyId",
        description="`thirdPartyId` (the mbox3rdPartyId; at most 256 characters, no `+` or `/`) "
        "or `pcId` (Target's visitor id).",
    )


def _scalar_text(value: Any) -> Any:
    """A YAML scalar given where text is expected, as the text Target would get for it.

    ``null: 0`` or ``set: {vip: false}`` read as numbers and booleans; they mean ``"0"`` and
    ``"false"`` (the canonical texts of connector/serialize.py). Other types stay as they are
    and fail validation.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value + 0.0)  # -0.0 + 0.0 is 0.0
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _check_sent_text(value: str | None) -> str | None:
    """A value sent as is (a static value, a NULL replacement, an exit value)."""
    if value is None:
        return value
    if value == "":
        raise ValueError("must not be empty: Target ignores empty values")
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"is {len(value)} characters; Target takes at most {MAX_VALUE_CHARS}")
    return value


SentText = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_check_sent_text)]


def _check_attribute_name(name: str) -> str:
    if not name or not name.strip():
        raise ValueError("attribute names must not be empty")
    if len(name) > MAX_ATTRIBUTE_NAME_CHARS:
        raise ValueError(
            f"attribute name '{name[:40]}...' is {len(name)} characters; Target takes at most "
            f"{MAX_ATTRIBUTE_NAME_CHARS}"
        )
    if name != name.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(
            f"attribute name {name!r} has leading or trailing spaces or control characters"
        )
    if name.startswith("profile."):
        raise ValueError(
            f"attribute '{name}': write the plain name without 'profile.' "
            "(Target adds the prefix itself)"
        )
    if name in ("thirdPartyId", "pcId", "mbox3rdPartyId"):
        raise ValueError(f"attribute '{name}' is reserved for the profile id")
    return name


AttributeName = Annotated[str, AfterValidator(_check_attribute_name)]


class Attribute(_Frozen):
    """One Target profile attribute: a column, or a static value.

    ``null`` replaces NULL (and the empty text, which Target ignores too); ``format``
    overrides how the column's type is written (see connector/serialize.py).
    """

    column: str | None = Field(None, min_length=1, description="The source column (or `value`).")
    value: SentText | None = Field(
        None, description="A static value sent for every profile (or `column`)."
    )
    null: SentText | None = Field(
        None,
        description="Sent instead of NULL or empty text (Target ignores empty values, so the "
        "old value would stay).",
    )
    format: str | None = Field(
        None,
        min_length=1,
        description="How the column is written: `json`, `base64`, `hex`, a strftime pattern "
        "(dates, times) or a printf pattern (numbers).",
    )

    @model_validator(mode="after")
    def _column_or_value(self) -> Attribute:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of 'column' or 'value'")
        if self.value is not None and (self.null is not None or self.format is not None):
            raise ValueError("'null' and 'format' apply to a column, not to a static 'value'")
        return self


class RemovedSet(_Frozen):
    """Send these attributes once for profiles that left the result, then forget them."""

    set: dict[AttributeName, SentText] = Field(
        min_length=1,
        description="Attribute: value pairs sent once for each profile that left the result.",
    )


def _removed_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "ignore"
    if isinstance(value, Mapping | RemovedSet):
        return "set"
    return None


OnRemoved = Annotated[
    Annotated[Literal["ignore"], Tag("ignore")] | Annotated[RemovedSet, Tag("set")],
    Discriminator(
        _removed_kind,
        custom_error_type="on_removed",
        custom_error_message="expected 'ignore' or {set: {attribute: value, ...}}",
    ),
]


class TargetConfig(_Frozen):
    """Where and how batches are sent."""

    client_code: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Your Target client code (Administration > Implementation).",
    )
    api_version: Literal[1, 2] = Field(
        2, description="2 creates unknown profiles; 1 updates existing profiles only."
    )
    auth_token: SecretStr | None = Field(
        None,
        description='Bearer token, when "Require Authentication" is on in Target (a secret; '
        "sent to Target's hosts only).",
    )
    base_url: str | None = Field(
        None,
        description="Send here instead of `https://{client_code}.tt.omtrdc.net` (the emulator, "
        "a proxy).",
    )
    allow_insecure_http: bool = Field(
        False,
        description="Allow a plain `http://` `base_url` on a host other than loopback "
        "(profiles and token unencrypted).",
    )
    max_rows_per_batch: int = Field(
        MAX_ROWS_PER_BATCH,
        ge=1,
        le=MAX_ROWS_PER_BATCH,
        description="Profiles per upload, at most Target's 500,000.",
    )
    max_bytes_per_batch: int = Field(
        MAX_BYTES_PER_BATCH,
        ge=1_024,
        le=MAX_BYTES_PER_BATCH,
        description="Bytes per upload, at most 50,000,000 (Target takes under 50 MB).",
    )
    connect_timeout_seconds: float = Field(
        10.0, gt=0, description="Seconds to wait for a connection to Target."
    )
    read_timeout_seconds: float = Field(
        120.0, gt=0, description="Seconds to wait for Target's answer once connected."
    )
    max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="Tries per call when Target is busy (429, 5xx) or unreachable.",
    )
    max_retry_seconds: float = Field(
        900.0, gt=0, description="Give up retrying a call after this many seconds."
    )
    backoff_base_seconds: float = Field(
        1.0, ge=0, description="First wait between tries; doubles each time, with jitter."
    )
    backoff_max_seconds: float = Field(
        60.0, ge=0, description="Longest wait between tries (unless `Retry-After` asks more)."
    )
    calls_per_minute: int = Field(
        40,
        ge=1,
        description="Calls to Target per minute, shared by every sync of this process that "
        "sends to the same Target. At most 50 (Target's limit, shared with its Admin and "
        "Reporting APIs); more only with a `base_url` (an emulator, a proxy).",
    )
    status_deadline_seconds: float = Field(
        120.0,
        ge=0,
        description="How long a run polls batch status; batches still processing are checked "
        "by the next run.",
    )
    status_poll_interval_seconds: float = Field(
        2.0, ge=0, description="Seconds between two rounds of batch status polls."
    )
    max_batches_in_flight: int = Field(
        4,
        ge=1,
        le=9,
        description="Most batches a run leaves unresolved at once: Target keeps the status "
        "of a client's last 10 batches only, shared with its other syncs and tools.",
    )

    @field_validator("base_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must start with http:// or https:// and name a host")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _transport_and_pace(self) -> TargetConfig:
        if self.base_url is not None and not self.allow_insecure_http:
            parts = urlsplit(self.base_url)
            if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
                raise _key_error(
                    "base_url",
                    f"refusing plain http:// to {parts.hostname} (profile data and the token "
                    "would cross the network unencrypted); use https:// or set "
                    "target.allow_insecure_http: true",
                )
        if self.calls_per_minute > TARGET_CALLS_PER_MINUTE and self.base_url is None:
            raise _key_error(
                "calls_per_minute",
                f"is {self.calls_per_minute}, but Target allows {TARGET_CALLS_PER_MINUTE} "
                "calls a minute (shared with its Admin and Reporting APIs); more is only "
                "accepted with a target.base_url (an emulator or a proxy with its own limit)",
            )
        return self


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _key_error(key: str, message: str) -> PydanticCustomError:
    """An error about one key of a section, located at that key by :func:`_describe`."""
    return PydanticCustomError("key", "{message}", {"key": key, "message": message})


class StateConfig(_Frozen):
    """The DuckDB file holding snapshots and run history, and how DuckDB may use the host."""

    path: RelPath = Field(
        Path(DEFAULT_STATE_PATH),
        description="The DuckDB state file (snapshots, run history), relative to the config "
        "file. Configs may share one.",
    )
    # DuckDB's budget; it spills to temp_directory beyond it. A sync's peak RSS stays within
    # it plus ~0.7 GB (source batches, the batch being sent): 1200MB keeps 10M profiles
    # under 2 GB, and holds their diff's hash table without spilling (bench/README.md).
    memory_limit: str | None = Field(
        "1200MB", description="DuckDB's memory budget; beyond it, it spills to `temp_directory`."
    )
    temp_directory: RelPath | None = Field(
        None, description="Where DuckDB spills; next to the state file when unset."
    )
    threads: int | None = Field(None, ge=1, description="DuckDB threads; all cores when unset.")
    keep_runs: int = Field(200, ge=1, description="Runs kept in the history `status` shows.")
    keep_values: bool = Field(
        True,
        description="Keep the attribute values sent in the snapshot; `false` keeps ids and "
        "fingerprints only (plan then shows no old values; see Data at rest).",
    )


def _check_tag(tag: str) -> str:
    # Selection syntax splits on spaces and commas, and ":" introduces a method (tag:daily).
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", tag):
        raise ValueError(
            f"tag {tag!r}: use letters, digits, '_', '.' and '-' only (no spaces, commas or ':')"
        )
    return tag


SyncTag = Annotated[str, AfterValidator(_check_tag)]

NotifyWhen = Literal["failure", "rejects", "failed_rows", "always"]


class NotifyConfig(_Frozen):
    """Where to POST a JSON summary of a run, and after which outcomes.

    ``on``: ``failure`` (the run failed), ``rejects`` (rows were rejected), ``failed_rows``
    (Target reported rows failed, or batches stuck or unreadable), ``always`` (every run).
    Dry runs never notify. The URL is a secret: webhook URLs usually carry a token.
    """

    webhook_url: SecretStr = Field(
        description="URL the JSON run summary is POSTed to (a secret: never logged)."
    )
    on: tuple[NotifyWhen, ...] = Field(
        ("failure", "rejects", "failed_rows"),
        min_length=1,
        description="After which runs: `failure`, `rejects`, `failed_rows`, or `always`.",
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=120, description="Seconds to wait for the webhook."
    )
    allow_insecure_http: bool = Field(
        False,
        description="Allow a plain `http://` webhook on a host other than loopback.",
    )

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true.
        if isinstance(value, Mapping) and True in value and "on" not in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_shape(cls, value: SecretStr) -> SecretStr:
        # Messages never echo the URL: it is a secret.
        url = value.get_secret_value()
        if not re.match(r"^https?://[^/\s]+", url):
            raise ValueError("must start with http:// or https:// and name a host")
        return value

    @model_validator(mode="after")
    def _transport(self) -> NotifyConfig:
        parts = urlsplit(self.webhook_url.get_secret_value())
        if parts.scheme == "http" and not self.allow_insecure_http:
            host = parts.hostname or ""
            if not _is_loopback(host):
                raise ValueError(
                    "webhook_url: refusing plain http:// to a host other than loopback (the "
                    "URL and the run summary would cross the network unencrypted); use "
                    "https:// or set notify.allow_insecure_http: true"
                )
        return self


class SyncConfig(_Frozen):
    """One sync: a query, an identity, a mapping, and where to send it."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$",
        description="Names the sync's snapshot and history: letters, digits, `_`, `.`, `-`.",
    )
    source: Source = Field(description="Where the rows come from; `type` picks the kind.")
    identity: Identity = Field(description="The column that identifies the visitor.")
    attributes: dict[AttributeName, Attribute] = Field(
        min_length=1,
        description="Target attribute name: source column, or the long form below.",
    )
    on_removed: OnRemoved = Field(
        "ignore",
        description="Profiles that left the result: `ignore` (forget them) or "
        "`{set: {...}}` (send those values once).",
    )
    target: TargetConfig = Field(description="Where and how batches are sent.")
    state: StateConfig = Field(
        StateConfig(), description="The state file and how DuckDB may use the host."
    )
    strict: bool = Field(False, description="Fail the run before sending when any row is rejected.")
    max_removed_fraction: float | None = Field(
        DEFAULT_MAX_REMOVED_FRACTION,
        ge=0,
        le=1,
        description="Stop (exit 1) when more than this share of the synced profiles left the "
        "result; `null` turns it off; `--force` overrides.",
    )
    min_rows: int | None = Field(
        None,
        ge=0,
        description="Stop (exit 1) when the source returns fewer rows; `--force` overrides.",
    )
    notify: NotifyConfig | None = Field(
        None, description="A webhook that hears about failed runs and rows left behind."
    )
    tags: tuple[SyncTag, ...] = Field(
        (),
        description="Labels for selecting syncs: `target-sync sync configs/ --select tag:daily`.",
    )
    config_path: Path | None = Field(None, exclude=True)
    # The 1-based line of each key path of the file, for messages (set by parse_config).
    key_lines: dict[tuple[str, ...], int] = Field(default_factory=dict, exclude=True, repr=False)

    @field_validator("attributes", mode="before")
    @classmethod
    def _short_form(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, Mapping):
            return value
        identity = (info.data.get("identity") if info.data else None) or None
        id_column = identity.column if isinstance(identity, Identity) else None
        forms: dict[Any, Any] = {}
        for name, spec in value.items():
            if isinstance(spec, str) and spec == id_column:
                # The id already travels as the key: mapping it again by the short form is
                # usually a copy-paste slip. Writing the long form says it is meant.
                raise _attribute_error(
                    name,
                    f"maps the identity column '{spec}', which is already sent as the key; "
                    f"if you want it as an attribute too, write {name}: {{column: {spec}}}",
                )
            if isinstance(spec, str):
                forms[name] = {"column": spec}
            elif isinstance(spec, Mapping | Attribute):
                forms[name] = spec
            else:
                raise _attribute_error(
                    name,
                    f"got {_yaml_kind(spec)}; expected a column name, "
                    "{column: ..., null: ..., format: ...} or {value: ...}",
                )
        return forms

    @property
    def label(self) -> str:
        """How messages name this sync."""
        return f"sync '{self.name}'"

    def locate(self, *keys: str) -> str:
        """``FILE:LINE: key.path``, for a message about that part of this config.

        The line is the key's own, or its nearest parent's; a config that did not come from
        a file is named by its label.
        """
        path = ".".join(keys)
        if self.config_path is None:
            return f"{self.label}: {path}" if path else self.label
        line = next(
            (
                self.key_lines[keys[:end]]
                for end in range(len(keys), -1, -1)
                if keys[:end] in self.key_lines
            ),
            None,
        )
        where = f"{self.config_path}:{line}" if line else str(self.config_path)
        return f"{where}: {path}" if path else where


def _attribute_error(name: str, message: str) -> PydanticCustomError:
    """An error about one attribute, located at its own key by :func:`_describe`."""
    return PydanticCustomError(
        "attribute", "{message}", {"attribute": str(name), "message": f"'{name}' {message}"}
    )


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


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
        root = yaml.compose(text, Loader=_LOADER)
        raw = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark else str(file)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML ({problem})") from None
    if root is not None:
        _check_duplicate_keys(root, (), file)
    lines = _key_lines(root) if root is not None else {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping of keys (name, source, ...) at the top")
    raw = _substitute(raw, (), environ, file, lines)
    try:
        config = SyncConfig.model_validate(raw, context={"base_dir": file.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, lines)) from None
    config = config.model_copy(update={"config_path": file.resolve(), "key_lines": lines})
    if not isinstance(config.source, DbtSource):
        try:
            config.source.query_text()
        except ConfigError as exc:
            raise ConfigError(f"{_where(file, lines, ('source', 'query_file'))}: {exc}") from None
    return config


def _check_duplicate_keys(node: yaml.Node, path: tuple[str, ...], file: Path) -> None:
    """Fail on a key written twice in one mapping: PyYAML silently keeps the last one."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 1
            if name in seen and name != "<<":
                where = ".".join((*path, name))
                raise ConfigError(
                    f"{file}:{line}: {where}: duplicate key (first on line {seen[name]}); "
                    "YAML would silently keep only the last one, so remove or rename one"
                )
            seen[name] = line
            _check_duplicate_keys(value, (*path, name), file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicate_keys(item, (*path, str(index)), file)


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
        if len(loc) > 1 and loc[0] == "on_removed" and loc[1] in ("ignore", "set"):
            del loc[1]
        if loc and loc[-1] in ("str", "[key]"):
            loc.pop()
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "attribute":
            loc.append(str(error["ctx"]["attribute"]))
            message = str(error["ctx"]["message"])
        elif error["type"] == "key":
            loc.append(str(error["ctx"]["key"]))
            message = str(error["ctx"]["message"])
        elif error["type"] == "literal_error" and loc == ["on_removed"]:
            message = "expected 'ignore' or {set: {attribute: value, ...}}"
        key = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see the README for the keys)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error["type"] == "union_tag_invalid":
            message = "unknown source type; expected one of duckdb, snowflake, sqlalchemy, dbt"
        problems.append(f"{_where(file, lines, tuple(loc))}: {key}: {message}")
    more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
    return "; ".join(problems[:3]) + more
