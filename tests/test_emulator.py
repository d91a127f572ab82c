"""The Target emulator over real HTTP (requests against an in-process server, no mocks)."""

from __future__ import annotations

import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.message import Message
from urllib.parse import quote

import pytest
import requests

from bench.emulator import CountingStore, skim_batch
from connector.emulator import Emulator, Faults, UploadRecord, serve_forever
from connector.emulator.app import Request, TargetApp

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(client_code="demo") as emulator:
        yield emulator


def upload(
    emulator: Emulator,
    body: bytes | str,
    *,
    version: int = 2,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> requests.Response:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return requests.post(
        emulator.upload_url(version), data=data, headers=headers or FORM, timeout=timeout
    )


def xml(response: requests.Response) -> ET.Element:
    return ET.fromstring(response.content)


def accepted(response: requests.Response) -> str:
    """Assert an upload was accepted; return its batchStatus URL."""
    assert response.status_code == 200, response.text
    root = xml(response)
    assert root.findtext("success") == "true", response.text
    assert root.findtext("message") == "Batch submitted for processing"
    url = root.findtext("batchStatus")
    assert url
    return url


def rejected(response: requests.Response) -> str:
    """Assert an upload got HTTP 200 success=false with an empty batchStatus; return message."""
    assert response.status_code == 200, response.text
    root = xml(response)
    assert root.findtext("success") == "false", response.text
    status = root.find("batchStatus")
    assert status is not None and not status.text
    message = root.findtext("message")
    assert message
    return message


def status(url: str, details: bool = True, headers: dict[str, str] | None = None) -> ET.Element:
    response = requests.get(
        url + ("&showDetails=true" if details else ""), headers=headers, timeout=10
    )
    assert response.status_code == 200, response.text
    return ET.fromstring(response.content)


def read_profile(emulator: Emulator, profile_id: str) -> requests.Response:
    return requests.get(
        f"{emulator.base_url}/rest/v1/profiles/thirdPartyId/{quote(profile_id, safe='')}",
        params={"client": emulator.client_code},
        timeout=10,
    )


# -- uploads and decoding ---------------------------------------------------------------------


def test_upload_answer_and_status_url_shape(emu: Emulator) -> None:
    url = accepted(upload(emu, "batch=thirdPartyId,tier\ncust-1,gold\n"))
    prefix = f"http://127.0.0.1:{emu.port}/m2/demo/profile/batchStatus?batchId=demo-"
    assert url.startswith(prefix)
    millis, seq = url[len(prefix) :].split("-")
    assert abs(int(millis) - time.time() * 1000) < 60_000
    assert seq.isdigit()
    record = emu.uploads[-1]
    assert record.batch_id == url.split("batchId=")[1]
    assert record.api_version == 2 and record.success and record.http_status == 200


def test_v2_creates_profiles_and_read_back_returns_exact_decoded_values(emu: Emulator) -> None:
    body = (
        "batch=thirdPartyId,note,city,loyaltyTier\n"
        "cust-1,a%2Cb%0Ac%25d%26e%2Bf%3Dg%20h,S%C3%A3o%20Paulo,gold\n"
        "cust-2,plain,Berlin,silver\n"
    )
    url = accepted(upload(emu, body))
    assert emu.profiles() == {
        "cust-1": {"note": "a,b\nc%d&e+f=g h", "city": "São Paulo", "loyaltyTier": "gold"},
        "cust-2": {"note": "plain", "city": "Berlin", "loyaltyTier": "silver"},
    }
    response = read_profile(emu, "cust-1")
    assert response.status_code == 200
    data = response.json()
    assert data["client"] == "demo"
    assert data["visitorId"]["thirdPartyId"] == "cust-1"
    assert data["visitorId"]["tntId"]
    assert data["modifiedAt"].endswith("Z")
    attributes = data["profileAttributes"]
    assert attributes["note"]["value"] == "a,b\nc%d&e+f=g h"
    assert attributes["city"]["value"] == "São Paulo"
    assert attributes["loyaltyTier"]["modifiedAt"].endswith("Z")
    root = status(url)
    assert root.findtext("status") == "complete"
    assert root.findtext("successfulUpdates") == "2"


def test_unknown_profile_reads_404_json(emu: Emulator) -> None:
    response = read_profile(emu, "nobody")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "message": "No profile found for client demo with third party id=nobody",
    }


