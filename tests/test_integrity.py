"""The snapshot never lies (issue #11): each defect found against a strict Target, as a test
over real HTTP against the emulator, and the invariants every scenario must leave behind.

Invariants (``connector.operations.invariant_violations``): each id at most once per snapshot;
every snapshot row confirmed, tied to a pending batch, or owed (to be resent); every row
bound to a known mapping and destination.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

import connector
from connector.config import SyncConfig, load_config
from connector.emulator import Emulator, UploadRecord
from connector.errors import RunInterrupted, note_signal
from connector.operations import invariant_violations
from connector.result import Event

from .conftest import CLI, ConfigWriter, Webhook, run_cli

Warehouse = Callable[[str], Path]

CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT 'c' || i AS customer_id,
       CASE i % 3 WHEN 0 THEN 'gold' WHEN 1 THEN 'silver' ELSE 'bronze' END AS tier,
       'city ' || (i % 7) AS city
FROM range({n}) t(i)
"""


def expected_profiles(database: Path, where: str = "true") -> dict[str, dict[str, str]]:
    with duckdb.connect(str(database)) as con:
        rows = con.execute(
            f"SELECT customer_id, tier, city FROM customers WHERE {where}"
        ).fetchall()
    return {
        cid: {k: v for k, v in (("loyaltyTier", tier), ("city", city)) if v is not None}
        for cid, tier, city in rows
    }


def sent_ids(uploads: list[UploadRecord]) -> list[str]:
    return [row[0] for upload in uploads if upload.success for row in upload.rows]


def assert_invariants(config: SyncConfig | Path) -> None:
    assert invariant_violations(config) == []


def unpaced(path: Path) -> SyncConfig:
    config = load_config(path)
    target = config.target.model_copy(update={"calls_per_minute": 1_000_000})
    return config.model_copy(update={"target": target})


def state_files(config: SyncConfig | Path) -> dict[str, str]:
    """Every file of the state directory with the sha256 of its bytes."""
    loaded = config if isinstance(config, SyncConfig) else load_config(config)
    folder = Path(loaded.state.path).parent
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


class Events(list[Event]):
    def __call__(self, event: Event) -> None:
        self.append(event)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e.fields for e in self if e.name == name]


