"""Running it unattended (issue #7): JSON logs, summaries, run history, plan, several
configs, the Python API with its orchestrator examples, and webhook alerts. Real HTTP against
the Target emulator and a webhook served on loopback; no mocks of our code."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import connector
from connector.emulator import Emulator
from connector.result import Event

from .conftest import CUSTOMERS, HOOK_TOKEN, ConfigWriter, Webhook, run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOKEN = "tok-s3cr3t-value-123"

# Two rows Target must never see: an id with '+', and a duplicate id.
BAD_ROWS = "INSERT INTO customers VALUES ('bad+id', 'gold', 'x'), ('c1', 'gold', 'dup')"


def _json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line, parsed; fails on any line that is not one JSON object."""
    events = []
    for line in stderr.splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stderr line is not JSON: {line!r}")
        assert isinstance(value, dict), line
        events.append(value)
    return events


def _accepted(emulator: Emulator) -> list[Any]:
    return [u for u in emulator.uploads if u.batch_id is not None]


# -- structured logs -----------------------------------------------------------------------


def test_json_log_lines_carry_the_events_and_match_what_the_emulator_received(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=2000) + ";" + BAD_ROWS)
    emulator.faults.required_token = TOKEN
    emulator.faults.fail_next = 1  # the first upload gets a 503 and is retried
    config = write_config(
        emulator=emulator, target={"max_rows_per_batch": 700, "auth_token": TOKEN}
    )

    cli = run_cli("--log-format", "json", "sync", config)

    assert cli.returncode == 3, cli.stderr  # delivered, but rows were rejected
    assert cli.stdout == ""  # JSON mode: everything is on stderr
    assert TOKEN not in cli.stderr
    events = _json_lines(cli.stderr)
    for event in events:
        assert {"ts", "level", "event"} <= event.keys()
    names = [e["event"] for e in events]
    assert names[0] == "run_start"
    assert names.count("run_end") == 1
    stages = [e["stage"] for e in events if e["event"] == "stage_done"]
    assert stages == ["read", "diff", "upload", "status"]
    for event in (e for e in events if e["event"] == "stage_done"):
        assert event["seconds"] >= 0 and event["sync"] == "test_sync"

    retries = [e for e in events if e["event"] == "retry"]
    assert len(retries) == 1 and "503" in retries[0]["reason"]
    assert retries[0]["level"] == "warning"

    uploaded = [e for e in events if e["event"] == "batch_uploaded"]
    accepted = _accepted(emulator)
    assert len(uploaded) == len(accepted) == 3
    for event, upload in zip(uploaded, accepted, strict=True):
        assert event["batch_id"] == upload.batch_id
        assert event["rows"] == len(upload.rows)
        assert event["bytes"] == len(upload.body)
        assert event["http_status"] == upload.http_status == 200
        assert event["elapsed"] >= 0
    assert [e["retries"] for e in uploaded] == [1, 0, 0]

    end = next(e for e in events if e["event"] == "run_end")
    assert end["level"] == "warning"  # exit 3
    assert end["sent"] == sum(len(u.rows) for u in accepted) == 1999
    assert end["bytes_sent"] == sum(len(u.body) for u in accepted)
    assert end["batches"] == 3
    assert end["rejected"] == {"duplicate_id": 2, "id_has_plus_or_slash": 1}
    assert end["rows_read"] == 2002
    assert (end["new"], end["changed"], end["removed"], end["unchanged"]) == (1999, 0, 0, 0)
    assert end["exit_code"] == 3 and end["outcome"] == "partial"
    assert set(end["stage_seconds"]) == {"read", "diff", "upload", "status"}
    assert "retried" in end["next_step"]
    statuses = [e for e in events if e["event"] == "batch_status"]
    assert sorted(e["batch_id"] for e in statuses) == sorted(u.batch_id for u in accepted)


