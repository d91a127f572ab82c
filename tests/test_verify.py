"""`target-sync verify` (issue #12): read a random sample back from Target and compare it with
the snapshot, against the emulator over real HTTP, with its silent-loss knob."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

import connector
from connector.config import SyncConfig, load_config
from connector.emulator import Emulator
from connector.verify import verify, wilson_interval

from .conftest import CUSTOMERS, ConfigWriter, run_cli

Warehouse = Callable[[str], Path]
TOKEN = "tok-verify-8Jd2"


def unpaced(path: Path) -> SyncConfig:
    """The config at ``path`` without the 40-calls-a-minute pace (thousands of reads)."""
    config = load_config(path)
    target = config.target.model_copy(update={"calls_per_minute": 1_000_000})
    return config.model_copy(update={"target": target})


def lost_ids(emulator: Emulator) -> set[str]:
    return {pid for upload in emulator.uploads for pid in upload.lost_ids}


def snapshot_rows(config: SyncConfig) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(config.state.path), read_only=True) as con:
        return con.execute(f'SELECT * FROM "snapshot__{config.name}" ORDER BY id').fetchall()


def age_batches(config: SyncConfig, hours: float) -> None:
    """Pretend every batch went out ``hours`` ago (past Target's 24 h to show updates)."""
    with duckdb.connect(str(config.state.path)) as con:
        con.execute(
            f"UPDATE ts_batches SET uploaded_at = uploaded_at - INTERVAL {int(hours * 60)} MINUTE"
        )


def test_wilson_interval_known_values() -> None:
    low, high = wilson_interval(10, 1000)
    assert (round(low, 5), round(high, 5)) == (0.00544, 0.01831)
    low, high = wilson_interval(0, 200)
    assert low == 0.0 and round(high, 4) == 0.0188  # 0 of 200 is not "exactly 0%"
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(5, 5)[1] == 1.0


@pytest.mark.slow
def test_one_percent_lost_is_reported_as_about_one_percent(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5000))
    config = unpaced(write_config(emulator=emulator))
    emulator.faults.update({"lose_fraction": 0.01, "seed": 3})
    result = connector.sync(config)
    assert result.exit_code == 0 and result.sent == 5000  # Target said all were applied
    lost = lost_ids(emulator)
    true_rate = len(lost) / 5000
    assert 0.006 < true_rate < 0.014
    before = snapshot_rows(config)

    report = verify(config, sample=2000, settle_minutes=0, seed=11)

    assert report.sampled == 2000 and report.snapshot_profiles == 5000
    # Lost on a first sync: Target has no such profile. Exactly the lost ones sampled.
    assert report.mismatched == 0 and report.too_recent == 0
    assert set(report.not_found_ids) <= lost and report.not_found == len(report.not_found_ids)
    assert report.matched + report.not_found == 2000
    assert report.mismatch_rate is not None
    assert report.interval["low"] <= true_rate <= report.interval["high"]
    assert 0.004 < report.mismatch_rate < 0.02
    assert report.exit_code == 3  # over the default 0.5%
    assert snapshot_rows(config) == before  # verify changed nothing


@pytest.mark.slow
def test_lost_updates_are_mismatches_naming_attribute_expected_and_found(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    database = warehouse(CUSTOMERS.format(n=5000))
    config = unpaced(write_config(emulator=emulator))
    assert connector.sync(config).exit_code == 0

    clean = verify(config, sample=2000, seed=5)  # nothing lost: nothing differs
    assert (clean.matched, clean.mismatched, clean.not_found, clean.too_recent) == (2000, 0, 0, 0)
    assert clean.mismatch_rate == 0.0 and clean.exit_code == 0
    assert clean.interval["high"] < 0.005

    with duckdb.connect(str(database)) as con:
        con.execute("UPDATE customers SET city = city || ' (new)'")
    emulator.faults.update({"lose_fraction": 0.01, "seed": 8})
    assert connector.sync(config).sent == 5000
    lost = lost_ids(emulator)
    age_batches(config, hours=25)

    report = verify(config, sample=2000, seed=5)  # the default 24 h window has passed
    assert report.not_found == 0 and report.too_recent == 0
    assert set(report.mismatched_ids) <= lost and report.mismatched >= 5
    assert report.interval["low"] <= len(lost) / 5000 <= report.interval["high"]
    for entry in report.mismatches:
        assert entry["attribute"] == "city"
        assert entry["expected"] == entry["found"] + " (new)"  # the old value stayed


def test_profiles_too_recent_to_judge_are_not_counted_until_they_settle(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=300))
    config = unpaced(write_config(emulator=emulator))
    emulator.faults.update({"lose_fraction": 0.05, "seed": 2})
    connector.sync(config)
    lost = lost_ids(emulator)
    assert lost

    recent = verify(config, sample=300)  # just sent: the lost may still show up
    assert recent.too_recent == len(lost) and set(recent.too_recent_ids) == lost
    assert recent.matched == 300 - len(lost)  # what already shows counts as matched
    assert recent.mismatch_rate == 0.0 and recent.exit_code == 0

    age_batches(config, hours=23)
    assert verify(config, sample=300).too_recent == len(lost)
    age_batches(config, hours=2)
    settled = verify(config, sample=300)
    assert settled.too_recent == 0 and settled.not_found == len(lost)
    assert settled.exit_code == 3