def wait_until(condition: Callable[[], bool], what: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- 1. a NULL id must not hide a duplicate --------------------------------------------------


DUPLICATES = """
CREATE OR REPLACE TABLE customers AS
SELECT * FROM (VALUES ('a', 'gold', 'one'), ('a', 'silver', 'two'), (NULL, 'x', 'n'),
                      ('b', 'bronze', 'three')) t(customer_id, tier, city)
"""


@pytest.mark.parametrize("moment", ["first_run", "steady_state"])
def test_a_null_id_does_not_hide_a_duplicate(
    emulator: Emulator,
    warehouse: Warehouse,
    write_config: ConfigWriter,
    moment: str,
) -> None:
    config = write_config(emulator=emulator)
    if moment == "steady_state":
        warehouse("CREATE TABLE customers AS SELECT 'a' AS customer_id, 'gold' tier, 'one' city")
        assert connector.sync(config).exit_code == 0
    warehouse(DUPLICATES)
    before = len(emulator.uploads)

    result = connector.sync(config)

    assert result.rejected == {"duplicate_id": 2, "empty_id": 1}
    assert result.exit_code == 3
    assert not any(u.duplicate_ids for u in emulator.uploads)
    assert sent_ids(emulator.uploads[before:]) == ["b"]
    assert_invariants(config)

    warehouse("DELETE FROM customers WHERE customer_id IS NULL OR city = 'two'")
    fixed = connector.sync(config)
    assert (fixed.exit_code, fixed.rows_read) == (0, 2)
    assert emulator.profiles()["a"] == {"loyaltyTier": "gold", "city": "one"}
    assert_invariants(config)
    assert connector.sync(config).rows_read == 2  # read as many rows as the table holds


def test_the_cheap_duplicate_precheck_agrees_with_the_exact_check(tmp_path: Path) -> None:
    """The pre-check may send the store to the exact check needlessly (a hash collision),
    never skip it when a duplicate exists: NULLs, empty ids, removed rows and collisions."""
    from connector.state.stage import duplicate_check_needed

    con = duckdb.connect()
    cases: list[list[str | None]] = [
        [],
        [None],
        [None, None],
        ["a", "a", None],
        ["a", "a", None, None, "b"],
        ["", ""],
        ["", "", None],
        ["a", "b", "c"],
        [None, "a", "b"],
        ["x"] * 3 + [None] * 3,
    ]
    for ids in cases:
        for weak_hash in (None, "hash(id) % 2"):  # a 1-bit hash: collisions everywhere
            con.execute("CREATE OR REPLACE TABLE stage (id VARCHAR, kind VARCHAR)")
            if ids:
                con.executemany("INSERT INTO stage VALUES (?, 'new')", [[i] for i in ids])
            # Removed profiles carry their id too; they never count as a duplicate.
            con.execute("INSERT INTO stage VALUES ('r', 'removed'), ('r2', 'removed')")
            exact = con.execute(
                "SELECT count(*) > 0 FROM (SELECT id FROM stage WHERE id IS NOT NULL "
                "AND id <> '' AND kind IS DISTINCT FROM 'removed' GROUP BY id "
                "HAVING count(*) > 1)"
            ).fetchone()
            assert exact is not None
            cheap = duplicate_check_needed(con, "stage", weak_hash)
            if exact[0]:
                assert cheap, (ids, weak_hash)
            if weak_hash is None and not exact[0]:
                assert not cheap, ids  # with a real hash, no needless exact check here


# -- 2. a snapshot belongs to one destination --------------------------------------------------


@pytest.mark.parametrize("change", ["client_code", "api_version", "base_url", "identity_type"])
def test_changing_the_destination_resends_everything_and_plan_says_why(
    warehouse: Warehouse, write_config: ConfigWriter, change: str
) -> None:
    database = warehouse(CUSTOMERS.format(n=30))
    with (
        Emulator(client_code="demo", other_clients=("prod",)) as first,
        Emulator(client_code="demo") as second,
    ):
        for profile_id in expected_profiles(database):  # v1 updates existing profiles only
            first.add_profile(profile_id, {"seen": "yes"})
        config = write_config(emulator=first)
        assert connector.sync(config).sent == 30
        target: dict[str, Any] = {}
        identity = None
        receiver, client, id_type = first, "demo", "thirdPartyId"
        if change == "client_code":
            target, client = {"client_code": "prod"}, "prod"
        elif change == "api_version":
            target = {"api_version": 1}
        elif change == "base_url":
            target, receiver = {"base_url": second.base_url}, second
        else:
            identity, id_type = {"column": "customer_id", "type": "pcId"}, "pcId"
        moved = write_config(emulator=first, target=target, identity=identity)

        report = connector.plan(moved)
        assert (report.new + report.changed, report.unchanged) == (30, 0)
        assert report.full_resend_reason is not None
        assert "destination" in report.full_resend_reason or "identity" in report.full_resend_reason
        word = {"client_code": "prod", "api_version": "1", "base_url": str(second.port)}.get(
            change, "pcId"
        )
        assert word in report.full_resend_reason

        uploads = receiver.upload_count
        result = connector.sync(moved)
        assert (result.exit_code, result.sent) == (0, 30)
        assert receiver.upload_count > uploads
        held = receiver.profiles(id_type, client=client)
        for profile_id, values in expected_profiles(database).items():
            assert held[profile_id].items() >= values.items()
        assert connector.plan(moved).changed == 0
        assert_invariants(moved)


# -- 3. v1 "profiles not found" are not delivered ---------------------------------------------


def test_v1_profiles_not_found_are_reported_and_resent_until_the_profile_exists(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, webhook: Webhook
) -> None:
    database = warehouse(CUSTOMERS.format(n=10))
    for i in range(7):  # c7, c8, c9 have no profile in Target yet
        emulator.add_profile(f"c{i}", {"seen": "yes"})
    config = write_config(
        emulator=emulator,
        target={"api_version": 1, "max_rows_per_batch": 5},
        notify={"webhook_url": webhook.url},
    )

    cli = run_cli("--log-format", "json", "sync", config)
    assert cli.returncode == 3, cli.stderr
    events = [json.loads(line) for line in cli.stderr.splitlines() if line.startswith("{")]
    [end] = [e for e in events if e["event"] == "run_end"]
    assert end["not_found"] == 3
    assert end["outcome"] == "partial"
    assert "not found" in end["message"]
    statuses = [e for e in events if e["event"] == "batch_status"]
    assert sum(e["not_found"] for e in statuses) == 3
    [post] = webhook.received
    assert post["json"]["not_found"] == 3 and "failed_rows" in post["json"]["reasons"]
    report = connector.status(config)
    assert report["runs"][0]["summary"]["not_found"] == 3
    assert report["runs"][0]["exit_code"] == 3

    # Target names no unfound id: every row of such a batch is resent, so a profile that
    # appears later still gets its attributes.
    for i in (7, 8, 9):
        emulator.add_profile(f"c{i}", {"seen": "yes"})
    before = len(emulator.uploads)
    again = connector.sync(config)
    assert (again.exit_code, again.not_found) == (0, 0)
    assert again.retried == again.sent > 0
    assert {"c7", "c8", "c9"} <= set(sent_ids(emulator.uploads[before:]))
    for profile_id, values in expected_profiles(database).items():
        assert emulator.profiles()[profile_id].items() >= values.items()
    assert connector.sync(config).sent == 0
    assert_invariants(config)


# -- 4. an interrupted mapping change must not re-label rows ----------------------------------


def test_an_interrupted_mapping_change_then_a_fingerprint_scheme_change_loses_nothing(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=300))
    old = write_config(emulator=emulator, target={"max_rows_per_batch": 100})
    assert connector.sync(old).sent == 300
    # The same values under a new attribute name: a full resend that dies after one batch.
    renamed = write_config(
        emulator=emulator,
        attributes={"tier2": "tier", "city": "city"},
        target={"max_rows_per_batch": 100, "max_attempts": 1},
    )

    def break_after_first(event: Event) -> None:
        if event.name == "batch_uploaded":
            emulator.faults.fail_next = 1000

    with pytest.raises(connector.TargetError):
        connector.sync(renamed, listener=break_after_first)
    emulator.faults.fail_next = 0
    state = load_config(renamed).state.path
    with duckdb.connect(str(state)) as con:  # as after a DuckDB upgrade that changed hash()
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = 'duckdb-hash/0.0.0'")
        con.execute('UPDATE "snapshot__test_sync" SET fp = xor(fp, 12345)')

    result = connector.sync(renamed)
    assert (result.exit_code, result.sent) == (0, 200)
    for profile_id, values in expected_profiles(database).items():
        assert emulator.profiles()[profile_id]["tier2"] == values["loyaltyTier"]
    assert connector.sync(renamed).sent == 0
    assert_invariants(renamed)


