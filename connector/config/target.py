"""Where a sync's results go: Target's bulk profile API, and the webhook told about runs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ..limits import MAX_BYTES_PER_BATCH, MAX_ROWS_PER_BATCH, TARGET_CALLS_PER_MINUTE
from ..transport import plain_http_problem
from .base import Frozen, key_error


class TargetConfig(Frozen):
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
        if self.base_url is not None:
            problem = plain_http_problem(self.base_url, self.allow_insecure_http)
            if problem is not None:
                raise key_error("base_url", problem)
        if self.calls_per_minute > TARGET_CALLS_PER_MINUTE and self.base_url is None:
            raise key_error(
                "calls_per_minute",
                f"is {self.calls_per_minute}, but Target allows {TARGET_CALLS_PER_MINUTE} "
                "calls a minute (shared with its Admin and Reporting APIs); more is only "
                "accepted with a target.base_url (an emulator or a proxy with its own limit)",
            )
        return self


NotifyWhen = Literal["failure", "rejects", "failed_rows", "always"]


class NotifyConfig(Frozen):
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
        problem = plain_http_problem(
            self.webhook_url.get_secret_value(),
            self.allow_insecure_http,
            traffic="the URL and the run summary",
            setting="notify.allow_insecure_http",
            name_host=False,
        )
        if problem is not None:
            raise ValueError(f"webhook_url: {problem}")
        return self
