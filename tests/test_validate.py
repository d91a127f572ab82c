"""`validate` asks Target, with the configured client code and token, whether a sync would
get through, and tells each failure apart (issue #12), against the emulator over real HTTP.
Nothing is uploaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import connector
from connector.emulator import Emulator

from .conftest import CUSTOMERS, ConfigWriter, run_cli
from .servers import closed_port

TOKEN = "tok-valid-4kq9Z"


@pytest.fixture
def configured(
    warehouse: Callable[[str], Path], write_config: ConfigWriter, emulator: Emulator
) -> Callable[..., Path]:
    warehouse(CUSTOMERS.format(n=3))

    def write(**target: Any) -> Path:
        return write_config(emulator=emulator, target=target)

    return write


CASES: dict[str, tuple[dict[str, Any], str | None, int, str, str]] = {
    # case: (target settings, token Target requires, exit code, check, words of the message)
    "accepted": ({}, None, 0, "accepted", "client code 'demo' known, no token needed"),
    "accepted_with_token": (
        {"auth_token": TOKEN},
        TOKEN,
        0,
        "accepted",
        "client code 'demo' known, the token accepted",
    ),
    "wrong_client_code": (
        {"client_code": "acme"},
        None,
        1,
        "wrong_client_code",
        "Target does not know client code 'acme' (HTTP 404",
    ),
    "token_missing": ({}, TOKEN, 1, "token_missing", "requires a bearer token (HTTP 401)"),
    "token_refused": (
        {"auth_token": "tok-expired-000"},
        TOKEN,
        1,
        "token_refused",
        "refused the configured token (HTTP 401)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_tells_each_answer_apart(
    configured: Callable[..., Path], emulator: Emulator, case: str
) -> None:
    target, required, code, check, words = CASES[case]
    emulator.faults.required_token = required
    config = configured(**target)

    cli = run_cli("validate", config, "--json")
    assert cli.returncode == code, cli.stderr
    report = json.loads(cli.stdout)
    assert report["exit_code"] == code
    assert report["target"]["check"] == check
    assert report["target"]["ok"] is (code == 0)
    assert words in report["target"]["status"]

    text = run_cli("validate", config)
    assert text.returncode == code
    assert ("OK: " if code == 0 else "FAILED: ") + report["target"]["status"] in text.stdout
    if code:
        errors = [line for line in text.stderr.splitlines() if line.startswith("error: ")]
        assert errors == [
            f"error: sync 'test_sync': Target check failed: {report['target']['status']}; "
            "a sync would fail"
        ]
    assert "Traceback" not in text.stderr
    for output in (cli.stdout, cli.stderr, text.stdout, text.stderr):
        assert TOKEN not in output and "tok-expired-000" not in output
    assert emulator.upload_count == 0 and emulator.profiles() == {}  # validate uploads nothing


def test_validate_says_when_a_sync_would_fail_the_same_way(
    configured: Callable[..., Path], emulator: Emulator
) -> None:
    """What validate calls a failure is what a sync then meets."""
    emulator.faults.required_token = TOKEN
    for target, check in (
        ({"client_code": "acme"}, "wrong_client_code"),
        ({"auth_token": "tok-expired-000"}, "token_refused"),
        ({"auth_token": TOKEN}, "accepted"),
    ):
        config = configured(**target)
        assert connector.validate(config)["target"]["check"] == check
        try:
            result = connector.sync(config)
        except connector.TargetError:
            assert check != "accepted"
        else:
            assert check == "accepted" and result.exit_code == 0


def test_validate_reports_an_unreachable_target_with_exit_1(
    warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=3))
    config = write_config(target={"base_url": f"http://127.0.0.1:{closed_port()}"})
    cli = run_cli("validate", config, "--json")
    assert cli.returncode == 1
    target = json.loads(cli.stdout)["target"]
    assert target["check"] == "unreachable" and target["ok"] is False
    assert "connection refused" in target["status"]
    assert target["status"].startswith("unreachable (sync 'test_sync': the Target check failed")


def test_validate_reports_a_busy_target_as_unconfirmed(
    configured: Callable[..., Path], emulator: Emulator
) -> None:
    emulator.faults.rate_limit_per_minute = 0  # every call answered 503
    report = connector.validate(configured())
    assert report["exit_code"] == 1
    assert report["target"]["check"] == "busy"
    assert "stayed busy (HTTP 503) through 3 attempt(s)" in report["target"]["status"]
    assert emulator.calls == 3


@pytest.mark.parametrize(
    ("answer", "check"),
    [
        # Some Targets answer an unknown batch with 404 naming it: the client is known.
        (b'{"status": 404, "message": "batch target-sync-validate not found"}', "accepted"),
        (b"<response><status>unknown</status></response>", "accepted"),
        (b"Not Found", "wrong_client_code"),
    ],
)
def test_a_404_is_told_apart_by_what_it_says(answer: bytes, check: str) -> None:
    from connector.config import TargetConfig
    from connector.delivery.client import TargetClient

    from .test_network import RawServer

    def reply(index: int, request: bytes, conn: Any) -> None:
        conn.sendall(
            b"HTTP/1.1 404 Not Found\r\n"
            + f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
            + answer
        )

    server = RawServer(reply)
    try:
        client = TargetClient(TargetConfig(client_code="demo", base_url=server.base_url), "t")
        assert client.probe().check == check
        client.close()
    finally:
        server.close()
    assert b"GET /m2/demo/profile/batchStatus?batchId=target-sync-validate " in server.requests[0]
