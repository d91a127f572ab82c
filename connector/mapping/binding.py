"""What a snapshot row is bound to: the mapping it was sent with and the Target it went to.

A snapshot records what one Target holds under one mapping. Its binding signature is part of
every fingerprint, so changing the mapping (attributes, their rules, the identity type, the
serialization rules) or the destination (client code, API version, base URL) makes every
profile differ from what was sent, and the next run resends them all; :func:`describe_change`
says why, for ``plan`` and the run summary.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from .signature import mapping_description, mapping_signature

if TYPE_CHECKING:
    from ..config import SyncConfig


def destination(config: SyncConfig) -> dict[str, Any]:
    """The Target a sync writes to, as recorded with the snapshot."""
    target = config.target
    base_url = (target.base_url or f"https://{target.client_code}.tt.omtrdc.net").rstrip("/")
    scheme, _, rest = base_url.partition("://")
    host, slash, path = rest.partition("/")
    return {
        "client_code": target.client_code,
        "api_version": target.api_version,
        "base_url": f"{scheme.lower()}://{host.lower()}{slash}{path}",
    }


def binding_signature(config: SyncConfig) -> str:
    """A short digest of the mapping and the destination (not of the data)."""
    described = {"mapping": mapping_signature(config), "destination": destination(config)}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def describe_change(
    old_mapping: dict[str, Any],
    old_destination: dict[str, Any] | None,
    config: SyncConfig,
) -> str:
    """Why profiles sent under another binding are resent, in words."""
    notes, lost = _mapping_notes(old_mapping, mapping_description(config))
    new_destination = destination(config)
    if old_destination is not None and old_destination != new_destination:
        names = {"client_code": "client code", "api_version": "API version", "base_url": "URL"}
        moved = [
            f"{names[key]} {old_destination.get(key)} → {new_destination[key]}"
            for key in names
            if old_destination.get(key) != new_destination[key]
        ]
        notes.append("destination changed (" + "; ".join(moved) + ")")
    kept = "; Target keeps the values of attributes no longer sent" if lost else ""
    what = "; ".join(notes) or "mapping or destination changed"
    return f"{what}: every profile is resent with the new attribute set{kept}"


def _mapping_notes(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], bool]:
    """What changed in the mapping, and whether attributes stopped being sent."""
    old_attrs = old.get("attributes", {})
    new_attrs = new.get("attributes", {})
    assert isinstance(old_attrs, dict) and isinstance(new_attrs, dict)
    changes = []
    added = [n for n in new_attrs if n not in old_attrs]
    dropped = [n for n in old_attrs if n not in new_attrs]
    # An attribute that left and one that came with the very same rule: a rename.
    renamed = []
    for name in list(dropped):
        twin = next((n for n in added if new_attrs[n] == old_attrs[name]), None)
        if twin is not None:
            renamed.append(f"{name} → {twin}")
            dropped.remove(name)
            added.remove(twin)
    if renamed:
        changes.append("renamed " + ", ".join(renamed))
    if added:
        changes.append("added " + ", ".join(added))
    if dropped:
        changes.append("removed " + ", ".join(dropped))
    for name in new_attrs:
        if name in old_attrs and old_attrs[name] != new_attrs[name]:
            before, after = old_attrs[name], new_attrs[name]
            assert isinstance(before, dict) and isinstance(after, dict)
            rules = [
                f"{key} {_rule(before.get(key))} → {_rule(after.get(key))}"
                for key in dict.fromkeys([*before, *after])
                if before.get(key) != after.get(key)
            ]
            changes.append(f"changed {name} ({', '.join(rules)})")
    if not changes and list(old_attrs) != list(new_attrs):
        changes.append("reordered attributes")
    if old.get("identity") != new.get("identity"):
        changes.append(f"identity type {old.get('identity')} → {new.get('identity')}")
    if old.get("serialization") != new.get("serialization"):
        changes.append(
            f"serialization rules changed with this version ({old.get('serialization')} → "
            f"{new.get('serialization')})"
        )
    if changes:
        changes[0] = "mapping changed (" + changes[0]
        changes[-1] += ")"
    return changes, bool(renamed or dropped)


def _rule(value: object) -> str:
    return "(none)" if value is None else repr(value)
