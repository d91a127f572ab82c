"""The sync config: one frozen pydantic model per section, :class:`SyncConfig` at the top.

The sections of ``source`` are in :mod:`.sources`, ``target`` and ``notify`` in
:mod:`.target`; :mod:`.load` reads a YAML file into a :class:`SyncConfig`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ..limits import MAX_ATTRIBUTE_NAME_CHARS, MAX_VALUE_CHARS
from .base import Frozen, RelPath, attribute_error
from .sources import Source
from .target import NotifyConfig, TargetConfig

DEFAULT_STATE_PATH = ".target-sync/state.duckdb"
# Stop a run that would drop more than this share of the synced profiles (a broken upstream
# model looks like that); `max_removed_fraction: null` turns the guardrail off.
DEFAULT_MAX_REMOVED_FRACTION = 0.5


class Identity(Frozen):
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


class Attribute(Frozen):
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


class RemovedSet(Frozen):
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


class StateConfig(Frozen):
    """The DuckDB file holding snapshots and run history, and how DuckDB may use the host."""

    path: RelPath = Field(
        Path(DEFAULT_STATE_PATH),
        validate_default=True,  # the default is resolved next to the config file too
        description="The DuckDB state file (snapshots, run history), relative to the config "
        "file. Configs may share one.",
    )
    # DuckDB's budget; it spills to temp_directory beyond it. A sync's peak RSS stays within
    # it plus ~0.35 GB (the source's batches; the batch being sent is lent out of the budget
    # while batches are cut): 1200MB keeps 10M profiles at about 1.5 GB, and holds their
    # diff's hash table without spilling (bench/README.md).
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


class SyncConfig(Frozen):
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
    # Validated from {} (with the loader's context) so that the default path is resolved.
    state: StateConfig = Field(
        default_factory=dict,
        validate_default=True,
        description="The state file and how DuckDB may use the host.",
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
                raise attribute_error(
                    name,
                    f"maps the identity column '{spec}', which is already sent as the key; "
                    f"if you want it as an attribute too, write {name}: {{column: {spec}}}",
                )
            if isinstance(spec, str):
                forms[name] = {"column": spec}
            elif isinstance(spec, Mapping | Attribute):
                forms[name] = spec
            else:
                raise attribute_error(
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