def test_every_stderr_line_is_json_also_for_errors(
    warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    # Nothing listens on port 9: the upload fails after its retries.
    config = write_config(target={"max_attempts": 2, "auth_token": TOKEN})
    cli = run_cli("--log-format", "json", "sync", config)
    assert cli.returncode == 1
    events = _json_lines(cli.stderr)
    assert TOKEN not in cli.stderr
    last = events[-1]
    assert last["event"] == "error" and last["level"] == "error"
    assert last["exit_code"] == 1 and last["sync"] == "test_sync"
    assert "rerunning is safe" in last["message"]
    assert any(e["event"] == "run_end" and e["outcome"] == "failed" for e in events)

    # A config error, given after the command name, in JSON too.
    broken = tmp_path / "broken.yaml"
    broken.write_text(config.read_text().replace("test_sync", "${NOT_SET_ANYWHERE}"))
    cli = run_cli("sync", "--log-format", "json", broken)
    assert cli.returncode == 2
    (error,) = _json_lines(cli.stderr)
    assert error["event"] == "error" and "NOT_SET_ANYWHERE" in error["message"]

    # A usage error, before any command runs.
    cli = run_cli("--log-format", "json", "sync")
    assert cli.returncode == 2
    (error,) = _json_lines(cli.stderr)
    assert error["event"] == "error" and "CONFIGS" in error["message"]

    # status and plan errors too (there is no such file).
    for command in ("status", "plan"):
        cli = run_cli("--log-format", "json", command, tmp_path / "missing.yaml")
        assert cli.returncode == 2
        (error,) = _json_lines(cli.stderr)
        assert error["event"] == "error" and "missing.yaml" in error["message"]


# -- the summary ----------------------------------------------------------------------------


def test_text_summary_shows_the_counts_the_emulator_received(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=1200) + ";" + BAD_ROWS)
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 500})
    assert run_cli("sync", config).returncode == 3
    warehouse(
        "UPDATE customers SET tier = NULL WHERE customer_id IN ('c0', 'c3');"
        "UPDATE customers SET city = 'Oslo' WHERE customer_id = 'c4';"
        "DELETE FROM customers WHERE customer_id = 'c7'"
    )
    before = len(_accepted(emulator))

    cli = run_cli("sync", config)

    assert cli.returncode == 3, cli.stderr
    last = _accepted(emulator)[before:]
    assert sum(len(u.rows) for u in last) == 3
    out = cli.stdout
    assert "sync 'test_sync': finished with rows left behind" in out
    assert "read         1,201 rows" in out
    assert "rejected     3 rows not sent (duplicate_id: 2, id_has_plus_or_slash: 1)" in out
    assert "diff         0 new, 3 changed, 1 removed, 1,195 unchanged" in out
    assert f"sent         3 profiles in 1 batch, {len(last[0].body):,} bytes" in out
    assert "failed       0 rows failed in Target" in out
    assert "stale NULLs  loyaltyTier 2 (Target keeps the old value)" in out
    assert "stages       read " in out and "upload " in out and "status " in out
    assert "next         rejected rows are retried" in out


# -- run history, status and plan ------------------------------------------------------------