def test_percent_encoded_id_in_read_path(emu: Emulator) -> None:
    accepted(upload(emu, "batch=thirdPartyId,city\nJos%C3%A9%20Silva%3Fx,Rio\n"))
    assert read_profile(emu, "José Silva?x").json()["profileAttributes"]["city"]["value"] == "Rio"


def test_raw_plus_becomes_space(emu: Emulator) -> None:
    accepted(upload(emu, "batch=thirdPartyId,city\ncust-1,New+York\n"))
    assert emu.profiles()["cust-1"] == {"city": "New York"}


def test_raw_ampersand_truncates_the_batch(emu: Emulator) -> None:
    url = accepted(upload(emu, "batch=thirdPartyId,brand\ncust-1,H&M\ncust-2,Zara\n"))
    assert emu.profiles() == {"cust-1": {"brand": "H"}}
    root = status(url)
    assert root.findtext("batchSize") == "1"


def test_raw_bad_percent_fails_the_whole_batch(emu: Emulator) -> None:
    message = rejected(upload(emu, "batch=thirdPartyId,discount\ncust-1,10\ncust-2,50%\n"))
    assert "line 3" in message
    assert emu.profiles() == {}
    assert emu.uploads[-1].batch_id is None and not emu.uploads[-1].success


def test_invalid_utf8_fails_the_batch(emu: Emulator) -> None:
    message = rejected(upload(emu, b"batch=thirdPartyId,city\ncust-1,S%C3o\n"))
    assert "UTF-8" in message and "line 2" in message
    rejected(upload(emu, b"batch=thirdPartyId,city\ncust-1,S\xe3o\n"))
    assert emu.profiles() == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("thirdPartyId,city\ncust-1,x\n", "batch= prefix"),
        ("batch=customerId,city\ncust-1,x\n", "thirdPartyId or pcId"),
        ("batch=thirdPartyId\r\ncust-1\r\n", "thirdPartyId or pcId"),  # CRLF: '\r' is data
        ("batch=thirdPartyId,profile.city\ncust-1,x\n", "profile."),
        ("batch=thirdPartyId,city,city\ncust-1,x,y\n", "duplicate"),
        ("batch=thirdPartyId,,city\ncust-1,x,y\n", "empty attribute name"),
        ("batch=", "thirdPartyId or pcId"),
    ],
)
def test_invalid_batch_files_are_rejected(emu: Emulator, body: str, fragment: str) -> None:
    assert fragment in rejected(upload(emu, body))
    assert emu.profiles() == {}


def test_content_type_must_be_form_urlencoded(emu: Emulator) -> None:
    body = "batch=thirdPartyId,city\ncust-1,x\n"
    message = rejected(upload(emu, body, headers={"Content-Type": "text/csv"}))
    assert "content type" in message.lower()
    accepted(
        upload(
            emu, body, headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
        )
    )
    assert emu.profiles() == {"cust-1": {"city": "x"}}


def test_carriage_return_is_part_of_the_cell(emu: Emulator) -> None:
    accepted(upload(emu, "batch=thirdPartyId,city\ncust-1,Oslo\r\n"))
    assert emu.profiles()["cust-1"] == {"city": "Oslo\r"}


def test_empty_cells_do_not_clear_and_short_rows_are_allowed(emu: Emulator) -> None:
    accepted(upload(emu, "batch=thirdPartyId,tier,city\ncust-1,gold,Lima\ncust-2,silver,Quito\n"))
    accepted(upload(emu, "batch=thirdPartyId,tier,city\ncust-1,,Cusco\ncust-2,bronze\n"))
    assert emu.profiles() == {
        "cust-1": {"tier": "gold", "city": "Cusco"},
        "cust-2": {"tier": "bronze", "city": "Quito"},
    }


def test_batch_of_only_empty_values_is_skipped(emu: Emulator) -> None:
    url = accepted(upload(emu, "batch=thirdPartyId,tier\ncust-1,\ncust-2\n"))
    assert emu.profiles() == {}
    assert status(url).findtext("status") == "complete"


