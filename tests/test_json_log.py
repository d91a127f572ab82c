"""With ``--log-format json``, stdout and stderr are what the README says (issue #12): every
stderr line of real CLI runs parses, each event is one the README lists with the fields it
lists, the README and the Event docstring name the same run events, and ``sync`` leaves stdout
empty."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connector.emulator import Emulator
from connector.result import Event, SyncResult

from .conftest import CUSTOMERS, ConfigWriter, run_cli
from .test_network import recorder

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
ENVELOPE = {"ts", "level", "logger", "event"}


def readme_events() -> dict[str, set[str]]:
    """The README's JSON log list: event name -> the fields it names."""
    section = README.split("### JSON logs", 1)[1].split("\n## ", 1)[0]
    bullets = section.split("\n- ", 1)[1].split("\n\n", 1)[0]
    events: dict[str, set[str]] = {}
    for item in bullets.split("\n- "):
        names, _, fields = item.partition(": ")
        for name in re.findall(r"`(\w+)`", names):
            events[name] = set(re.findall(r"`(\w+)`", fields))
    return events


def docstring_events() -> set[str]:
    """The run events :class:`connector.result.Event` documents."""
    doc = Event.__doc__ or ""
    table = doc.split("::", 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^        (\w+) ", table, re.M))


def stderr_objects(cli: Any) -> list[dict[str, Any]]:
    lines = cli.stderr.splitlines()
    assert lines, "no log lines"
    objects = [json.loads(line) for line in lines]  # every line parses
    for entry in objects:
        assert entry.keys() >= ENVELOPE, entry
    return objects


def test_readme_and_event_docstring_name_the_same_run_events() -> None:
    documented = readme_events()
    assert docstring_events() - {"read_progress"} == set(documented) - {
        "syncs_done",
        "warning",
        "error",
        "log",
    }


@pytest.fixture
def runs(
    emulator: Emulator, warehouse: Callable[[str], Path], write_config: ConfigWriter, tmp_path: Path
) -> list[tuple[str, Any]]:
    """Real CLI runs under --log-format json that between them emit every event."""
    warehouse(CUSTOMERS.format(n=60))
    done: list[tuple[str, Any]] = []
    target = {"max_rows_per_batch": 25, "calls_per_minute": 50}
    with recorder() as hook:
        folder = tmp_path / "configs"
        folder.mkdir()
        write_config(
            emulator=emulator,
            name="first",
            target=target,
            notify={"webhook_url": f"{hook.base_url}/hook", "on": ["always"]},
            file_name="configs/a.yaml",
        )
        write_config(
            emulator=emulator,
            name="second",
            attributes={"loyaltyTier": "tier"},  # fewer attributes: a conflict warning
            target=target,
            notify={"webhook_url": "http://127.0.0.1:9/hook", "on": ["always"]},
            file_name="configs/b.yaml",
        )
        emulator.faults.fail_next = 1  # one retry
        done.append(("folder", run_cli("--log-format", "json", "sync", folder)))
    pending = write_config(
        emulator=emulator,
        name="pending",
        target={**target, "status_deadline_seconds": 0},
        file_name="pending.yaml",
    )
    done.append(("dry run", run_cli("--log-format", "json", "sync", pending, "--dry-run")))
    emulator.faults.incomplete_polls = 5
    done.append(("left pending", run_cli("--log-format", "json", "sync", pending)))
    emulator.faults.incomplete_polls = 0
    done.append(("resolves pending", run_cli("--log-format", "json", "sync", pending)))
    one_at_a_time = write_config(
        emulator=emulator,
        name="paced",
        target={**target, "max_batches_in_flight": 1},
        file_name="paced.yaml",
    )
    emulator.faults.incomplete_polls = 1  # the next batch waits for the first one's status
    done.append(("backpressure", run_cli("--log-format", "json", "sync", one_at_a_time)))
    emulator.faults.incomplete_polls = 0
    broken = write_config(target={"max_attempts": 1}, name="broken", file_name="broken.yaml")
    done.append(("failed", run_cli("--log-format", "json", "sync", broken)))
    return done


def test_every_stderr_line_is_a_documented_event_with_documented_fields(
    runs: list[tuple[str, Any]],
) -> None:
    documented = readme_events()
    summary_keys = set(SyncResult("x", "r", False).to_dict()) - {"sync"}
    seen: set[str] = set()
    for what, cli in runs:
        assert cli.stdout == "", f"{what}: sync wrote to stdout under JSON logs"
        for entry in stderr_objects(cli):
            name = entry["event"]
            assert name in documented, f"{what}: undocumented event {name!r}"
            fields = set(entry) - ENVELOPE - {"sync"}
            allowed = summary_keys if name == "run_end" else documented[name]
            assert fields <= allowed, f"{what}: {name} has undocumented {fields - allowed}"
            if name == "run_end":
                assert fields == summary_keys
            seen.add(name)
    # Every event the README lists really happens (so the list is not padding).
    assert seen == set(documented)


def test_the_other_commands_print_their_report_on_stdout(
    emulator: Emulator, warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    config = write_config(emulator=emulator, target={"calls_per_minute": 50})
    assert run_cli("sync", config).returncode == 0
    for command in ("plan", "status", "validate", "verify"):
        cli = run_cli("--log-format", "json", command, config, "--json")
        assert cli.returncode == 0, (command, cli.stderr)
        assert isinstance(json.loads(cli.stdout), dict), command
        for line in cli.stderr.splitlines():
            assert json.loads(line).keys() >= ENVELOPE
