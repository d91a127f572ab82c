"""Which URLs may be reached over plain ``http://``: loopback only, unless a config allows it.

Profile data, Target's bearer token and webhook URLs (which usually carry a token) must not
cross a network unencrypted. A plain-http URL is accepted when its host is this machine (the
emulator, a local proxy) or when the config says ``allow_insecure_http: true``; the config
refuses any other when it is loaded, and the Target client checks again before it sends.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .errors import ConfigError

# What would cross the network, and the setting that allows it, for Target's base URL.
TARGET_TRAFFIC = "profile data and the token"
TARGET_SETTING = "target.allow_insecure_http"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host name, or an IP address) is this machine."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_refused(url: str, allow_insecure_http: bool) -> bool:
    """Whether ``url`` is plain ``http://`` to a host other than loopback, and not allowed."""
    parts = urlsplit(url)
    return (
        parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname or "")
    )


def plain_http_problem(
    url: str,
    allow_insecure_http: bool,
    *,
    traffic: str = TARGET_TRAFFIC,
    setting: str = TARGET_SETTING,
    name_host: bool = True,
) -> str | None:
    """Why ``url`` may not be used, or None when it may.

    ``traffic`` says what would cross the network unencrypted and ``setting`` which config
    key allows it; ``name_host=False`` leaves the host out (a secret URL's host is not shown
    in a config error).
    """
    if not plain_http_refused(url, allow_insecure_http):
        return None
    host = urlsplit(url).hostname if name_host else "a host other than loopback"
    return (
        f"refusing plain http:// to {host} ({traffic} would cross the network unencrypted); "
        f"use https:// or set {setting}: true"
    )


def check_transport(url: str, allow_insecure_http: bool, where: str) -> None:
    """Refuse plain http:// to anything but loopback unless explicitly allowed."""
    problem = plain_http_problem(url, allow_insecure_http)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