def test_empty_cells_sent_nothing_so_anything_goes(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=30))  # a third of the tiers are NULL: sent as empty cells
    config = unpaced(write_config(emulator=emulator))
    connector.sync(config)
    for pid, values in emulator.profiles().items():
        if "loyaltyTier" not in values:
            emulator.add_profile(pid, {"loyaltyTier": "set by someone else"})
    report = verify(config, sample=30)
    assert report.matched == 30 and report.mismatches == []


def test_the_cli_json_report_and_exit_codes(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=40))
    path = write_config(emulator=emulator, target={"calls_per_minute": 50})
    emulator.faults.update({"lose_fraction": 0.1, "seed": 4})
    assert run_cli("sync", path).returncode == 0
    lost = lost_ids(emulator)
    assert 1 <= len(lost) <= 10

    cli = run_cli("verify", path, "--sample", "40", "--settle-minutes", "0", "--json")
    assert cli.returncode == 3, cli.stderr
    report = json.loads(cli.stdout)
    assert set(report) == {
        "sync",
        "client_code",
        "snapshot_profiles",
        "sampled",
        "judged",
        "matched",
        "mismatched",
        "not_found",
        "too_recent",
        "mismatch_rate",
        "interval",
        "max_mismatch",
        "settle_minutes",
        "seed",
        "mismatches",
        "mismatched_ids",
        "not_found_ids",
        "too_recent_ids",
        "marked_for_resend",
        "exit_code",
        "verdict",
    }
    assert report["sampled"] == report["judged"] == 40
    assert report["not_found"] == len(lost) and set(report["not_found_ids"]) == lost
    assert report["mismatch_rate"] == len(lost) / 40
    assert set(report["interval"]) == {"low", "high", "confidence"}
    assert report["exit_code"] == 3 and report["marked_for_resend"] is None

    lenient = run_cli(
        "verify", path, "--sample", "40", "--settle-minutes", "0", "--max-mismatch", "0.5"
    )
    assert lenient.returncode == 0, lenient.stderr
    assert f"  not found   {len(lost)}" in lenient.stdout
    assert lenient.stdout.splitlines()[-1].startswith(f"OK: {len(lost)} of 40 judged profiles")
    assert "reading up to 40 profiles of sync 'test_sync' back from Target" in lenient.stderr

    same = run_cli("verify", path, "--sample", "10", "--seed", "9", "--json")
    again = run_cli("verify", path, "--sample", "10", "--seed", "9", "--json")
    drawn = [json.loads(r.stdout) for r in (same, again)]
    assert drawn[0]["seed"] == 9 and drawn[0] == drawn[1]  # the same sample again


def test_resend_mismatched_marks_them_and_the_next_run_sends_only_those(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=200))
    path = write_config(emulator=emulator)
    config = unpaced(path)
    emulator.faults.update({"lose_fraction": 0.05, "seed": 6})
    connector.sync(config)
    lost = lost_ids(emulator)
    emulator.faults.lose_fraction = 0.0

    report = verify(config, sample=200, settle_minutes=0, resend_mismatched=True)
    assert report.marked_for_resend == len(lost) == report.not_found

    uploads = len(emulator.uploads)
    again = connector.sync(config)
    assert again.retried == len(lost) and again.sent == len(lost)
    resent = {row[0] for upload in emulator.uploads[uploads:] for row in upload.rows}
    assert resent == lost
    final = verify(config, sample=200, settle_minutes=0)
    assert (final.matched, final.exit_code) == (200, 0)


def test_verify_reads_with_the_token_and_stops_when_target_refuses_it(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=20))
    emulator.faults.required_token = TOKEN
    good = write_config(emulator=emulator, target={"auth_token": TOKEN, "calls_per_minute": 50})
    assert run_cli("sync", good).returncode == 0
    ok = run_cli("verify", good, "--sample", "20")
    assert ok.returncode == 0, ok.stderr
    assert "  matched     20" in ok.stdout

    bad = write_config(
        emulator=emulator, target={"auth_token": "tok-old-1111"}, file_name="bad.yaml"
    )
    refused = run_cli("verify", bad, "--sample", "20")
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "cannot verify" in errors[0]
    assert "refused the configured token" in errors[0]
    assert "tok-old-1111" not in refused.stderr + refused.stdout and "Traceback" not in (
        refused.stderr
    )


def test_pcid_profiles_are_read_back_by_their_tnt_id(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=20))
    config = unpaced(
        write_config(emulator=emulator, identity={"column": "customer_id", "type": "pcId"})
    )
    connector.sync(config)
    assert verify(config, sample=20).matched == 20
    emulator.reset()  # Target forgot them all
    gone = verify(config, sample=20, settle_minutes=0)
    assert gone.not_found == 20 and gone.mismatch_rate == 1.0


def test_nothing_to_verify_before_the_first_sync(
    emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    path = write_config(emulator=emulator)
    cli = run_cli("verify", path, "--json")
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["sampled"] == 0 and report["mismatch_rate"] is None
    assert report["verdict"] == "nothing to judge: the snapshot is empty"
    assert emulator.calls == 0


def test_the_cli_defaults_are_the_librarys() -> None:
    """The CLI repeats the defaults (importing verify would load DuckDB for --help)."""
    from connector import verify as module
    from connector.cli import main

    defaults = {p.name: p.default for p in main.commands["verify"].params}
    assert defaults["sample"] == module.DEFAULT_SAMPLE
    assert defaults["max_mismatch"] == module.DEFAULT_MAX_MISMATCH
    assert defaults["settle_minutes"] == module.DEFAULT_SETTLE_MINUTES