def test_status_json_and_plan_json_agree_with_the_run_history(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=300) + ";" + BAD_ROWS)
    emulator.faults.failed_ids = {"c5", "c6"}
    config = write_config(emulator=emulator)
    first = connector.sync(config)
    assert (first.failed, first.exit_code) == (2, 3)
    emulator.faults.failed_ids = set()
    warehouse(
        "UPDATE customers SET tier = 'platinum' WHERE customer_id IN ('c1', 'c4', 'c10');"
        "UPDATE customers SET city = 'Rome' WHERE customer_id = 'c4';"
        "DELETE FROM customers WHERE customer_id = 'c9';"
        "INSERT INTO customers VALUES ('n1', 'gold', 'Oslo')"
    )

    cli = run_cli("plan", config, "--json", "--samples", "10")
    assert cli.returncode == 0, cli.stderr
    plan = json.loads(cli.stdout)
    # c5/c6 failed last time, so they are retried (not new); c1 is a rejected duplicate.
    assert (plan["new"], plan["changed"], plan["retried"], plan["removed"]) == (1, 2, 2, 1)
    assert plan["attribute_changes"] == {"loyaltyTier": 2, "city": 1}
    assert plan["rejected"] == {"duplicate_id": 2, "id_has_plus_or_slash": 1}
    assert plan["guardrail"] == "pass" and plan["full_resend_reason"] is None
    sample = next(s for s in plan["samples"] if s["id"] == "c4")
    assert sample["old"] == {"loyaltyTier": "silver", "city": "city 4"}
    assert sample["new"] == {"loyaltyTier": "platinum", "city": "Rome"}
    text = run_cli("plan", config, "--samples", "10").stdout
    assert "loyaltyTier changed for 2 profiles" in text and "city changed for 1 profile" in text
    assert "'silver' → 'platinum'" in text

    second = connector.sync(config)
    cli = run_cli("status", config, "--json")
    assert cli.returncode == 0, cli.stderr
    status = json.loads(cli.stdout)
    runs = status["runs"]
    assert [r["run_id"] for r in runs] == [second.run_id, first.run_id]
    latest = runs[0]["summary"]
    for key in ("new", "changed", "retried", "removed", "unchanged", "rejected"):
        assert latest[key] == plan[key] == getattr(second, key), key
    assert latest["sent"] == len(_accepted(emulator)[-1].rows) == 5
    assert runs[1]["outcome"] == "partial" and runs[1]["summary"]["failed"] == 2
    assert status["snapshot_profiles"] == len(emulator.profiles()) - 1  # c9 left, kept in Target
    assert status["pending_batches"] == []
    assert {(r["id"], r["reason"]) for r in status["rejects"]} == {
        ("bad+id", "id_has_plus_or_slash"),
        ("c1", "duplicate_id"),
    }

    text = run_cli("status", config).stdout
    assert second.run_id in text and first.run_id in text
    assert "rejected rows of the last run (duplicate_id: 2, id_has_plus_or_slash: 1)" in text
    assert "'bad+id': id_has_plus_or_slash" in text


def test_status_lists_failed_rows_and_keep_runs_bounds_the_history(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=50))
    emulator.faults.failed_ids = {"c3"}
    config = write_config(emulator=emulator, state={"keep_runs": 2})  # state next to it
    runs = [connector.sync(config) for _ in range(3)]
    status = connector.status(config, runs=10)
    assert [r["run_id"] for r in status["runs"]] == [runs[2].run_id, runs[1].run_id]
    # Every run resends c3, and Target fails it every time.
    assert [r.failed for r in runs] == [1, 1, 1]
    assert [(r["id"], r["reason"]) for r in status["failed_rows"]] == [
        ("c3", "failed in batch status")
    ]
    cli = run_cli("status", config)
    assert "failed rows of the last run (resent by the next run): 1" in cli.stdout
    assert runs[0].run_id not in cli.stdout


def test_status_shows_pending_batches_until_the_next_run_resolves_them(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=30))
    emulator.faults.incomplete_polls = 2  # each batch answers "incomplete" twice
    # With no time to wait, the run polls once and leaves the batch pending.
    config = write_config(emulator=emulator, target={"status_deadline_seconds": 0})
    first = connector.sync(config)
    assert (first.pending_batches, first.exit_code, first.outcome) == (1, 0, "delivered")
    (upload,) = _accepted(emulator)

    status = json.loads(run_cli("status", config, "--json").stdout)
    assert [(b["batch_id"], b["rows"]) for b in status["pending_batches"]] == [
        (upload.batch_id, 30)
    ]
    text = run_cli("status", config).stdout
    assert "pending batches (1; the next run checks them first):" in text
    assert f"{upload.batch_id} (30 rows) uploaded by run {first.run_id}" in text

    write_config(emulator=emulator)  # the default deadline again
    cli = run_cli("sync", config)
    assert cli.returncode == 0, cli.stderr
    assert re.search(r"earlier +1 batch of an earlier run confirmed, 0 rows reverted", cli.stdout)
    assert connector.status(config)["pending_batches"] == []
    assert connector.status(config)["runs"][0]["summary"]["resolved_from_earlier"] == {
        "complete": 1,
        "reverted_rows": 0,
        "not_found": 0,
        "still_pending": 0,
    }