# -- 5. plan and --dry-run change nothing ------------------------------------------------------


def test_plan_and_dry_run_write_nothing_to_the_state_folder(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=50))
    config = write_config(emulator=emulator)

    # Before any run: no state file is created.
    connector.plan(config)
    connector.sync(config, dry_run=True)
    assert not Path(load_config(config).state.path).exists()

    assert connector.sync(config).exit_code == 0
    warehouse("UPDATE customers SET tier = 'platinum' WHERE customer_id = 'c1'")
    with duckdb.connect(str(load_config(config).state.path)) as con:
        con.execute("UPDATE ts_syncs SET fingerprint_scheme = 'duckdb-hash/0.0.0'")
        con.execute('UPDATE "snapshot__test_sync" SET fp = xor(fp, 12345)')
    before = state_files(config)

    report = connector.plan(config)
    dry = connector.sync(config, dry_run=True, out_dir=tmp_path / "out")
    cli_plan = run_cli("plan", config)
    cli_dry = run_cli("sync", "--dry-run", config)

    assert (report.changed, report.new, dry.sent) == (1, 0, 1)
    assert cli_plan.returncode == 0 and cli_dry.returncode == 0, cli_plan.stderr + cli_dry.stderr
    assert state_files(config) == before
    result = connector.sync(config)
    assert (result.sent, result.exit_code) == (1, 0)


# -- 6. status never breaks a run, and can watch one -------------------------------------------


