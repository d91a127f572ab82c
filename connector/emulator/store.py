"""In-memory visitor profiles of the Target emulator.

Profiles are kept per id type (``thirdPartyId`` or ``pcId``), then per id, each holding its
attributes as ``name -> (value, modified_ms)``. v2 uploads create unknown profiles; v1 uploads
update existing profiles only and count the others as "not found". Empty values never reach
the store (the batch parser drops them), so nothing ever clears an attribute, as in Target.

A ``thirdPartyId`` profile gets a stable, made-up ``tntId`` (derived from its id, so nothing
extra is stored); a ``pcId`` profile's ``tntId`` is its pcId. ``/rest/v1/profiles/{tntId}``
reads ``pcId`` profiles only. The store is not thread-safe: the emulator calls it under its lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .batchfile import ID_TYPES

__all__ = ["Profile", "ProfileStore", "format_millis", "tnt_id_for"]


def format_millis(millis: int) -> str:
    """``2026-01-01T10:00:00.000Z`` for a Unix time in milliseconds."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def tnt_id_for(third_party_id: str) -> str:
    """A stable tntId-shaped id for a thirdPartyId profile (uuid-like, edge suffix ``.37_0``)."""
    digest = hashlib.sha1(third_party_id.encode("utf-8")).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}.37_0"


class Profile:
    """One visitor profile: attributes with their modification times."""

    __slots__ = ("attributes", "modified_ms")

    def __init__(self, modified_ms: int) -> None:
        self.attributes: dict[str, tuple[str, int]] = {}
        self.modified_ms = modified_ms

    def set(self, values: Mapping[str, str], now_ms: int) -> None:
        """Overwrite the given attributes; attributes not mentioned keep their value."""
        for name, value in values.items():
            self.attributes[name] = (value, now_ms)
        self.modified_ms = now_ms

    def values(self) -> dict[str, str]:
        """``{name: value}`` (a new dict)."""
        return {name: value for name, (value, _) in self.attributes.items()}


class ProfileStore:
    """Profiles by id type, then id."""

    def __init__(self) -> None:
        self._profiles: dict[str, dict[str, Profile]] = {id_type: {} for id_type in ID_TYPES}

    def clear(self) -> None:
        """Forget every profile."""
        for profiles in self._profiles.values():
            profiles.clear()

    def count(self, id_type: str) -> int:
        """Number of profiles of ``id_type``."""
        return len(self._profiles[id_type])

    def get(self, id_type: str, profile_id: str) -> Profile | None:
        """The profile, or None."""
        return self._profiles[id_type].get(profile_id)

    def put(self, id_type: str, profile_id: str, values: Mapping[str, str], now_ms: int) -> None:
        """Create or update one profile directly (test seeding); empty values are ignored."""
        profile = self._profiles[id_type].get(profile_id)
        if profile is None:
            profile = self._profiles[id_type][profile_id] = Profile(now_ms)
        profile.set({k: v for k, v in values.items() if v}, now_ms)

    def apply(
        self,
        id_type: str,
        updates: Iterable[tuple[str, Mapping[str, str]]],
        *,
        create: bool,
        now_ms: int,
    ) -> tuple[int, int]:
        """Apply ``(id, values)`` rows; return ``(updated, not_found)``.

        With ``create`` (v2) unknown ids become new profiles; without it (v1) they are only
        counted as not found.
        """
        profiles = self._profiles[id_type]
        updated = not_found = 0
        for profile_id, values in updates:
            profile = profiles.get(profile_id)
            if profile is None:
                if not create:
                    not_found += 1
                    continue
                profile = profiles[profile_id] = Profile(now_ms)
            profile.set(values, now_ms)
            updated += 1
        return updated, not_found

    def dump(self, id_type: str) -> dict[str, dict[str, str]]:
        """A copy of every profile of ``id_type``: ``id -> {name: value}``."""
        return {pid: profile.values() for pid, profile in self._profiles[id_type].items()}

    def to_api_json(self, id_type: str, profile_id: str, client_code: str) -> dict[str, Any] | None:
        """The profile as ``GET /rest/v1/profiles/...`` returns it, or None when unknown."""
        profile = self._profiles[id_type].get(profile_id)
        if profile is None:
            return None
        if id_type == "thirdPartyId":
            visitor = {"tntId": tnt_id_for(profile_id), "thirdPartyId": profile_id}
        else:
            visitor = {"tntId": profile_id}
        return {
            "client": client_code,
            "visitorId": visitor,
            "modifiedAt": format_millis(profile.modified_ms),
            "profileAttributes": {
                name: {"value": value, "modifiedAt": format_millis(ms)}
                for name, (value, ms) in profile.attributes.items()
            },
        }
