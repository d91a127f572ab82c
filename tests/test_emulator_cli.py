"""`target-sync emulator` as a user runs it (issue #12): it says where it listens, prints a
line per request, and a port in use is one clear line. Also the emulator's silent-loss knob.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator

import pytest
import requests

from connector.emulator import Emulator, Faults

from .conftest import CLI, run_cli

URL_LINE = re.compile(
    r"^Target emulator for client 'demo' listening on (http://127\.0\.0\.1:(\d+)) "
    r"\(Ctrl\+C to stop\)$"
)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*CLI, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[str], str, int]]:
    """`target-sync emulator --port 0` in a subprocess: (process, base URL, port)."""
    process = start("emulator", "--port", "0")
    try:
        assert process.stdout is not None
        line = process.stdout.readline().rstrip("\n")
        match = URL_LINE.match(line)
        assert match, (line, process.stderr.read() if process.poll() is not None else "")
        yield process, match.group(1), int(match.group(2))
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return out, err


def test_the_emulator_prints_its_url_with_the_actual_port_and_a_line_per_request(
    running: tuple[subprocess.Popen[str], str, int],
) -> None:
    process, url, port = running
    assert port > 0
    body = b"batch=thirdPartyId,tier\nc1,gold\n"
    upload = requests.post(
        f"{url}/m2/demo/v2/profile/batchUpdate",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Bearer tok-never-printed",
        },
        timeout=10,
    )
    assert upload.status_code == 200
    read = requests.get(f"{url}/rest/v1/profiles/thirdPartyId/c1?client=demo", timeout=10)
    assert read.json()["profileAttributes"]["tier"]["value"] == "gold"
    missing = requests.get(f"{url}/rest/v1/profiles/thirdPartyId/nobody?client=demo", timeout=10)
    assert missing.status_code == 404

    out, err = stop(process)
    assert process.returncode == 0
    assert out == ""  # the URL line was the only stdout line (read by the fixture)
    requests_seen = [line for line in err.splitlines() if " -> " in line]
    assert len(requests_seen) == 3
    assert re.match(
        r"^\d\d:\d\d:\d\d POST /m2/demo/v2/profile/batchUpdate -> 200 \(demo-\d+-1 rows=1 ",
        requests_seen[0],
    )
    assert re.match(
        r"^\d\d:\d\d:\d\d GET /rest/v1/profiles/thirdPartyId/c1\?client=demo -> 200$",
        requests_seen[1],
    )
    assert requests_seen[2].endswith("/thirdPartyId/nobody?client=demo -> 404 (not found)")
    assert "tok-never-printed" not in err
    assert "Traceback" not in err


def test_under_json_logs_every_stderr_line_is_an_object() -> None:
    process = start("--log-format", "json", "emulator", "--port", "0")
    assert process.stdout is not None
    match = URL_LINE.match(process.stdout.readline().rstrip("\n"))
    assert match
    requests.get(f"{match.group(1)}/rest/v1/profiles/thirdPartyId/x?client=demo", timeout=10)
    _, err = stop(process)
    lines = [json.loads(line) for line in err.splitlines()]
    assert [line["message"] for line in lines if " -> " in line["message"]] == [
        "GET /rest/v1/profiles/thirdPartyId/x?client=demo -> 404 (not found)"
    ]
    assert {line["logger"] for line in lines} <= {"connector.emulator.server"}


def test_a_port_in_use_is_one_line_and_exit_1(
    running: tuple[subprocess.Popen[str], str, int],
) -> None:
    _, _, port = running
    second = run_cli("emulator", "--port", str(port), timeout=60)
    assert second.returncode == 1
    assert second.stdout == ""
    assert second.stderr.splitlines() == [
        f"error: the emulator cannot listen on 127.0.0.1:{port}: the port is in use; another "
        "program uses it (another emulator?); choose another --port, or --port 0"
    ]
    as_json = run_cli("--log-format", "json", "emulator", "--port", str(port), timeout=60)
    assert as_json.returncode == 1
    [event] = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert event["event"] == "error" and event["exit_code"] == 1
    assert "the port is in use" in event["message"]


# -- the silent-loss knob ----------------------------------------------------------------------


def upload(emulator: Emulator, ids: range) -> requests.Response:
    body = "batch=thirdPartyId,tier\n" + "".join(f"c{i},gold\n" for i in ids)
    return requests.post(
        emulator.upload_url(),
        data=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )


def status_counts(emulator: Emulator, answer: requests.Response) -> str:
    url = re.search(r"<batchStatus>(.*)</batchStatus>", answer.text)
    assert url
    return requests.get(url.group(1) + "&showDetails=true", timeout=10).text


def test_lose_fraction_reports_rows_successful_but_does_not_apply_them() -> None:
    with Emulator(faults=Faults(lose_fraction=0.01, seed=7)) as emulator:
        answer = upload(emulator, range(20_000))
        status = status_counts(emulator, answer)
        [record] = emulator.uploads
        lost = record.lost_ids
        # About 1%, and exactly the rows missing from Target.
        assert 140 < len(lost) < 260
        assert set(emulator.profiles()) == {f"c{i}" for i in range(20_000)} - set(lost)
        assert "<successfulUpdates>20000</successfulUpdates>" in status  # reported applied
        assert "<failedUpdates>0</failedUpdates>" in status

    with Emulator(faults=Faults(lose_fraction=0.01, seed=7)) as again:
        upload(again, range(20_000))
        assert again.uploads[0].lost_ids == lost  # the seed makes the losses reproducible


def test_lose_fraction_is_a_fault_switch_over_http(emulator: Emulator) -> None:
    answer = requests.post(
        f"{emulator.base_url}/_emulator/faults", json={"lose_fraction": 1.0}, timeout=10
    )
    assert answer.json()["lose_fraction"] == 1.0
    upload(emulator, range(5))
    assert emulator.profiles() == {}
    bad = requests.post(
        f"{emulator.base_url}/_emulator/faults", json={"lose_fraction": 2}, timeout=10
    )
    assert bad.status_code == 400 and "between 0 and 1" in bad.json()["error"]