def test_v1_updates_existing_only_and_counts_not_found(emu: Emulator) -> None:
    emu.add_profile("cust-1", {"tier": "gold"})
    url = accepted(
        upload(emu, "batch=thirdPartyId,tier\ncust-1,platinum\ncust-2,silver\n", version=1)
    )
    assert emu.uploads[-1].api_version == 1
    assert emu.profiles() == {"cust-1": {"tier": "platinum"}}
    root = status(url)
    assert root.findtext("batchSize") == "2"
    assert root.findtext("successfulUpdates") == "1"
    assert root.findtext("profilesNotFound") == "1"
    assert root.findtext("failedUpdates") == "0"


def test_pcid_profiles_and_tnt_read(emu: Emulator) -> None:
    accepted(upload(emu, "batch=pcId,tier\nabc123.37_0,gold\n"))
    assert emu.profiles("pcId") == {"abc123.37_0": {"tier": "gold"}}
    assert emu.profiles("thirdPartyId") == {}
    response = requests.get(
        f"{emu.base_url}/rest/v1/profiles/abc123.37_0", params={"client": "demo"}, timeout=10
    )
    assert response.status_code == 200
    assert response.json()["visitorId"] == {"tntId": "abc123.37_0"}
    missing = requests.get(
        f"{emu.base_url}/rest/v1/profiles/zzz", params={"client": "demo"}, timeout=10
    )
    assert missing.status_code == 404 and "tnt id=zzz" in missing.json()["message"]


def test_status_with_and_without_details_lists_failed_rows(emu: Emulator) -> None:
    body = (
        "batch=thirdPartyId,tier\n"
        "cust-1,gold\n"
        ",orphan\n"  # empty id
        "bad%2Bid,x\n"  # '+' is not allowed in a thirdPartyId
        "cust-2,silver,extra\n"  # more cells than the header
    )
    url = accepted(upload(emu, body))
    plain = status(url, details=False)
    assert plain.findtext("batchId") == url.split("batchId=")[1]
    assert plain.findtext("status") == "complete"
    assert plain.findtext("batchSize") == "4"
    assert plain.find("successfulUpdates") is None and plain.find("profile") is None

    detailed = status(url)
    assert detailed.findtext("consumedCount") == "4"
    assert detailed.findtext("successfulUpdates") == "1"
    assert detailed.findtext("profilesNotFound") == "0"
    assert detailed.findtext("failedUpdates") == "3"
    failed = [(p.findtext("id"), p.findtext("status")) for p in detailed.findall("profile")]
    assert failed == [("", "failed"), ("bad+id", "failed"), ("cust-2", "failed")]
    assert emu.profiles() == {"cust-1": {"tier": "gold"}}
    assert emu.status_polls == 2


def test_duplicate_ids_keep_the_last_row_and_are_recorded(emu: Emulator) -> None:
    url = accepted(upload(emu, "batch=thirdPartyId,tier,city\ncust-1,gold,Lima\ncust-1,silver\n"))
    assert emu.profiles() == {"cust-1": {"tier": "silver"}}  # last row whole, no merge
    record = emu.uploads[-1]
    assert record.duplicate_ids == ["cust-1"]
    assert record.rows == [["cust-1", "gold", "Lima"], ["cust-1", "silver"]]
    assert record.header_names == ["thirdPartyId", "tier", "city"]
    assert status(url).findtext("successfulUpdates") == "2"


def test_row_limit(emu: Emulator) -> None:
    body = "batch=thirdPartyId\n" + "x\n" * 500_001
    assert "500000" in rejected(upload(emu, body))