# -- several configs -------------------------------------------------------------------------


def test_a_folder_of_configs_runs_in_turn_with_the_worst_exit_code_and_a_conflict_warning(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=40) + ";" + BAD_ROWS)
    folder = tmp_path / "configs"
    folder.mkdir()
    good = write_config(
        emulator=emulator,
        name="a_tiers",
        query="select * from customers where customer_id not in ('bad+id') "
        "and not (customer_id = 'c1' and city = 'dup')",
        file_name="configs/a.yaml",
    )
    partial = write_config(
        emulator=emulator,
        name="b_cities",
        attributes={"city": "city"},
        file_name="configs/b.yaml",
    )
    failing = write_config(name="c_down", target={"max_attempts": 1}, file_name="configs/c.yaml")
    assert [p.parent for p in (good, partial, failing)] == [folder] * 3

    cli = run_cli("sync", folder)

    assert cli.returncode == 1, cli.stdout + cli.stderr  # the worst: c_down failed
    # Warned before any run started: b_cities writes only city, the others loyaltyTier too.
    assert cli.stderr.index("different attributes") < cli.stderr.index(" started")
    assert "only sync 'a_tiers': loyaltyTier" in cli.stderr
    assert "only sync 'c_down': loyaltyTier" in cli.stderr
    lines = cli.stdout.splitlines()
    assert "3 syncs run, one after the other:" in lines
    overview = "\n".join(lines[lines.index("3 syncs run, one after the other:") :])
    assert "a_tiers   delivered      exit 0" in overview
    assert "b_cities  partial        exit 3" in overview
    assert "c_down    failed         exit 1" in overview
    assert "exit code 1 (the worst of the runs)" in overview

    # JSON: each run has its own run_end, then one closing event with every outcome.
    cli = run_cli("--log-format", "json", "sync", good, partial)
    assert cli.returncode == 3
    events = _json_lines(cli.stderr)
    assert events[0]["event"] == "warning" and "different attributes" in events[0]["message"]
    assert [e["sync"] for e in events if e["event"] == "run_end"] == ["a_tiers", "b_cities"]
    assert events[-1]["event"] == "syncs_done" and events[-1]["exit_code"] == 3

    # A config error is its own outcome, and the worst exit code (2).
    (folder / "d.yaml").write_text("name: [unclosed\n")
    cli = run_cli("sync", good, folder / "d.yaml")
    assert cli.returncode == 2
    assert "a_tiers" in cli.stdout and "config_error" in cli.stdout