def test_a_sync_starting_while_status_reads_the_state_waits_for_it_and_succeeds(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    from connector.state import open_store

    warehouse(CUSTOMERS.format(n=20))
    config = write_config(emulator=emulator)
    assert connector.sync(config).exit_code == 0
    warehouse("UPDATE customers SET tier = 'platinum' WHERE customer_id = 'c1'")

    log = tmp_path / "sync.log"
    with open_store(load_config(config), "read") as store:  # what `status` holds while it reads
        assert store is not None
        with log.open("w") as stderr:
            run = subprocess.Popen(
                [*CLI, "--log-format", "json", "sync", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                text=True,
            )
        # The run reaches the state file while the reader still holds it, and waits.
        wait_until(lambda: "waiting for readers" in log.read_text(), "the run to wait", run)
    run.wait(timeout=60)
    assert run.returncode == 0, log.read_text()
    assert emulator.profiles()["c1"]["loyaltyTier"] == "platinum"


def test_status_during_a_run_shows_it_running_with_its_progress(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=1000))
    emulator.faults.delay_seconds = 0.6  # 12 s of uploads: long enough on a busy machine
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 50})
    run = subprocess.Popen(
        [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: emulator.upload_count >= 2, "the second upload", run)
        cli = run_cli("status", "--json", config, timeout=30)
        assert cli.returncode == 0, cli.stderr
        report = json.loads(cli.stdout)
        running = report["running"]
        assert running["pid"] == run.pid
        assert running["progress"]["rows_read"] == 1000
        assert running["progress"]["batches"] >= 1
        text = run_cli("status", config, timeout=30)
        assert text.returncode == 0 and "running" in text.stdout
        _out, err = run.communicate(timeout=60)
        assert run.returncode == 0, err
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert connector.status(config)["running"] is None


# -- 7. back-pressure: never more unresolved batches than Target remembers ---------------------


def test_a_long_run_against_a_forgetful_slow_target_confirms_every_batch(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=3000))
    emulator.faults.update({"status_retention": 10, "incomplete_polls": 3})
    config = unpaced(
        write_config(
            emulator=emulator,
            target={"max_rows_per_batch": 100, "status_poll_interval_seconds": 0.01},
        )
    )
    result = connector.sync(config)
    assert (result.exit_code, result.batches, result.failed, result.pending_batches) == (
        0,
        30,
        0,
        0,
    )
    assert emulator.profiles() == expected_profiles(database)
    assert connector.sync(config).sent == 0
    assert_invariants(config)


# -- 8. two configs with one name in one state file ------------------------------------------


def test_two_configs_with_the_same_name_and_state_file_are_refused_before_anything_runs(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=20))
    folder = tmp_path / "configs"
    folder.mkdir()
    write_config(emulator=emulator, name="same", query="select * from customers where true")
    a = write_config(
        emulator=emulator,
        name="same",
        query="select * from customers where customer_id < 'c15'",
        file_name="configs/a.yaml",
    )
    b = write_config(
        emulator=emulator,
        name="same",
        query="select * from customers where customer_id >= 'c15'",
        file_name="configs/b.yaml",
    )
    cli = run_cli("sync", folder)
    assert cli.returncode == 2, cli.stderr
    assert str(a) in cli.stderr and str(b) in cli.stderr
    assert emulator.upload_count == 0

    # Run one after the other, the second must not be advised to --force its way through.
    assert run_cli("sync", a).returncode == 0
    second = run_cli("sync", b)
    assert second.returncode == 1
    assert "--force" not in second.stderr
    assert str(a) in second.stderr  # it names the config that wrote the snapshot


