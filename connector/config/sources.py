"""Where a sync's rows come from: one model per ``source.type``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from ..errors import ConfigError
from .base import Frozen, RelPath


class _QuerySource(Frozen):
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
    reader: Literal["auto", "adbc", "sqlalchemy"] = Field(
        "auto",
        description="How rows are read. `auto`: PostgreSQL through ADBC's binary COPY straight "
        "into Arrow when `adbc-driver-postgresql` is installed (the `postgres` extra) and it "
        "reads every column's type exactly, else through SQLAlchemy; `adbc`: ADBC or fail; "
        "`sqlalchemy`: always SQLAlchemy. The bytes sent to Target are the same either way.",
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


class ExposureOwner(Frozen):
    """Who owns a sync, as dbt's exposures name an owner (name, email or both)."""

    name: str | None = Field(None, min_length=1, description="The owner's name.")
    email: str | None = Field(None, min_length=3, description="The owner's email address.")

    @model_validator(mode="after")
    def _someone(self) -> ExposureOwner:
        if self.name is None and self.email is None:
            raise ValueError("give the owner a name or an email (or both)")
        return self


class DbtExposure(Frozen):
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


class DbtSource(Frozen):
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
