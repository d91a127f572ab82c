"""What shapes a profile's text, as a digest and a description: the mapping signature is part
of every fingerprint (see :mod:`connector.mapping.binding`)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import Attribute, SyncConfig


# Bump when any rule above changes: it is part of every fingerprint, so a new rule resends
# every profile once instead of silently keeping old texts in Target.
#   1  first release
#   2  expanded years, nanoseconds, fractions of times, half floats, decimal256, negative
#      scales, uuid/json extensions, exact %.Nf, null: also replaces the empty text
SERIALIZATION_VERSION = 2


def mapping_signature(config: SyncConfig) -> str:
    """A short digest of everything that shapes a profile's text, but not of the data.

    Part of every fingerprint: changing an attribute, its null/format rule, the identity
    type or the serialization rules changes every fingerprint, so every profile is resent.
    """
    described = {
        "serialization": SERIALIZATION_VERSION,
        "identity": config.identity.type,
        "attributes": [[name, _describe(spec)] for name, spec in config.attributes.items()],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def mapping_description(config: SyncConfig) -> dict[str, object]:
    """The mapping in a JSON-able form, kept with the snapshot to explain full resends."""
    return {
        "identity": config.identity.type,
        "attributes": {name: _describe(spec) for name, spec in config.attributes.items()},
        "serialization": SERIALIZATION_VERSION,
    }


def _describe(spec: Attribute) -> dict[str, str]:
    return {k: v for k, v in spec.model_dump().items() if v is not None}
