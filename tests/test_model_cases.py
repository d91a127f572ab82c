"""Snapshot lies found by model-based testing (``tests/test_model.py``), each kept as a plain
test over real HTTP against the emulator: the case as it was shrunk, and the fix's proof.

The promise under test: every snapshot row with a fingerprint was confirmed by Target with
exactly its cells (``tests/snapshot_truth.py``), and a clean run leaves Target holding the
source.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import connector
from connector.config import load_config
from connector.emulator import Emulator
from connector.operations import invariant_violations

from .conftest import CLI, ConfigWriter, run_cli
from .snapshot_truth import read_snapshot, untrue_claims
from .test_integrity import expected_profiles

Warehouse = Callable[[str], Path]

CUSTOMERS = """
CREATE OR REPLACE TABLE customers AS
SELECT 'c' || i AS customer_id, 'tier ' || i AS tier, 'city ' || (i % 7) AS city
FROM range({n}) t(i)
"""
GONE = {"set": {"loyaltyTier": "gone"}}


def assert_truthful(config: Path, emulator: Emulator) -> None:
    loaded = load_config(config)
    assert invariant_violations(loaded) == []
    assert untrue_claims(read_snapshot(loaded), emulator.profiles()) == {}


def kill_during_upload(config: Path, emulator: Emulator, uploads: int = 1) -> None:
    """Run a sync in a subprocess and SIGKILL it once Target has applied ``uploads`` more
    batches but before their answers arrive (the emulator holds each answer back)."""
    emulator.faults.delay_seconds = 30
    start = emulator.upload_count
    run = subprocess.Popen(
        [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while emulator.upload_count < start + uploads:
            if run.poll() is not None:
                pytest.fail(f"the run ended before its upload: {run.communicate()}")
            if time.monotonic() > deadline:
                pytest.fail("timed out waiting for the upload")
            time.sleep(0.005)
        run.send_signal(signal.SIGKILL)
        run.wait(10)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        emulator.faults.delay_seconds = 0


# -- (a) a reverted removal is owed, not confirmed ---------------------------------------------


def test_a_removal_whose_status_is_lost_is_resent_when_the_profile_comes_back(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator, on_removed=GONE)
    assert connector.sync(config).sent == 10
    warehouse("DELETE FROM customers WHERE customer_id IN ('c0', 'c1')")
    # Target applies the removal but forgets its status: the batch is reverted whole.
    emulator.faults.status_retention = 0
    lost = connector.sync(config)
    assert (lost.removed_sent, lost.failed, lost.exit_code) == (2, 2, 3)
    assert emulator.profiles()["c0"]["loyaltyTier"] == "gone"
    emulator.faults.status_retention = None
    assert_truthful(config, emulator)

    # The profiles come back with the values they had: Target holds 'gone', so they are owed.
    warehouse(CUSTOMERS.format(n=10))
    back = connector.sync(config)
    assert (back.exit_code, back.retried, back.sent) == (0, 2, 2)
    assert emulator.profiles() == expected_profiles(database)
    assert connector.sync(config).sent == 0
    assert_truthful(config, emulator)


def test_a_reverted_removal_is_sent_again_while_the_profile_stays_away(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator, on_removed=GONE)
    assert connector.sync(config).sent == 10
    warehouse("DELETE FROM customers WHERE customer_id IN ('c0', 'c1')")
    emulator.faults.stuck_next = 1  # nothing of it applied
    assert connector.sync(config).failed == 2
    assert emulator.profiles()["c0"]["loyaltyTier"] == "tier 0"
    assert_truthful(config, emulator)

    again = connector.sync(config)
    assert (again.exit_code, again.removed, again.removed_sent) == (0, 2, 2)
    assert emulator.profiles()["c0"]["loyaltyTier"] == "gone"
    assert connector.status(config)["snapshot_profiles"] == 8
    assert connector.sync(config).batches == 0
    for pid, values in expected_profiles(database).items():
        assert emulator.profiles()[pid] == values
    assert_truthful(config, emulator)


# -- (b) a batch Target applied but the run never recorded ------------------------------------


def test_a_run_killed_before_recording_an_applied_batch_leaves_its_profiles_owed(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator)
    assert connector.sync(config).sent == 10
    warehouse("UPDATE customers SET tier = 'new ' || tier")
    kill_during_upload(config, emulator)
    assert emulator.profiles()["c0"]["loyaltyTier"] == "new tier 0"
    assert_truthful(config, emulator)

    # Back to the values the snapshot holds: Target holds the others, so they are resent.
    warehouse(CUSTOMERS.format(n=10))
    state = Path(load_config(config).state.path)
    before = state.read_bytes()
    report = connector.plan(config)
    assert (report.retried, report.unchanged, report.unconfirmed) == (10, 0, 10)
    shown = run_cli("plan", config)
    assert shown.returncode == 0, shown.stderr
    assert "10 profiles of an upload an earlier run never recorded" in shown.stdout
    dry = connector.sync(config, dry_run=True)
    assert (dry.retried, dry.sent) == (10, 10)
    assert state.read_bytes() == before  # plan and dry runs still write nothing
    result = connector.sync(config)
    assert (result.exit_code, result.retried, result.sent) == (0, 10, 10)
    assert emulator.profiles() == expected_profiles(database)
    assert connector.sync(config).sent == 0
    assert_truthful(config, emulator)


def test_new_profiles_of_an_unrecorded_batch_are_removed_when_they_leave_the_source(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=5))
    config = write_config(emulator=emulator, on_removed=GONE)
    assert connector.sync(config).sent == 5
    warehouse(CUSTOMERS.format(n=10))
    kill_during_upload(config, emulator)
    assert "c9" in emulator.profiles()

    warehouse("DELETE FROM customers WHERE customer_id IN ('c5', 'c6', 'c7', 'c8', 'c9')")
    result = connector.sync(config)
    assert (result.exit_code, result.removed_sent) == (0, 5)
    for i in range(5, 10):
        assert emulator.profiles()[f"c{i}"]["loyaltyTier"] == "gone"
    assert emulator.profiles()["c0"] == expected_profiles(database)["c0"]
    assert connector.status(config)["snapshot_profiles"] == 5
    assert_truthful(config, emulator)


def test_a_first_run_killed_before_recording_its_batch_resends_it(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator)
    kill_during_upload(config, emulator)
    result = connector.sync(config)
    assert (result.exit_code, result.sent) == (0, 10)
    assert emulator.profiles() == expected_profiles(database)
    assert connector.sync(config).sent == 0
    assert_truthful(config, emulator)


def test_reset_forgets_the_ids_of_an_unrecorded_batch(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator)
    assert connector.sync(config).sent == 10
    warehouse("UPDATE customers SET tier = 'new ' || tier")
    kill_during_upload(config, emulator)
    assert read_snapshot(load_config(config)).sending != []
    connector.reset(config)
    assert read_snapshot(load_config(config)).sending == []
    assert connector.sync(config).new == 10


# -- (c) a first run killed while it creates the state file -----------------------------------


def test_a_first_run_killed_while_creating_the_state_file_leaves_a_usable_one(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    database = warehouse(CUSTOMERS.format(n=10))
    for attempt in range(5):
        state = tmp_path / f"state{attempt}" / "state.duckdb"
        config = write_config(
            emulator=emulator, state={"path": str(state)}, file_name=f"sync{attempt}.yaml"
        )
        run = subprocess.Popen(
            [*CLI, "sync", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            # Killed the moment the file (or the one it is built in) shows up.
            building = state.with_name(state.name + ".creating")
            while run.poll() is None and not (state.exists() or building.exists()):
                time.sleep(0.0002)
            run.kill()
        finally:
            run.wait()
        assert connector.status(config)["snapshot_profiles"] in (0, 10)
        assert connector.sync(config, dry_run=True).exit_code == 0
        assert connector.sync(config).exit_code == 0
        assert emulator.profiles() == expected_profiles(database)
        assert connector.sync(config).sent == 0
        assert_truthful(config, emulator)