# -- 9. interruptions are recorded as what they are -------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_is_recorded_with_what_it_uploaded(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, sig: int, code: int
) -> None:
    warehouse(CUSTOMERS.format(n=300))
    emulator.faults.delay_seconds = 0.3
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 50})
    run = subprocess.Popen(
        [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: emulator.upload_count >= 3, "the third upload", run)
        run.send_signal(sig)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == code, err
    [last] = connector.status(config)["runs"][:1]
    assert last["outcome"] == "interrupted"
    assert last["exit_code"] == code
    assert "KeyboardInterrupt" not in last["message"]
    summary = last["summary"]
    assert summary["rows_read"] == 300
    assert summary["sent"] >= 100
    assert connector.status(config)["snapshot_profiles"] == summary["sent"]
    assert_invariants(config)


@pytest.mark.slow
def test_ctrl_c_at_any_moment_ends_the_run_interrupted(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    # DuckDB checks for signals inside its queries: a Ctrl-C landing in one came back as
    # "unexpected RuntimeError: Query interrupted" (exit 1) or vanished (exit 0, the run went
    # on as if nobody had asked), 4 times in 24 runs before the fix. Every moment of a run.
    warehouse(
        "CREATE OR REPLACE TABLE customers AS SELECT 'c' || i AS customer_id, "
        "'tier ' || (i % 5) AS tier, 'city ' || (i % 7) AS city FROM range(200000) t(i)"
    )
    emulator.faults.delay_seconds = 0.05
    for moment in (0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7):
        config = write_config(
            emulator=emulator,
            name=f"ctrl_c_{int(moment * 10)}",
            state={"path": str(tmp_path / f"ctrl_c_{moment}.duckdb")},
            target={"max_rows_per_batch": 20_000, "calls_per_minute": 100_000},
        )
        run = subprocess.Popen(
            [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            time.sleep(moment)
            run.send_signal(signal.SIGINT)
            _, err = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        if "started" not in err:  # stopped before its run began: nothing was recorded
            assert run.returncode in (130, -signal.SIGINT), (moment, err[-2000:])
            continue
        assert run.returncode == 130, (moment, err[-2000:])
        assert "unexpected" not in err, err[-2000:]
        runs = connector.status(config)["runs"]
        if runs:
            assert runs[0]["outcome"] == "interrupted", (moment, runs[0])
        assert_invariants(config)


def test_a_stop_signal_noted_before_the_run_opened_is_not_forgotten(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    # The CI failure of 2026-12-01: a Ctrl-C landing in a DuckDB query while the state file
    # was opened came back as "unexpected RuntimeError: Query interrupted" (exit 1), and one
    # DuckDB swallowed was forgotten when the run began (the run went on, exit 0). The CLI's
    # handler notes every stop signal; what it noted must end the run, wherever it landed.
    warehouse(
        "CREATE OR REPLACE TABLE customers AS "
        "SELECT 'c1' AS customer_id, 'gold' AS tier, 'x' AS city"
    )
    config = write_config(emulator=emulator)
    note_signal(signal.SIGINT)
    try:
        with pytest.raises(RunInterrupted):
            connector.sync(config)
    finally:
        note_signal(None)
    assert emulator.uploads == []
    assert connector.status(config)["runs"][0]["outcome"] == "interrupted"


def test_a_killed_run_is_shown_interrupted_with_what_it_uploaded(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=300))
    emulator.faults.delay_seconds = 0.3
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 50})
    run = subprocess.Popen(
        [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: emulator.upload_count >= 4, "the fourth upload", run)
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    report = connector.status(config)  # before any other run
    assert report["running"] is None
    [last] = report["runs"][:1]
    assert last["outcome"] == "interrupted"
    assert last["summary"]["rows_read"] == 300
    assert last["summary"]["sent"] >= 150
    emulator.faults.delay_seconds = 0
    assert connector.sync(config).exit_code == 0
    assert emulator.profiles() == expected_profiles(database)
    assert_invariants(config)


# -- 10. stuck and unreadable batches count as failed rows -------------------------------------


def test_a_stuck_batch_found_by_the_next_run_is_reported_as_failed_rows(
    emulator: Emulator,
    warehouse: Warehouse,
    write_config: ConfigWriter,
    webhook: Webhook,
) -> None:
    database = warehouse(CUSTOMERS.format(n=40))
    emulator.faults.update({"incomplete_polls": 1, "stuck_next": 1})
    hasty = write_config(
        emulator=emulator,
        target={"status_deadline_seconds": 0},
        notify={"webhook_url": webhook.url},
    )
    first = connector.sync(hasty)
    assert first.pending_batches == 1
    emulator.faults.incomplete_polls = 0

    second = connector.sync(hasty)
    # Target never applied them: failed rows of an earlier batch, resent by this very run.
    assert second.resolved_from_earlier["reverted_rows"] == 40
    assert second.retried == second.sent == 40
    assert second.exit_code == 0  # and delivered now
    assert "40 row(s) of earlier batches were not applied by Target" in second.message
    [post] = [p for p in webhook.received if p["json"]["run_id"] == second.run_id]
    assert "failed_rows" in post["json"]["reasons"]
    assert emulator.profiles() == expected_profiles(database)
    assert_invariants(hasty)


# -- 11. cleanup must not hide the root cause -------------------------------------------------


@pytest.mark.slow
def test_a_state_write_failure_is_reported_as_itself(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=100_000))
    config = write_config(emulator=emulator)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))

    run = subprocess.run(
        [*CLI, "sync", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
        check=False,
    )
    assert run.returncode == 1
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("error: sync 'test_sync': writing the state file"), run.stderr
    assert "File too large" in error and "rerunning is safe" in error
    assert "invalidated" not in run.stderr and "Traceback" not in run.stderr


# -- 12. a damaged state file has a way out ---------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_damaged_state_file_names_itself_and_reset_recovers(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, damage: str
) -> None:
    database = warehouse(CUSTOMERS.format(n=2000))
    config = write_config(emulator=emulator)
    assert connector.sync(config).exit_code == 0
    state = Path(load_config(config).state.path)
    data = state.read_bytes()
    damaged = {"garbage": os.urandom(len(data)), "truncated": data[: len(data) // 3], "empty": b""}[
        damage
    ]
    state.write_bytes(damaged)
    for command in (["sync"], ["plan"], ["status"]):
        cli = run_cli(*command, config)
        assert cli.returncode == 1, (command, cli.stderr)
        [line] = cli.stderr.strip().splitlines()
        assert str(state) in line and "target-sync reset" in line, line

    cli = run_cli("reset", "--yes", config)
    assert cli.returncode == 0, cli.stderr
    kept = [p for p in state.parent.iterdir() if ".damaged-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == damaged  # kept aside, as it was
    assert str(kept[0]) in cli.stdout
    before = emulator.upload_count
    assert connector.sync(config).sent == 2000
    assert emulator.upload_count > before
    assert emulator.profiles() == expected_profiles(database)
    assert_invariants(config)


# -- upgrading a state file of schema 1 resends nothing ----------------------------------------

SCHEMA_1 = """
CREATE TABLE ts_meta (key VARCHAR, value VARCHAR);
INSERT INTO ts_meta VALUES ('schema', '1');
CREATE TABLE ts_syncs (sync VARCHAR, mapping_signature VARCHAR, mapping VARCHAR,
                       fingerprint_scheme VARCHAR, updated_at TIMESTAMP);
CREATE TABLE ts_runs (run_id VARCHAR, sync VARCHAR, started_at TIMESTAMP,
                      finished_at TIMESTAMP, dry_run BOOLEAN, outcome VARCHAR,
                      exit_code INTEGER, summary VARCHAR, message VARCHAR);
CREATE TABLE ts_batches (run_id VARCHAR, sync VARCHAR, seq INTEGER, kind VARCHAR,
                         batch_id VARCHAR, status_url VARCHAR, rows BIGINT, bytes BIGINT,
                         state VARCHAR, detail VARCHAR, uploaded_at TIMESTAMP,
                         resolved_at TIMESTAMP);
CREATE TABLE ts_failed (run_id VARCHAR, sync VARCHAR, batch_id VARCHAR, id VARCHAR,
                        reason VARCHAR);
CREATE TABLE ts_rejects (run_id VARCHAR, sync VARCHAR, id VARCHAR, reason VARCHAR,
                         detail VARCHAR);
CREATE TABLE snapshot__test_sync (id VARCHAR, cells VARCHAR, fp UBIGINT, batch_id VARCHAR,
                                  gone BOOLEAN);
"""


def test_a_schema_1_state_file_is_upgraded_and_its_unchanged_profiles_are_not_resent(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    from connector.mapping import mapping_description, mapping_signature
    from connector.state.duckdb import FINGERPRINT_SCHEME

    warehouse(CUSTOMERS.format(n=40))
    path = write_config(emulator=emulator)
    config = load_config(path)
    signature = mapping_signature(config)
    state = Path(config.state.path)
    state.parent.mkdir(parents=True)
    with duckdb.connect(str(state)) as con:  # what target-sync 0.1 left behind
        con.execute(SCHEMA_1)
        con.execute(
            "INSERT INTO ts_syncs VALUES ('test_sync', ?, ?, ?, now())",
            [signature, json.dumps(mapping_description(config)), FINGERPRINT_SCHEME],
        )
        con.execute(f"ATTACH '{warehouse('SELECT 1')}' AS wh (READ_ONLY)")
        con.execute(
            "INSERT INTO snapshot__test_sync SELECT customer_id, "
            "url_encode(coalesce(tier, '')) || ',' || url_encode(coalesce(city, '')), "
            "hash(coalesce(tier, ''), coalesce(city, ''), ?), 'old-batch', false "
            "FROM wh.customers",
            [signature],
        )
    warehouse("UPDATE customers SET city = 'Rome' WHERE customer_id = 'c3'")

    report = connector.plan(path)  # on a private copy: the file itself stays at schema 1
    assert (report.new, report.changed, report.unchanged) == (0, 1, 39)
    assert report.full_resend_reason is None

    result = connector.sync(path)
    assert (result.exit_code, result.sent, result.full_resend_reason) == (0, 1, None)
    assert sent_ids(emulator.uploads) == ["c3"]
    with duckdb.connect(str(state), read_only=True) as con:
        assert con.execute("SELECT value FROM ts_meta WHERE key = 'schema'").fetchall() == [("2",)]
    assert_invariants(path)
    assert connector.sync(path).sent == 0
