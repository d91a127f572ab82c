"""Where calls go and with what: the upload, status and profile URLs of the configured
Target, the refusal of plain http:// to anything but loopback, and the hosts the bearer token
may be sent to (Target's, never another)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

from ..config import TargetConfig
from ..errors import ConfigError
from ..transport import is_loopback, plain_http_refused

# RFC 6750 b64token, loosely: visible ASCII only (no space, line break or control character).
_TOKEN = re.compile(r"[\x21-\x7e]+")


# Target's hosts: the upload host {client}.tt.omtrdc.net and the edge hosts its answers name.
TARGET_DOMAIN = "tt.omtrdc.net"


def base_url(config: TargetConfig) -> str:
    """The configured base URL, or Target's own host for the client code."""
    return config.base_url or f"https://{config.client_code}.{TARGET_DOMAIN}"


def _client_root(config: TargetConfig) -> str:
    return f"{base_url(config)}/m2/{config.client_code}"


def destination(config: TargetConfig) -> str:
    """What identifies one Target account for pacing: the base URL and the client code."""
    return _client_root(config)


def _origin(url: str) -> tuple[str, int | None]:
    """(host, port) of a URL, the port made explicit for http and https."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port or default


def token_allowed(config: TargetConfig, url: str) -> bool:
    """Whether a request to ``url`` may carry the bearer token.

    Only Target's hosts may: the host (and port) of the configured base URL, which is the
    upload host, and Target's edge hosts, any name under ``tt.omtrdc.net`` (matched on a
    dot boundary, so ``eviltt.omtrdc.net.example`` and ``xtt.omtrdc.net`` do not match).
    """
    host, port = _origin(url)
    if not host:
        return False
    base_host, base_port = _origin(base_url(config))
    if port == base_port and (host == base_host or (is_loopback(host) and is_loopback(base_host))):
        return True  # (localhost and 127.0.0.1 are the same machine)
    return host == TARGET_DOMAIN or host.endswith("." + TARGET_DOMAIN)


def upload_url(config: TargetConfig) -> str:
    """The batchUpdate URL for the configured client and API version."""
    path = "v2/profile/batchUpdate" if config.api_version == 2 else "profile/batchUpdate"
    return f"{_client_root(config)}/{path}"


def batch_status_url(config: TargetConfig) -> str:
    """The batchStatus URL on the upload host (``validate`` probes it for reachability)."""
    return f"{_client_root(config)}/profile/batchStatus"


def profile_url(config: TargetConfig, id_type: str, profile_id: str) -> str:
    """The profile API URL that reads one profile back (``?client=`` is added per call)."""
    quoted = quote(profile_id, safe="")
    if id_type == "thirdPartyId":
        return f"{base_url(config)}/rest/v1/profiles/thirdPartyId/{quoted}"
    return f"{base_url(config)}/rest/v1/profiles/{quoted}"


def status_call_url(status_url: str, allow_insecure_http: bool) -> str:
    """The URL to GET for a batch's status: the ``batchStatus`` URL Target gave, with
    ``showDetails=true``.

    Target's answers name an edge host with ``http://`` (so does its documentation); HTTPS
    works on the same host, so a plain-http URL to anything but loopback is read over
    ``https://`` unless ``allow_insecure_http`` is set.
    """
    parts = urlsplit(status_url)
    if plain_http_refused(status_url, allow_insecure_http):
        parts = parts._replace(scheme="https")
    query = f"{parts.query}&showDetails=true" if parts.query else "showDetails=true"
    return urlunsplit(parts._replace(query=query))


def bearer_token(config: TargetConfig, label: str) -> str | None:
    """The configured token, stripped of surrounding whitespace (a secret read from a file
    often ends in a newline); None when none is configured or it is empty.

    Raises ConfigError, without showing the value, when the token holds characters an HTTP
    header cannot carry.
    """
    if config.auth_token is None:
        return None
    token = config.auth_token.get_secret_value().strip()
    if not token:
        return None
    if not _TOKEN.fullmatch(token):
        raise ConfigError(
            f"{label}: target.auth_token holds spaces, line breaks or non-ASCII characters "
            f"({len(token)} characters; the value is not shown); copy the token again from "
            "Target (Administration > Implementation > Profile API)"
        )
    return token