def test_no_warning_when_configs_write_the_same_attributes_or_other_id_spaces(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    same = write_config(emulator=emulator, name="one", file_name="one.yaml")
    also_same = write_config(emulator=emulator, name="two", file_name="two.yaml")
    pc_ids = write_config(
        emulator=emulator,
        name="three",
        identity={"column": "customer_id", "type": "pcId"},
        attributes={"city": "city"},
        file_name="three.yaml",
    )
    configs = [connector.load_config(p) for p in (same, also_same, pc_ids)]
    from connector.operations import attribute_conflicts

    assert attribute_conflicts(configs) == []
    cli = run_cli("sync", same, also_same, pc_ids)
    assert cli.returncode == 0, cli.stderr
    assert "different attributes" not in cli.stderr


# -- alerts ----------------------------------------------------------------------------------


def test_a_failing_run_posts_its_summary_to_the_webhook_without_secrets(
    warehouse, write_config: ConfigWriter, webhook: Webhook
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    config = write_config(
        target={"max_attempts": 1, "auth_token": TOKEN}, notify={"webhook_url": webhook.url}
    )
    with pytest.raises(connector.TargetError) as raised:
        connector.sync(config)

    (post,) = webhook.received
    assert post["path"] == f"/hooks/t?token={HOOK_TOKEN}"
    assert post["content_type"] == "application/json"
    body = post["json"]
    assert body["event"] == "target_sync_run" and body["reasons"] == ["failure"]
    assert (body["sync"], body["outcome"], body["exit_code"]) == ("test_sync", "failed", 1)
    assert body["message"] == str(raised.value)
    assert body["run_id"] == connector.status(config)["runs"][0]["run_id"]
    assert "FAILED" in body["text"] and "rerun" in body["text"]
    assert HOOK_TOKEN not in post["raw"] and TOKEN not in post["raw"]

    # The CLI: the same alert, and the run's own error and exit code.
    cli = run_cli("--log-format", "json", "sync", config)
    assert cli.returncode == 1
    assert len(webhook.received) == 2
    events = _json_lines(cli.stderr)
    sent = next(e for e in events if e["event"] == "notify_sent")
    assert sent["reasons"] == ["failure"] and sent["http_status"] == 200
    assert events[-1]["event"] == "error"
    assert HOOK_TOKEN not in cli.stderr and TOKEN not in cli.stderr


def test_webhook_posts_on_rejects_and_not_on_clean_or_dry_runs(
    emulator: Emulator, warehouse, write_config: ConfigWriter, webhook: Webhook
) -> None:
    warehouse(CUSTOMERS.format(n=20))
    config = write_config(emulator=emulator, notify={"webhook_url": webhook.url})
    assert connector.sync(config).exit_code == 0
    assert connector.sync(config, dry_run=True).exit_code == 0
    assert webhook.received == []

    warehouse(BAD_ROWS)
    result = connector.sync(config)
    assert result.exit_code == 3
    (post,) = webhook.received
    body = post["json"]
    assert body["reasons"] == ["rejects"]
    assert body["rejected"] == result.rejected == {"duplicate_id": 2, "id_has_plus_or_slash": 1}
    assert body["rejected_total"] == 3 and body["outcome"] == "partial"

    # `always` also reports clean runs.
    always = write_config(emulator=emulator, notify={"webhook_url": webhook.url, "on": ["always"]})
    connector.sync(always)
    assert webhook.received[-1]["json"]["reasons"] == ["always"]


def test_a_broken_webhook_never_changes_the_runs_outcome(
    emulator: Emulator, warehouse, write_config: ConfigWriter, webhook: Webhook
) -> None:
    warehouse(CUSTOMERS.format(n=20) + ";" + BAD_ROWS)
    webhook.status = 500
    config = write_config(
        emulator=emulator, notify={"webhook_url": webhook.url, "timeout_seconds": 2}
    )
    cli = run_cli("--log-format", "json", "sync", config)
    assert cli.returncode == 3  # the run's own outcome, not the webhook's
    events = _json_lines(cli.stderr)
    failed = next(e for e in events if e["event"] == "notify_failed")
    assert failed["level"] == "warning" and failed["error"] == "HTTP 500"
    assert failed["webhook_host"] == webhook.url.split("/hooks")[0]
    assert HOOK_TOKEN not in cli.stderr
    assert len(emulator.profiles()) == 19

    # Unreachable webhook (nothing listens on port 9), text mode: a warning, same outcome.
    down = write_config(
        emulator=emulator,
        name="other",
        notify={"webhook_url": f"http://127.0.0.1:9/x?token={HOOK_TOKEN}"},
    )
    cli = run_cli("sync", down)
    assert cli.returncode == 3
    assert "webhook at http://127.0.0.1:9 failed (connection failed)" in cli.stderr
    assert "exit 3) is unchanged" in cli.stderr
    assert HOOK_TOKEN not in cli.stderr + cli.stdout


def test_notify_config_is_checked(write_config: ConfigWriter, tmp_path: Path) -> None:
    bad = write_config(notify={"webhook_url": f"http://hooks.example.com/x?token={HOOK_TOKEN}"})
    with pytest.raises(connector.ConfigError) as raised:
        connector.load_config(bad)
    assert "notify: webhook_url: refusing plain http://" in str(raised.value)
    assert HOOK_TOKEN not in str(raised.value)
    typo = write_config(notify={"webhook_url": "https://hooks.example.com/x", "onn": ["always"]})
    with pytest.raises(connector.ConfigError, match=r"notify\.onn: unknown key"):
        connector.load_config(typo)
    # A bare `on:` is YAML's boolean true; it still means `on`.
    raw = tmp_path / "on.yaml"
    raw.write_text(
        write_config().read_text()
        + "notify:\n  webhook_url: https://hooks.example.com/x\n  on: [failure]\n"
    )
    loaded = connector.load_config(raw)
    assert loaded.notify is not None and loaded.notify.on == ("failure",)
    secret = write_config(notify={"webhook_url": f"https://hooks.example.com/x?t={HOOK_TOKEN}"})
    assert HOOK_TOKEN not in repr(connector.load_config(secret))


# -- the Python API and the cron example (orchestrators: tests/test_integrations_*.py) ------


def test_python_api_returns_the_summary_and_raises_the_projects_errors(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=100) + ";" + BAD_ROWS)
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 40})
    events: list[Event] = []
    result = connector.sync(config, listener=events.append)
    accepted = _accepted(emulator)
    assert isinstance(result, connector.SyncResult)
    assert (result.rows_read, result.new, result.sent) == (102, 99, 99)
    assert result.batches == len(accepted) == 3
    assert result.bytes_sent == sum(len(u.body) for u in accepted)
    assert result.batch_ids == [u.batch_id for u in accepted]
    assert result.rejected_total == 3 and result.outcome == "partial" and result.exit_code == 3
    assert set(result.stage_seconds) == {"read", "diff", "upload", "status"}
    assert result.duration_seconds >= sum(result.stage_seconds.values()) - 0.01
    assert result.started_at.endswith("+00:00")
    assert "retried" in result.next_step
    assert [e.name for e in events][:2] == ["run_start", "stage_done"]
    assert events[-1].name == "run_end" and events[-1].fields["sent"] == 99

    with pytest.raises(connector.ConfigError):
        connector.sync(config.parent / "nope.yaml")
    down = write_config(name="down", target={"max_attempts": 1}, file_name="down.yaml")
    with pytest.raises(connector.TargetRetriableError):
        connector.sync(down)


