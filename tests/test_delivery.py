"""Delivery that loses nothing (issue #3): retries, pacing, batch status, crash safety,
locking, exit codes and secrets, against the Target emulator over real HTTP.

The emulator is the fake Target; nothing of the connector is mocked. Two tests speed up the
emulator's own clock (its rate-limit window is a fixed 60 s) and one shares a fake clock
between a ``TargetClient`` and the emulator, so the pacing is proven without waiting minutes.
In-process runs that make many calls lift ``calls_per_minute`` above what the config accepts
(``unpaced``): the pacing itself is proven by the tests that keep it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

import connector
from connector.config import SyncConfig, TargetConfig, load_config
from connector.delivery.client import TargetClient
from connector.delivery.retry import RateLimiter, RetryPolicy
from connector.delivery.urls import status_call_url
from connector.emulator import Emulator, UploadRecord
from connector.emulator import faults as emulator_faults
from connector.errors import (
    ConfigError,
    LockedError,
    TargetFatalError,
    TargetRetriableError,
)
from connector.result import Event

from .conftest import CLI, ConfigWriter, run_cli

CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT 'c' || i AS customer_id,
       CASE i % 3 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' ELSE 'bronze' END AS tier,
       'city ' || (i % 7) AS city
FROM range({n}) t(i)
"""

Warehouse = Callable[[str], Path]


# -- helpers -------------------------------------------------------------------------------


def warehouse_profiles(database: Path) -> dict[str, dict[str, str]]:
    """What Target must hold once everything is delivered: the warehouse, NULLs left out."""
    with duckdb.connect(str(database)) as con:
        rows = con.execute("SELECT customer_id, tier, city FROM customers").fetchall()
    return {
        cid: {k: v for k, v in (("loyaltyTier", tier), ("city", city)) if v is not None}
        for cid, tier, city in rows
    }


def ids_of(uploads: list[UploadRecord]) -> list[str]:
    """The profile ids of the accepted uploads, one entry per row sent."""
    return [row[0] for upload in uploads if upload.success for row in upload.rows]


def unpaced(path: Path) -> SyncConfig:
    """The config at ``path`` without the client's 40-calls-a-minute pace."""
    config = load_config(path)
    target = config.target.model_copy(update={"calls_per_minute": 1_000_000})
    return config.model_copy(update={"target": target})


class Events(list[Event]):
    """A run listener that keeps every event."""

    def __call__(self, event: Event) -> None:
        self.append(event)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e.fields for e in self if e.name == name]


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


