"""Secret masking: a config's secret values never show in a log line or a webhook payload.

Configs hold secrets (tokens, passwords, URLs that carry them) as ``SecretStr``, whose repr
is ``**********``. As a last line of defence, text leaving the process has every secret value
of the configs being run replaced by ``***``: each log line (the CLI registers each config's
secrets with :func:`add_secrets`; the formatters call :func:`redact`) and the run summary
POSTed to a webhook (:func:`mask`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "***"
# Shorter secret values are not masked (masking "ab" everywhere would garble every line).
MIN_MASKED_CHARS = 4

# The secrets of every config this process has loaded: masked in each log line.
_registered: set[str] = set()


def secret_values(model: BaseModel) -> set[str]:
    """Every secret value held anywhere in a config model that is long enough to mask."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if len(secret) >= MIN_MASKED_CHARS:
                found.add(secret)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple | set | frozenset):
            for item in value:
                walk(item)

    walk(model)
    return found


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    # Longest first: a secret that contains another is masked whole.
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def mask(value: Any, secrets: Collection[str]) -> Any:
    """``value`` with every secret replaced by ``***``: a text, or each text held in the
    dicts and lists of a JSON-like value (its keys and other values stay as they are)."""
    if not secrets:
        return value
    if isinstance(value, str):
        return mask_text(value, secrets)
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v, secrets) for v in value]
    return value


def add_secrets(values: Iterable[str]) -> None:
    """Mask these values in every log line from now on."""
    for value in values:
        if len(value) >= MIN_MASKED_CHARS:
            _registered.add(value)
            # The form json.dumps writes for it, when that differs (quotes, non-ASCII, ...).
            _registered.add(json.dumps(value)[1:-1])


def redact(text: str) -> str:
    """``text`` with every secret registered by :func:`add_secrets` replaced by ``***``."""
    return mask_text(text, _registered)