def test_crontab_example_line_runs_as_written(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    """Run the crontab's command with sh, its paths moved into this test's folder."""
    lines = [
        line
        for line in (EXAMPLES / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert len(lines) == 1
    fields = lines[0].split(None, 5)
    assert len(fields) == 6 and "%" not in fields[5]
    command = fields[5]
    home, log_file = "/srv/target-sync", "/var/log/target-sync/sync.jsonl"
    assert home in command and log_file in command

    warehouse(CUSTOMERS.format(n=25))
    base = tmp_path / "srv"
    (base / "configs").mkdir(parents=True)
    write_config(
        emulator=emulator,
        target={"auth_token": "${TARGET_PROFILE_TOKEN}"},
        file_name="srv/configs/vip.yaml",
    )
    emulator.faults.required_token = TOKEN
    (base / "target-sync.env").write_text(f"TARGET_PROFILE_TOKEN={TOKEN}\n")
    (base / ".venv").symlink_to(Path(sys.prefix))
    log = tmp_path / "log" / "sync.jsonl"
    log.parent.mkdir()
    command = command.replace(home, shlex.quote(str(base))).replace(log_file, shlex.quote(str(log)))
    env = {k: v for k, v in os.environ.items() if k != "TARGET_PROFILE_TOKEN"}
    done = subprocess.run(["sh", "-c", command], env=env, timeout=120, check=False)
    assert done.returncode == 0, log.read_text()
    events = _json_lines(log.read_text())
    assert any(e["event"] == "run_end" and e["sent"] == 25 for e in events)
    assert TOKEN not in log.read_text()
    assert len(emulator.profiles()) == 25