class EmulatorTime:
    """Stands in for the ``time`` module inside the emulator: ``monotonic`` (its rate-limit
    clock) is ``clock``; everything else is the real thing."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.monotonic = clock

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def accelerated(factor: float) -> Callable[[], float]:
    """A monotonic clock running ``factor`` times faster than the real one."""
    start = time.monotonic()
    return lambda: start + (time.monotonic() - start) * factor


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- pacing and retry policy (units) ---------------------------------------------------------


def test_rate_limiter_allows_n_calls_in_any_sliding_minute_and_no_fewer() -> None:
    clock = FakeClock()
    limiter = RateLimiter(3, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(7):
        limiter.acquire()
        stamps.append(clock.now)
        clock.now += 1.0  # each call takes a second
    assert stamps[:3] == [1000.0, 1001.0, 1002.0]  # a burst up to the limit goes at once
    for first, fourth in zip(stamps, stamps[3:], strict=False):
        assert fourth - first >= 60.0  # never 4 calls within 60 s
    assert stamps[-1] - stamps[0] < 121  # and no waiting beyond what the window needs
    assert len(clock.sleeps) == 2


def test_retry_policy_backs_off_with_jitter_honours_retry_after_and_is_bounded() -> None:
    policy = RetryPolicy(max_attempts=5, max_seconds=100, base_seconds=1, cap_seconds=8)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        delays = {policy.delay(attempt, None) for _ in range(50)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1  # jittered
    assert policy.delay(2, 12.5) == 12.5  # Retry-After wins

    clock = FakeClock()
    answers: list[object] = [
        TargetRetriableError("HTTP 503", retry_after=2.0),
        TargetRetriableError("connection refused"),
        "accepted",
    ]
    retries: list[tuple[Any, ...]] = []

    def call() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    got = policy.run(
        call, "batch 1", sleep=clock.sleep, clock=clock, on_retry=lambda *a: retries.append(a)
    )
    assert got == "accepted"
    assert clock.sleeps[0] == 2.0 and 1.0 <= clock.sleeps[1] <= 2.0
    assert [(r[0], r[1], r[2]) for r in retries] == [
        ("batch 1", 1, "HTTP 503"),
        ("batch 1", 2, "connection refused"),
    ]

    def always_503() -> None:
        raise TargetRetriableError("HTTP 503")

    clock = FakeClock()
    with pytest.raises(TargetRetriableError, match=r"after 5 attempt.*max_attempts=5"):
        policy.run(always_503, "batch 2", sleep=clock.sleep, clock=clock)
    assert len(clock.sleeps) == 4

    def busy_for_long() -> None:
        raise TargetRetriableError("HTTP 503", retry_after=300.0)

    clock = FakeClock()
    with pytest.raises(TargetRetriableError, match=r"after 1 attempt.*max_retry_seconds=100"):
        policy.run(busy_for_long, "batch 3", sleep=clock.sleep, clock=clock)
    assert clock.sleeps == []  # it does not wait for what it will not retry

    calls = []

    def fatal() -> None:
        calls.append(1)
        raise TargetFatalError("HTTP 400")

    with pytest.raises(TargetFatalError):
        policy.run(fatal, "batch 4", sleep=clock.sleep, clock=clock)
    assert calls == [1]  # other answers are not retried


def test_status_urls_on_remote_hosts_are_read_over_https() -> None:
    # Adobe's answers show http:// status URLs on an edge host; HTTPS works on the same host.
    edge = "http://mboxedge45.tt.omtrdc.net/m2/demo/profile/batchStatus?batchId=demo-1-2"
    assert status_call_url(edge, allow_insecure_http=False) == (
        "https://mboxedge45.tt.omtrdc.net/m2/demo/profile/batchStatus?batchId=demo-1-2"
        "&showDetails=true"
    )
    assert status_call_url(edge, allow_insecure_http=True).startswith("http://mboxedge45.")
    local = "http://127.0.0.1:8899/m2/demo/profile/batchStatus?batchId=x"
    assert status_call_url(local, allow_insecure_http=False) == local + "&showDetails=true"


# -- pacing against the emulator -------------------------------------------------------------


BODY = b"batch=thirdPartyId,loyaltyTier\nc1,gold\n"


def test_client_paces_itself_under_targets_limit(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()  # the client's and the emulator's, so minutes pass at once
    monkeypatch.setattr(emulator_faults, "time", EmulatorTime(clock))
    emulator.faults.rate_limit_per_minute = 5

    def upload_12(calls_per_minute: int) -> list[int]:
        settings = TargetConfig(
            client_code="demo",
            base_url=emulator.base_url,
            calls_per_minute=calls_per_minute,
            backoff_base_seconds=1,
            backoff_max_seconds=1,
            max_attempts=100,
        )
        client = TargetClient(settings, "sync 't'", sleep=clock.sleep, clock=clock)
        try:
            return [client.upload(BODY, f"batch {i}").attempts for i in range(12)]
        finally:
            client.close()

    started = clock.now
    assert upload_12(5) == [1] * 12
    assert clock.now - started >= 120  # 12 calls at 5 a minute: two full waits
    assert not [u for u in emulator.uploads if u.http_status == 503]

    clock.sleep(120)
    attempts = upload_12(6)  # a pace above Target's limit meets its 503s
    assert max(attempts) > 1
    assert [u for u in emulator.uploads if u.http_status == 503]


def test_a_run_survives_targets_rate_limit_503s(
    emulator: Emulator,
    warehouse: Warehouse,
    write_config: ConfigWriter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(emulator_faults, "time", EmulatorTime(accelerated(60)))  # 1 s minute
    emulator.faults.update({"rate_limit_per_minute": 8, "retry_after": 0.25})
    database = warehouse(CUSTOMERS.format(n=600))
    path = write_config(emulator=emulator, target={"max_rows_per_batch": 50, "max_attempts": 30})
    config = unpaced(path)  # (the client's own pace is proven above; here Target's is)
    events = Events()

    result = connector.sync(config, listener=events)

    assert (result.exit_code, result.sent, result.batches) == (0, 600, 12)
    assert emulator.profiles() == warehouse_profiles(database)
    retries = events.named("retry")  # uploads and status reads both met the limit's 503s
    assert retries and {r["reason"] for r in retries} == {"HTTP 503"}
    assert {r["wait_seconds"] for r in retries} == {0.25}  # Retry-After honoured
    limited = [u for u in emulator.uploads if u.http_status == 503]
    assert all("calls per minute" in u.message for u in limited)


# -- retries over real HTTP ------------------------------------------------------------------


def converge(config: SyncConfig, events: Events, runs: int = 15) -> list[str]:
    """Rerun until a run ends with exit code 0; returns what each run did."""
    outcomes: list[str] = []
    for _ in range(runs):
        try:
            result = connector.sync(config, listener=events)
        except connector.TargetError as exc:
            outcomes.append(f"failed: {exc}")
            continue
        outcomes.append(result.outcome)
        if result.exit_code == 0:
            return outcomes
    pytest.fail(f"no clean run in {runs} runs: {outcomes}")


@pytest.mark.parametrize("retry_after", [None, 0.02], ids=["backoff", "retry-after"])
def test_repeated_runs_through_503s_and_dropped_connections_deliver_everything(
    emulator: Emulator,
    warehouse: Warehouse,
    write_config: ConfigWriter,
    retry_after: float | None,
) -> None:
    database = warehouse(CUSTOMERS.format(n=3000))
    config = unpaced(
        write_config(emulator=emulator, target={"max_rows_per_batch": 100, "max_attempts": 6})
    )
    emulator.faults.update(
        {"fail_fraction": 0.5, "drop_fraction": 0.2, "retry_after": retry_after, "seed": 11}
    )
    events = Events()

    first = converge(config, events)
    assert emulator.profiles() == warehouse_profiles(database)

    warehouse(
        "UPDATE customers SET tier = 'platinum', city = 'Zürich, CH' "
        "WHERE right(customer_id, 1) = '7'"
    )
    second = converge(config, events)
    assert emulator.profiles() == warehouse_profiles(database)

    report = connector.plan(config)
    assert (report.new, report.changed, report.pending_batches) == (0, 0, 0)
    assert not any(u.duplicate_ids for u in emulator.uploads)
    # Many calls failed, some runs gave up on a batch, and the next run carried on from there.
    assert sum(u.http_status == 503 for u in emulator.uploads) > 30
    assert sum(u.dropped for u in emulator.uploads) > 10
    assert first[0].startswith("failed: batch ") and first[-1] == "delivered"
    assert second[-1] == "delivered"

    retries = events.named("retry")
    reasons = {r["reason"] for r in retries}
    assert "HTTP 503" in reasons
    assert "connection closed without an answer" in reasons
    assert all(r["what"].startswith("batch ") for r in retries)
    waits = [r["wait_seconds"] for r in retries if r["reason"] == "HTTP 503"]
    if retry_after is None:
        assert all(0.005 <= w <= 0.05 for w in waits)
        assert len(set(waits)) > 3  # jittered
    else:
        assert set(waits) == {0.02}


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 507])
def test_busy_answers_are_retried(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, status: int
) -> None:
    database = warehouse(CUSTOMERS.format(n=20))
    emulator.faults.update({"fail_next": 2, "fail_status": status})
    events = Events()
    result = connector.sync(write_config(emulator=emulator), listener=events)
    assert result.exit_code == 0
    assert emulator.upload_count == 3
    assert [r["reason"] for r in events.named("retry")] == [f"HTTP {status}"] * 2
    assert emulator.profiles() == warehouse_profiles(database)


@pytest.mark.parametrize("status", [400, 404, 409, 413])
def test_other_answers_are_not_retried(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, status: int
) -> None:
    warehouse(CUSTOMERS.format(n=20))
    emulator.faults.update({"fail_next": 1, "fail_status": status})
    config = write_config(emulator=emulator)
    events = Events()
    with pytest.raises(TargetFatalError, match=f"HTTP {status}.*snapshot was not advanced"):
        connector.sync(config, listener=events)
    assert emulator.upload_count == 1
    assert events.named("retry") == []
    assert connector.status(config)["snapshot_profiles"] == 0


def test_a_timed_out_upload_is_retried_and_delivered_at_least_once(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=20))
    emulator.faults.delay_seconds = 1.0  # Target applies the batch, the answer comes late
    config = write_config(emulator=emulator, target={"read_timeout_seconds": 0.2})

    def on_event(event: Event) -> None:
        if event.name == "retry":
            emulator.faults.delay_seconds = 0

    events = Events()
    result = connector.sync(config, listener=lambda e: (events(e), on_event(e)))
    assert result.exit_code == 0
    assert [r["reason"] for r in events.named("retry")] == [
        "no answer within target.read_timeout_seconds=0.2"
    ]
    assert emulator.upload_count == 2  # sent again: at least once, never at most once
    assert emulator.profiles() == warehouse_profiles(database)


def test_an_unreachable_target_fails_the_run_with_exit_1(
    warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    config = write_config(target={"max_attempts": 2})  # nothing listens on port 9
    cli = run_cli("sync", config)
    assert cli.returncode == 1, cli.stderr
    assert "batch 1 of sync 'test_sync' failed after 2 attempt(s)" in cli.stderr
    assert "connection refused" in cli.stderr
    assert "rerunning is safe" in cli.stderr


def test_an_exhausted_retry_budget_fails_the_run_and_commits_nothing(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=100))
    emulator.faults.fail_next = 1000
    config = write_config(emulator=emulator, target={"max_attempts": 3})

    cli = run_cli("--log-format", "json", "sync", config)

    assert cli.returncode == 1, cli.stderr
    assert emulator.upload_count == 3
    lines = json_lines(cli.stderr)
    [error] = [line["message"] for line in lines if line.get("event") == "error"]
    assert error.startswith("batch 1 of sync 'test_sync' failed after 3 attempt(s)")
    for part in ("HTTP 503", "max_attempts=3", "snapshot was not advanced for its 100 profiles"):
        assert part in error
    assert error.endswith("rerunning is safe")
    retries = [line for line in lines if line.get("event") == "retry"]
    assert [(r["attempt"], r["reason"]) for r in retries] == [(1, "HTTP 503"), (2, "HTTP 503")]
    logged = [line["message"] for line in lines if line.get("logger") == "connector.delivery.retry"]
    assert len(logged) == 2 and all("HTTP 503" in m and "retrying" in m for m in logged)
    report = connector.status(config)
    assert report["snapshot_profiles"] == 0
    assert (report["runs"][0]["outcome"], report["runs"][0]["exit_code"]) == ("failed", 1)

    emulator.faults.fail_next = 0
    assert run_cli("sync", config).returncode == 0
    assert emulator.profiles() == warehouse_profiles(database)


def test_a_batch_that_fails_keeps_the_batches_accepted_before_it(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=150))
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 50, "max_attempts": 2})

    def break_after_first(event: Event) -> None:
        if event.name == "batch_uploaded" and event.fields["seq"] == 1:
            emulator.faults.fail_next = 1000

    with pytest.raises(TargetRetriableError) as failure:
        connector.sync(config, listener=break_after_first)
    message = str(failure.value)  # (the live traceback must not keep the state file open)
    assert message.startswith("batch 2 of sync 'test_sync' failed after 2 attempt")
    assert "1 earlier batch(es) of this run were accepted and stay committed" in message
    report = connector.status(config)
    assert report["snapshot_profiles"] == 50
    assert len(report["pending_batches"]) == 1  # accepted, its status not read yet

    emulator.faults.fail_next = 0
    uploads = emulator.upload_count
    result = connector.sync(config)
    assert result.resolved_from_earlier["complete"] == 1
    assert (result.exit_code, result.sent) == (0, 100)
    assert emulator.upload_count == uploads + 2  # only the two batches not accepted before
    assert emulator.profiles() == warehouse_profiles(database)


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    emulator.faults.update({"fail_next": 5, "retry_after": 600})
    config = write_config(emulator=emulator, target={"max_retry_seconds": 5})
    started = time.monotonic()
    with pytest.raises(TargetRetriableError, match=r"after 1 attempt.*max_retry_seconds=5"):
        connector.sync(config)
    assert time.monotonic() - started < 5
    assert emulator.upload_count == 1


# -- batch status ----------------------------------------------------------------------------


def test_failed_rows_are_resent_by_the_next_run_and_only_those(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=300))
    failed = {"c5", "c150", "c299"}
    emulator.faults.failed_ids = set(failed)
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 100})

    first = run_cli("sync", config)
    assert first.returncode == 3, first.stderr
    assert set(emulator.profiles()) == set(warehouse_profiles(database)) - failed
    report = connector.status(config)
    assert "3 failed in Target; the next run resends them" in report["runs"][0]["message"]
    assert {r["id"] for r in report["failed_rows"]} == failed
    assert {r["reason"] for r in report["failed_rows"]} == {"failed in batch status"}
    assert (report["runs"][0]["outcome"], report["runs"][0]["exit_code"]) == ("partial", 3)

    emulator.faults.failed_ids = set()
    before = len(emulator.uploads)
    second = run_cli("sync", config)
    assert second.returncode == 0, second.stderr
    assert sorted(ids_of(emulator.uploads[before:])) == sorted(failed)
    assert emulator.profiles() == warehouse_profiles(database)


def test_a_stuck_batch_is_reverted_whole_and_resent(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=300))
    emulator.faults.stuck_next = 1
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 100})

    first = connector.sync(config)
    assert (first.exit_code, first.failed, first.outcome) == (3, 100, "partial")
    stuck_ids = set(ids_of(emulator.uploads[:1]))
    assert len(stuck_ids) == 100 and not stuck_ids & set(emulator.profiles())
    reasons = {r["reason"] for r in connector.status(config)["failed_rows"]}
    assert reasons == {"batch stuck"}

    before = len(emulator.uploads)
    second = connector.sync(config)
    assert (second.exit_code, second.sent) == (0, 100)
    assert set(ids_of(emulator.uploads[before:])) == stuck_ids
    assert emulator.profiles() == warehouse_profiles(database)


def test_a_batch_incomplete_at_the_deadline_stays_pending_and_the_next_run_resolves_it(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=100))
    emulator.faults.update({"incomplete_polls": 3, "failed_ids": ["c7"]})
    hasty = write_config(emulator=emulator, target={"status_deadline_seconds": 0})

    first = connector.sync(hasty)
    assert (first.exit_code, first.pending_batches, first.failed) == (0, 1, 0)
    assert "1 batch(es) still processing; the next run checks them first" in first.message
    pending = connector.status(hasty)["pending_batches"]
    assert len(pending) == 1 and "incomplete" in pending[0]["detail"]

    emulator.faults.update({"incomplete_polls": 0, "failed_ids": []})
    patient = write_config(emulator=emulator, file_name="patient.yaml")  # same state file
    before = len(emulator.uploads)
    second = connector.sync(patient)
    assert second.resolved_from_earlier == {
        "complete": 1,
        "reverted_rows": 1,
        "not_found": 0,
        "still_pending": 0,
    }
    # The failed row of the earlier batch went out again in this run, and only it.
    assert (second.exit_code, second.sent, second.failed) == (0, 1, 0)
    assert ids_of(emulator.uploads[before:]) == ["c7"]
    assert emulator.profiles() == warehouse_profiles(database)
    report = connector.status(patient)
    assert report["pending_batches"] == []
    assert [(r["id"], r["reason"]) for r in report["failed_rows"]] == [
        ("c7", "failed in batch status")
    ]


def test_an_expired_batch_status_is_unknown_and_the_batch_is_resent(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=300))
    emulator.faults.status_retention = 0  # Target forgot every status already
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 100})

    first = connector.sync(config)
    assert (first.exit_code, first.failed) == (3, 300)
    assert {r["reason"] for r in connector.status(config)["failed_rows"]} == {
        "batch unknown: batch not found"
    }

    emulator.faults.status_retention = None
    before = len(emulator.uploads)
    second = connector.sync(config)
    assert (second.exit_code, second.sent) == (0, 300)
    assert sorted(ids_of(emulator.uploads[before:])) == sorted(warehouse_profiles(database))


def test_statuses_are_read_before_target_forgets_them(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    # Target keeps the status of a client's last 10 batches: a long run must not wait for
    # its end to read them.
    database = warehouse(CUSTOMERS.format(n=900))
    emulator.faults.status_retention = 4
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 100})
    result = connector.sync(config)
    assert (result.exit_code, result.batches, result.failed) == (0, 9, 0)
    assert emulator.profiles() == warehouse_profiles(database)
    assert connector.status(config)["pending_batches"] == []


def test_a_stuck_removal_batch_is_sent_again(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator, on_removed={"set": {"vip": "false"}})
    connector.sync(config)
    warehouse("DELETE FROM customers WHERE customer_id IN ('c1', 'c2')")
    emulator.faults.stuck_next = 1

    stuck = connector.sync(config)
    assert (stuck.exit_code, stuck.removed_sent, stuck.failed) == (3, 2, 2)
    assert "vip" not in emulator.profiles()["c1"]

    again = connector.sync(config)
    assert (again.exit_code, again.removed_sent) == (0, 2)
    assert emulator.profiles()["c1"]["vip"] == "false"
    assert emulator.profiles()["c2"]["vip"] == "false"
    assert connector.sync(config).removed_sent == 0  # and then never again


def test_a_rejected_batch_fails_the_run_and_the_rerun_delivers(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=100))
    emulator.faults.update({"reject_next": 1, "reject_message": "Invalid batch header"})
    config = write_config(emulator=emulator)

    cli = run_cli("sync", config)
    assert cli.returncode == 1
    error = cli.stderr.strip().splitlines()[-1]
    assert error.startswith("error: Target rejected batch 1 of sync 'test_sync'")
    assert "success=false: Invalid batch header" in error
    assert "the snapshot was not advanced for its 100 profiles" in error
    assert error.endswith("rerunning is safe")
    assert emulator.upload_count == 1  # a rejection is not retried
    assert connector.status(config)["snapshot_profiles"] == 0

    rerun = run_cli("sync", config)
    assert rerun.returncode == 0, rerun.stderr
    assert emulator.profiles() == warehouse_profiles(database)


# -- crash safety ----------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["upload_answer", "status_polling"])
def test_a_run_killed_mid_delivery_loses_nothing(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, moment: str
) -> None:
    # Six batches, and few enough calls that the CLI's own pace (40 a minute) never waits.
    database = warehouse(CUSTOMERS.format(n=240))
    expected = warehouse_profiles(database)
    failed = {f"c{i}" for i in range(0, 240, 23)}  # Target fails a few rows of most batches
    config = write_config(
        emulator=emulator, target={"max_rows_per_batch": 40, "status_poll_interval_seconds": 0.2}
    )
    emulator.faults.update(
        {
            "failed_ids": sorted(failed),
            "delay_seconds": 0.3 if moment == "upload_answer" else 0,
            "incomplete_polls": 2 if moment == "status_polling" else 0,
        }
    )

    run = subprocess.Popen(
        [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        if moment == "upload_answer":
            # The 4th batch is applied by Target, its answer held back: kill the run between
            # "Target accepted it" and "the snapshot committed it".
            wait_for(lambda: emulator.upload_count >= 4, "the 4th upload", run)
        else:
            # 3 early reads during the uploads, then the final polling rounds.
            wait_for(lambda: emulator.status_polls >= 5, "status polling", run)
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == -signal.SIGKILL
    before = list(emulator.uploads)
    emulator.faults.update({"failed_ids": [], "delay_seconds": 0, "incomplete_polls": 0})

    rerun = run_cli("sync", config)
    assert rerun.returncode == 0, rerun.stderr
    assert emulator.profiles() == expected

    # Exactly what was not confirmed went out again: every row of the batch whose answer was
    # lost, the rows Target failed, and what had not been sent at all.
    confirmed = set(ids_of(before[:3] if moment == "upload_answer" else before)) - failed
    resent = ids_of(emulator.uploads[len(before) :])
    assert sorted(resent) == sorted(set(expected) - confirmed)
    report = connector.status(config)
    assert report["pending_batches"] == []
    assert [r["outcome"] for r in report["runs"]] == ["delivered", "interrupted"]
    assert connector.plan(config).new == 0


# -- locking -----------------------------------------------------------------------------------


def test_one_run_at_a_time_and_a_killed_holder_does_not_block(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=200))
    expected = warehouse_profiles(database)
    # Slow enough answers that the holder still runs while a second CLI starts on a busy
    # machine (20 s of uploads; it is killed long before).
    emulator.faults.delay_seconds = 5
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 50})

    holder = subprocess.Popen(
        [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(lambda: emulator.upload_count >= 1, "the holder's first upload", holder)
        started = time.monotonic()
        second = run_cli("sync", config, timeout=30)
        assert second.returncode == 1
        assert time.monotonic() - started < 5  # at once, not after the holder
        assert f"pid {holder.pid}, sync 'test_sync', started 20" in second.stderr
        assert "another run holds the lock" in second.stderr
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            connector.sync(config)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    emulator.faults.delay_seconds = 0
    after = run_cli("sync", config)
    assert after.returncode == 0, after.stderr
    assert emulator.profiles() == expected


# -- the token ---------------------------------------------------------------------------------

TOKEN = "tok-7Hq2pX9vLm4"


def test_a_wrong_or_missing_token_fails_without_showing_it(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    database = warehouse(CUSTOMERS.format(n=20))
    emulator.faults.required_token = TOKEN
    wrong_token = "tok-WRONG-93kd8"
    wrong = write_config(emulator=emulator, target={"auth_token": wrong_token}, file_name="w.yaml")
    missing = write_config(emulator=emulator, file_name="missing.yaml")
    right = write_config(
        emulator=emulator, target={"auth_token": "${TS_TOKEN}"}, file_name="right.yaml"
    )
    # A secret read from a file often ends in a newline.
    env = {"TS_TOKEN": TOKEN + "\n"}
    secrets = (TOKEN, wrong_token)

    for config in (wrong, missing):
        cli = run_cli("--log-format", "json", "--debug", "sync", config, env=env)
        assert cli.returncode == 1
        output = cli.stdout + cli.stderr
        assert "HTTP 401 (authentication failed" in output
        assert "check target.auth_token" in output
        assert not [s for s in secrets if s in output]
    assert emulator.profiles() == {}

    cli = run_cli("--log-format", "json", "--debug", "sync", right, env=env)
    assert cli.returncode == 0, cli.stderr
    assert json_lines(cli.stderr)  # the debug log was written ...
    assert not [s for s in secrets if s in cli.stdout + cli.stderr]  # ... without the token
    assert emulator.profiles() == warehouse_profiles(database)
    for file in (tmp_path / "state").iterdir():
        if file.is_file():
            assert not [s for s in secrets if s.encode() in file.read_bytes()], file


def test_a_refused_token_on_a_status_read_stops_the_run_and_keeps_the_batch_pending(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=50))
    emulator.faults.update({"required_token": TOKEN, "incomplete_polls": 1})
    hasty = write_config(
        emulator=emulator, target={"auth_token": TOKEN, "status_deadline_seconds": 0}
    )
    assert connector.sync(hasty).pending_batches == 1

    rotated = write_config(
        emulator=emulator, target={"auth_token": "tok-rotated-0000"}, file_name="rotated.yaml"
    )
    with pytest.raises(TargetFatalError, match=r"HTTP 401.*as pending.*rerunning is safe"):
        connector.sync(rotated)
    report = connector.status(rotated)
    assert len(report["pending_batches"]) == 1  # not taken for unknown and reverted
    assert report["failed_rows"] == []

    result = connector.sync(hasty)
    assert result.resolved_from_earlier["complete"] == 1
    assert (result.exit_code, result.sent) == (0, 0)  # nothing to resend
    assert emulator.profiles() == warehouse_profiles(database)


def test_a_malformed_token_is_a_config_error_that_does_not_show_it(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    config = write_config(emulator=emulator, target={"auth_token": "tok-abc def\r\nX-Evil: 1"})
    with pytest.raises(ConfigError, match=r"target\.auth_token") as failure:
        connector.sync(config)
    assert "tok-abc" not in str(failure.value)
    assert emulator.upload_count == 0