def test_byte_limit(emu: Emulator) -> None:
    header = b"batch=thirdPartyId,blob\n"
    row = b"id," + b"a" * 1000 + b"\n"
    body = header + row * ((50_000_000 - len(header)) // len(row))
    body += b"i" * (50_000_000 - len(body))  # exactly 50,000,000 bytes: too large
    assert len(body) == 50_000_000
    assert "50000000" in rejected(upload(emu, body))


@pytest.mark.slow
def test_500k_row_batch_is_accepted(emu: Emulator) -> None:
    rows = "".join(f"cust-{i},gold,S%C3%A3o%20Paulo\n" for i in range(500_000))
    started = time.monotonic()
    accepted(upload(emu, "batch=thirdPartyId,tier,city\n" + rows, timeout=120))
    assert time.monotonic() - started < 60
    assert emu.state()["profiles"]["thirdPartyId"] == 500_000
    assert emu.profiles()["cust-499999"] == {"tier": "gold", "city": "São Paulo"}


def test_chunked_upload_body(emu: Emulator) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"batch=thirdPartyId,tier\n"
        yield b"cust-1,gold\n"

    response = requests.post(emu.upload_url(), data=chunks(), headers=FORM, timeout=10)
    accepted(response)
    assert emu.uploads[-1].headers.get("Transfer-Encoding") == "chunked"
    assert emu.profiles() == {"cust-1": {"tier": "gold"}}


def test_routing_client_code_and_methods(emu: Emulator) -> None:
    other = requests.post(
        f"{emu.base_url}/m2/other/v2/profile/batchUpdate",
        data=b"batch=thirdPartyId\nx\n",
        headers=FORM,
        timeout=10,
    )
    assert other.status_code == 404
    assert requests.get(f"{emu.base_url}/nowhere", timeout=10).status_code == 404
    assert requests.get(emu.upload_url(), timeout=10).status_code == 405
    wrong_client = requests.get(
        f"{emu.base_url}/rest/v1/profiles/thirdPartyId/x", params={"client": "acme"}, timeout=10
    )
    assert wrong_client.status_code == 404
    assert emu.uploads == []


# -- faults -----------------------------------------------------------------------------------

BODY = "batch=thirdPartyId,tier\ncust-1,gold\n"


def test_fail_next_503_with_retry_after(emu: Emulator) -> None:
    emu.faults.fail_next = 2
    emu.faults.retry_after = 7
    for _ in range(2):
        response = upload(emu, BODY)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "7"
        assert xml(response).findtext("success") == "false"
    assert emu.profiles() == {}
    accepted(upload(emu, BODY))
    assert emu.faults.fail_next == 0
    assert [u.http_status for u in emu.uploads] == [503, 503, 200]


def test_fail_status_429(emu: Emulator) -> None:
    emu.faults.fail_next = 1
    emu.faults.fail_status = 429
    response = upload(emu, BODY)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert emu.profiles() == {}


def test_fail_fraction_is_reproducible_with_seed() -> None:
    def run() -> list[int]:
        with Emulator(faults=Faults(fail_fraction=0.5, seed=42)) as emulator:
            return [upload(emulator, BODY).status_code for _ in range(12)]

    first, second = run(), run()
    assert first == second
    assert 200 in first and 503 in first


def test_drop_next_closes_connection_without_applying(emu: Emulator) -> None:
    emu.faults.drop_next = 1
    with pytest.raises(requests.ConnectionError):
        upload(emu, BODY)
    assert emu.profiles() == {}
    record = emu.uploads[-1]
    assert record.dropped and record.http_status is None and record.body == BODY.encode()
    accepted(upload(emu, BODY))
    assert emu.profiles() == {"cust-1": {"tier": "gold"}}


def test_drop_fraction_one_drops_everything(emu: Emulator) -> None:
    emu.faults.drop_fraction = 1.0
    for _ in range(2):
        with pytest.raises(requests.ConnectionError):
            upload(emu, BODY)
    assert emu.profiles() == {}


def test_delay_holds_the_answer_but_applies_the_batch(emu: Emulator) -> None:
    emu.faults.delay_seconds = 0.6
    started = time.monotonic()
    accepted(upload(emu, BODY))
    assert time.monotonic() - started >= 0.6
    with pytest.raises(requests.ReadTimeout):
        upload(emu, "batch=thirdPartyId,tier\ncust-2,silver\n", timeout=0.2)
    # Applied although the client timed out: the connector must resend safely.
    assert emu.profiles()["cust-2"] == {"tier": "silver"}


def test_reject_next(emu: Emulator) -> None:
    emu.faults.reject_next = 1
    emu.faults.reject_message = "Invalid token or quota exceeded"
    assert rejected(upload(emu, BODY)) == "Invalid token or quota exceeded"
    assert emu.profiles() == {}
    accepted(upload(emu, BODY))


def test_stuck_next_is_not_applied(emu: Emulator) -> None:
    emu.faults.stuck_next = 1
    url = accepted(upload(emu, BODY))
    root = status(url)
    assert root.findtext("status") == "stuck"
    assert root.findtext("successfulUpdates") == "0"
    assert emu.profiles() == {}
    assert status(accepted(upload(emu, BODY))).findtext("status") == "complete"


def test_failed_ids_are_reported_and_not_applied(emu: Emulator) -> None:
    emu.faults.failed_ids = {"cust-2"}
    url = accepted(upload(emu, "batch=thirdPartyId,tier\ncust-1,gold\ncust-2,silver\n"))
    root = status(url)
    assert root.findtext("failedUpdates") == "1"
    assert root.findtext("successfulUpdates") == "1"
    assert [p.findtext("id") for p in root.findall("profile")] == ["cust-2"]
    assert emu.profiles() == {"cust-1": {"tier": "gold"}}
    assert emu.uploads[-1].failed_ids == ["cust-2"]


def test_incomplete_polls_then_complete(emu: Emulator) -> None:
    emu.faults.incomplete_polls = 2
    url = accepted(upload(emu, BODY))
    assert emu.profiles() == {"cust-1": {"tier": "gold"}}  # applied at upload time anyway
    first = status(url)
    assert first.findtext("status") == "incomplete"
    assert first.findtext("consumedCount") == "0"
    assert status(url, details=False).findtext("status") == "incomplete"
    done = status(url)
    assert done.findtext("status") == "complete"
    assert done.findtext("successfulUpdates") == "1"


def test_required_token(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="connector.emulator")
    emu.faults.required_token = "s3cret-token"
    good = {**FORM, "Authorization": "Bearer s3cret-token"}

    denied = upload(emu, BODY)
    assert denied.status_code == 401
    assert xml(denied).findtext("success") == "false"
    assert xml(denied).findtext("message") == "Authentication failed"
    wrong = upload(emu, BODY, headers={**FORM, "Authorization": "Bearer other"})
    assert wrong.status_code == 401
    assert emu.profiles() == {}

    url = accepted(upload(emu, BODY, headers=good))
    assert requests.get(url, timeout=10).status_code == 401
    root = status(url, headers={"Authorization": "Bearer s3cret-token"})
    assert root.findtext("status") == "complete"

    read = read_profile(emu, "cust-1")
    assert read.status_code == 401 and read.json()["status"] == 401
    authed = requests.get(
        f"{emu.base_url}/rest/v1/profiles/thirdPartyId/cust-1",
        params={"client": "demo"},
        headers={"Authorization": "Bearer s3cret-token"},
        timeout=10,
    )
    assert authed.status_code == 200

    assert emu.uploads[-1].headers["Authorization"] == "<redacted>"
    assert "s3cret-token" not in caplog.text
    assert "s3cret-token" not in repr(emu.faults)
    assert "s3cret-token" not in str(emu.state())
    lines = [r.getMessage() for r in caplog.records if r.name == "connector.emulator.server"]
    assert sum(" -> 401" in line for line in lines) == 4  # one line per request, status shown
    assert sum(" -> 200" in line for line in lines) == 3


def test_rate_limit_counts_all_api_calls(emu: Emulator) -> None:
    emu.faults.rate_limit_per_minute = 3
    emu.faults.retry_after = 30
    url = accepted(upload(emu, BODY))
    status(url)
    assert read_profile(emu, "cust-1").status_code == 200
    limited = upload(emu, BODY)
    assert limited.status_code == 503
    assert limited.headers["Retry-After"] == "30"
    assert requests.get(url, timeout=10).status_code == 503
    assert read_profile(emu, "cust-1").status_code == 503
    assert emu.calls == 6
    emu.faults.rate_limit_per_minute = None
    accepted(upload(emu, BODY))


def test_status_retention_forgets_old_batches(emu: Emulator) -> None:
    emu.faults.status_retention = 2
    urls = [accepted(upload(emu, BODY)) for _ in range(3)]
    oldest = status(urls[0])
    assert oldest.findtext("status") == "unknown"
    assert oldest.findtext("message") == "batch not found"
    assert oldest.findtext("batchId") == urls[0].split("batchId=")[1]
    assert [status(u).findtext("status") for u in urls[1:]] == ["complete", "complete"]


def test_unknown_batch_id_and_missing_batch_id(emu: Emulator) -> None:
    base = f"{emu.base_url}/m2/demo/profile/batchStatus"
    assert status(base + "?batchId=demo-1-1").findtext("status") == "unknown"
    assert requests.get(base, timeout=10).status_code == 400


# -- admin endpoints and lifecycle ------------------------------------------------------------


def test_admin_endpoints(emu: Emulator) -> None:
    accepted(upload(emu, "batch=thirdPartyId,tier\ncust-1,gold\ncust-2,silver\n"))
    admin = f"{emu.base_url}/_emulator"

    state = requests.get(f"{admin}/state", timeout=10).json()
    assert state["profiles"] == {"thirdPartyId": 2, "pcId": 0}
    assert state["uploads"] == 1
    assert state["uploads_summary"][0]["rows"] == 2
    assert state["uploads_summary"][0]["success"] is True

    dump = requests.get(f"{admin}/profiles", params={"type": "thirdPartyId"}, timeout=10).json()
    assert dump["profiles"] == {"cust-1": {"tier": "gold"}, "cust-2": {"tier": "silver"}}
    assert requests.get(f"{admin}/profiles", params={"type": "ecid"}, timeout=10).status_code == 400

    changed = requests.post(
        f"{admin}/faults", json={"fail_next": 1, "failed_ids": ["a", "b"]}, timeout=10
    )
    assert changed.status_code == 200
    assert changed.json()["failed_ids"] == ["a", "b"]
    assert emu.faults.failed_ids == {"a", "b"}
    assert upload(emu, BODY).status_code == 503

    bad = requests.post(f"{admin}/faults", json={"fail_nxt": 1, "fail_next": 3}, timeout=10)
    assert bad.status_code == 400 and "fail_nxt" in bad.json()["error"]
    assert emu.faults.fail_next == 0  # nothing applied from a bad request
    wrong_type = requests.post(f"{admin}/faults", json={"drop_fraction": 2}, timeout=10)
    assert wrong_type.status_code == 400

    assert requests.post(f"{admin}/reset", timeout=10).status_code == 200
    assert emu.profiles() == {}
    assert emu.uploads == [] and emu.calls == 0
    assert emu.faults.failed_ids == set()
    assert requests.get(f"{admin}/state", timeout=10).json()["uploads"] == 0


def test_admin_calls_are_not_api_calls(emu: Emulator) -> None:
    emu.faults.required_token = "t"
    emu.faults.rate_limit_per_minute = 1
    for _ in range(3):
        assert requests.get(f"{emu.base_url}/_emulator/state", timeout=10).status_code == 200
    assert emu.calls == 0


def test_reset_keeps_the_faults_object(emu: Emulator) -> None:
    faults = emu.faults
    faults.stuck_next = 3
    accepted(upload(emu, BODY))
    emu.reset()
    assert emu.faults is faults and faults.stuck_next == 0
    assert emu.uploads == [] and emu.status_polls == 0
    assert status(accepted(upload(emu, BODY))).findtext("status") == "complete"


def test_stop_closes_keep_alive_connections() -> None:
    emulator = Emulator().start()
    session = requests.Session()
    assert session.get(f"{emulator.base_url}/_emulator/state", timeout=5).status_code == 200
    emulator.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(f"{emulator.base_url}/_emulator/state", timeout=5)


def test_serve_forever_until_stopped() -> None:
    ready = threading.Event()
    seen: list[Emulator] = []

    def on_ready(emulator: Emulator) -> None:
        seen.append(emulator)
        ready.set()

    thread = threading.Thread(
        target=serve_forever,
        kwargs={"host": "127.0.0.1", "port": 0, "client_code": "acme", "on_ready": on_ready},
        daemon=True,
    )
    thread.start()
    assert ready.wait(5)
    emulator = seen[0]
    accepted(upload(emulator, BODY))
    assert emulator.upload_url().endswith("/m2/acme/v2/profile/batchUpdate")
    emulator.stop()
    thread.join(5)
    assert not thread.is_alive()


def test_upload_record_type(emu: Emulator) -> None:
    accepted(upload(emu, BODY))
    record = emu.uploads[0]
    assert isinstance(record, UploadRecord)
    assert record.path == "/m2/demo/v2/profile/batchUpdate"
    assert record.id_type == "thirdPartyId"
    assert record.summary()["body_bytes"] == len(BODY)


def test_invalid_client_code() -> None:
    with pytest.raises(ValueError):
        Emulator(client_code="bad/code")


def test_concurrent_uploads_are_all_applied_with_unique_batch_ids(emu: Emulator) -> None:
    urls: list[str] = []
    errors: list[BaseException] = []

    def send(worker: int) -> None:
        try:
            rows = "".join(f"w{worker}-{i},v{i}\n" for i in range(200))
            urls.append(accepted(upload(emu, "batch=thirdPartyId,attr\n" + rows)))
        except BaseException as error:  # surfaced below, in the test thread
            errors.append(error)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(set(urls)) == 8
    profiles = emu.profiles()
    assert len(profiles) == 8 * 200
    assert profiles["w7-199"] == {"attr": "v199"}
    assert emu.upload_count == 8


# -- seams: the app without sockets, a store and a parser plugged in -------------------------


TWO_ROWS = b"batch=thirdPartyId,tier\na,gold\nb,silver\n"


def app_request(method: str, target: str, body: bytes = b"", **headers: str) -> Request:
    message = Message()
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    return Request(method, target, message, body, "http://target.example")


def test_the_app_answers_requests_without_a_socket() -> None:
    app = TargetApp("demo")
    form = FORM["Content-Type"]
    reply = app.answer(
        app_request("POST", "/m2/demo/v2/profile/batchUpdate", TWO_ROWS, Content_Type=form)
    )
    answer = ET.fromstring(reply.body)
    assert (reply.status, answer.findtext("success")) == (200, "true")
    url = answer.findtext("batchStatus") or ""
    assert url.startswith("http://target.example/m2/demo/profile/batchStatus?batchId=demo-")

    reply = app.answer(app_request("GET", url.split("target.example")[1] + "&showDetails=true"))
    answer = ET.fromstring(reply.body)
    assert (answer.findtext("status"), answer.findtext("successfulUpdates")) == ("complete", "2")
    reply = app.answer(app_request("GET", "/rest/v1/profiles/thirdPartyId/a?client=demo"))
    assert reply.status == 200 and b'"value": "gold"' in reply.body
    assert app.profiles("thirdPartyId", None) == {"a": {"tier": "gold"}, "b": {"tier": "silver"}}
    assert (app.upload_count, app.status_polls, app.calls) == (1, 1, 3)
    assert app.answer(app_request("GET", "/m2/demo/v2/profile/batchUpdate")).status == 405


def test_a_counting_store_keeps_nothing_and_the_sink_parser_decodes_nothing() -> None:
    # The benchmark's emulator (bench/emulator.py) plugs these two in.
    with Emulator(client_code="bench", store_factory=CountingStore) as counting:
        url = accepted(upload(counting, TWO_ROWS))
        assert status(url).findtext("successfulUpdates") == "2"
        url = accepted(upload(counting, TWO_ROWS, version=1))
        assert status(url).findtext("profilesNotFound") == "2"  # v1 creates no profile
        assert counting.profiles() == {}
        assert counting.uploads[0].rows == [["a", "gold"], ["b", "silver"]]
    with Emulator(client_code="bench", parse=skim_batch) as sink:
        url = accepted(upload(sink, "batch=thirdPartyId,tier\na,%ZZ\nb,silver\nc,\n"))
        assert status(url).findtext("successfulUpdates") == "3"
        assert sink.profiles() == {}
        record = sink.uploads[0]
        assert (record.header_names, record.rows) == (["thirdPartyId", "tier"], [[], [], []])
