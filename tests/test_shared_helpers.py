"""The helpers that have one home each (issue #13): the plain-http check that the config and
the Target client share, the secret masking that the log lines and the webhook payload share,
and the small text helpers of messages. Real configs parsed from YAML, real log formatters."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pytest

from connector.cli.logs import JsonFormatter, TextFormatter
from connector.config import SyncConfig, parse_config
from connector.config.secrets import add_secrets, mask, redact, secret_values
from connector.delivery.urls import status_call_url
from connector.errors import ConfigError
from connector.text import by_reason, first_line
from connector.transport import check_transport, is_loopback, plain_http_problem

CONFIG = """\
name: helpers
source:
  type: sqlalchemy
  url: postgresql+psycopg://analytics:{password}@127.0.0.1/test
  query: select 1 as id
identity:
  column: id
attributes:
  tier: tier
target:
  client_code: demo
{target}
"""


def config_text(password: str = "pw-Helpers-71", target: str = "", notify: str = "") -> str:
    text = CONFIG.format(password=password, target=textwrap.indent(target, "  "))
    return text + notify


def parse(text: str, tmp_path: Path) -> SyncConfig:
    return parse_config(text, tmp_path / "helpers.yaml", {})


# -- transport ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_which_hosts_are_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("url", "allowed", "refused"),
    [
        ("http://10.1.2.3:8080", False, True),
        ("http://target.example.com", False, True),
        ("http://10.1.2.3:8080", True, False),
        ("https://10.1.2.3:8080", False, False),
        ("http://127.0.0.1:8899", False, False),
        ("http://localhost:8899", False, False),
        ("http://[::1]:8899", False, False),
    ],
)
def test_the_config_and_the_client_refuse_the_same_urls_with_the_same_words(
    url: str, allowed: bool, refused: bool, tmp_path: Path
) -> None:
    target = f"base_url: {url}\nallow_insecure_http: {str(allowed).lower()}\n"
    problem = plain_http_problem(url, allowed)
    assert (problem is not None) is refused
    if not refused:
        assert parse(config_text(target=target), tmp_path).target.base_url == url
        check_transport(url, allowed, "sync 'helpers': target.base_url")  # does not raise
        assert status_call_url(url + "/status", allowed).startswith(url.split(":")[0] + ":")
        return
    assert problem is not None
    with pytest.raises(ConfigError) as loading:
        parse(config_text(target=target), tmp_path)
    assert str(loading.value).endswith(f"target.base_url: {problem}")
    with pytest.raises(ConfigError) as sending:
        check_transport(url, allowed, "sync 'helpers': target.base_url")
    assert str(sending.value) == f"sync 'helpers': target.base_url: {problem}"
    # A status URL Target names on such a host is read over https instead.
    assert status_call_url(url + "/status", allowed).startswith("https://")


def test_a_plain_http_webhook_is_refused_without_showing_its_host_or_token(
    tmp_path: Path,
) -> None:
    notify = "notify:\n  webhook_url: http://hooks.example.com/T0ken-Hook-551\n"
    with pytest.raises(ConfigError) as failure:
        parse(config_text(notify=notify), tmp_path)
    message = str(failure.value)
    assert "notify: webhook_url: refusing plain http:// to a host other than loopback" in message
    assert "notify.allow_insecure_http: true" in message
    assert "hooks.example.com" not in message and "T0ken-Hook-551" not in message
    allowed = notify + "  allow_insecure_http: true\n"
    assert parse(config_text(notify=allowed), tmp_path).notify is not None


# -- secrets -----------------------------------------------------------------------------------


def test_secret_values_finds_every_secret_of_a_config_long_enough_to_mask(
    tmp_path: Path,
) -> None:
    hook = "https://hooks.example.com/T0ken-Hook-552"
    text = config_text(
        target="auth_token: Tok-Helpers-9Zq\n",
        notify=f"notify:\n  webhook_url: {hook}\n",
    )
    config = parse(text, tmp_path)
    assert secret_values(config) == {
        "postgresql+psycopg://analytics:pw-Helpers-71@127.0.0.1/test",
        "Tok-Helpers-9Zq",
        hook,
    }
    short = parse(config_text(target="auth_token: abc\n"), tmp_path)
    assert "abc" not in secret_values(short)


def test_mask_reaches_every_text_of_a_payload_and_masks_the_longest_secret_first() -> None:
    secrets = {"s3cr", "s3cret-long"}
    payload = {
        "message": "token s3cret-long and s3cr",
        "runs": [{"text": "s3cret-long!"}, 3, None],
        "count": 7,
        "s3cr": "key names stay",
    }
    assert mask(payload, secrets) == {
        "message": "token *** and ***",
        "runs": [{"text": "***!"}, 3, None],
        "count": 7,
        "s3cr": "key names stay",
    }
    assert mask(payload, set()) is payload


def test_log_lines_mask_registered_secrets_also_in_their_json_escaped_form() -> None:
    secret = 'Quo"ted-sécret-88'
    add_secrets([secret, "ab"])  # "ab" is too short to mask: it would garble every line
    record = logging.LogRecord(
        "connector.test", logging.WARNING, __file__, 1, "sent %s to ab", (secret,), None
    )
    as_json = JsonFormatter().format(record)
    assert json.loads(as_json)["message"] == "sent *** to ab"
    assert secret not in as_json and json.dumps(secret)[1:-1] not in as_json
    assert TextFormatter().format(record) == "WARNING connector.test: sent *** to ab"
    assert redact(f"x {secret} y") == "x *** y"


# -- text --------------------------------------------------------------------------------------


def test_first_line_keeps_what_went_wrong_or_names_the_error() -> None:
    assert first_line(ValueError("Binder Error: no such column\n\nLINE 1: select")) == (
        "Binder Error: no such column"
    )
    assert first_line(ValueError("  \n ")) == "ValueError"
    assert first_line(KeyError()) == "KeyError"


def test_by_reason_lists_counts_in_the_order_of_the_reasons() -> None:
    counts = {"value_too_long": 1200, "empty_id": 3}
    assert by_reason(counts) == "empty_id: 3, value_too_long: 1200"
    assert by_reason(counts, lambda n: f"{n:,}") == "empty_id: 3, value_too_long: 1,200"
    assert by_reason({}) == ""
