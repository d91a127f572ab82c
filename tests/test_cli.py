"""The ``target-sync`` command itself: help, options, exit codes, what it prints on a
terminal and elsewhere. Runs the real command in subprocesses (a pseudo-terminal for the
terminal case) against the Target emulator."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

import click
import pytest

from connector.cli import main
from connector.emulator import Emulator

from .conftest import CLI, CUSTOMERS, ConfigWriter, run_cli

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("duckdb", "pyarrow", "snowflake", "sqlalchemy", "pandas", "numpy", "dbt", "rich")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


# -- help ------------------------------------------------------------------------------------


def test_every_command_and_option_has_help_text_that_help_shows() -> None:
    assert main.help and all(o.help for o in _options(main))
    top = run_cli("--help")
    assert top.returncode == 0, top.stderr
    assert "Exit codes: 0 all delivered" in top.stdout
    assert "TARGET_SYNC_LOG_FORMAT" in top.stdout
    for option in _options(main):
        assert all(name in top.stdout for name in option.opts), option.opts

    assert isinstance(main, click.Group)
    assert set(main.commands) == {
        "sync",
        "plan",
        "validate",
        "status",
        "reset",
        "verify",
        "emulator",
        "demo",
        "dbt",
    }
    for name, command in main.commands.items():
        assert command.help and len(command.help.strip()) > 20, name
        summary = command.get_short_help_str(limit=200)
        assert re.search(rf"^\s+{name}\s+\S", top.stdout, re.M), name
        assert summary[:30] in " ".join(top.stdout.split()), name
        shown = run_cli(name, "--help")
        assert shown.returncode == 0, shown.stderr
        for option in _options(command):
            assert option.help, f"{name} {option.opts}"
            for opt in option.opts:
                assert opt in shown.stdout, f"{name} --help does not show {opt}"


def test_readme_shows_every_command() -> None:
    """README.md (written by the lead) names each command as ``target-sync <command>``."""
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is not there yet (the lead writes it)"
    text = readme.read_text(encoding="utf-8")
    missing = [name for name in main.commands if f"target-sync {name}" not in text]
    assert not missing, f"README.md does not show: {', '.join(missing)}"


def test_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from connector.cli import main\n"
        "for args in (['--help'], *[[c, '--help'] for c in main.commands]):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (args, exit.code)\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LOADED []"


# -- options and exit codes ------------------------------------------------------------------


def test_usage_and_config_errors_exit_2(write_config: ConfigWriter, tmp_path: Path) -> None:
    config = write_config()
    cli = run_cli("sync", config, "--out", tmp_path / "out")
    assert cli.returncode == 2
    assert cli.stderr.strip() == (
        "error: --out writes batch files instead of sending: use it with --dry-run"
    )
    cli = run_cli("sync", tmp_path / "missing.yaml")
    assert cli.returncode == 2 and "missing.yaml: cannot read config" in cli.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    cli = run_cli("sync", empty)
    assert cli.returncode == 2 and "no *.yaml or *.yml config files" in cli.stderr
    cli = run_cli("sync", "--nope", config)
    assert cli.returncode == 2 and "No such option '--nope'" in cli.stderr
    assert run_cli("--version").returncode == 0


def test_log_format_is_accepted_after_the_command_and_from_the_environment(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    config = write_config(emulator=emulator)
    for args, env in (
        (("sync", config, "--log-format", "json"), None),
        (("sync", config), {"TARGET_SYNC_LOG_FORMAT": "json"}),
    ):
        cli = run_cli(*args, env=env)
        assert cli.returncode == 0, cli.stderr
        events = [json.loads(line) for line in cli.stderr.splitlines()]
        assert events[0]["event"] == "run_start" and events[-1]["event"] == "run_end"
        assert cli.stdout == ""


# -- output on a terminal and elsewhere ------------------------------------------------------


def _run_on_terminal(*args: str | Path, timeout: float = 120) -> tuple[int, str]:
    """Run the command with stdin/stdout/stderr on a pseudo-terminal; returns (code, output)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [*CLI, *map(str, args)], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                process.kill()
                pytest.fail("the command produced no output for too long")
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    code = process.wait(timeout=timeout)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_a_terminal_gets_rich_progress_and_the_summary(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=3000))
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 1000})
    code, raw = _run_on_terminal("sync", config)
    assert code == 0, raw
    assert "\x1b[" in raw  # drawn, not printed
    text = ANSI.sub("", raw).replace("\r", "\n")
    # Progress bars (erased at the end) were drawn for the upload and the status polls.
    assert "sending profiles" in text or "batch 1 uploaded" in text
    assert re.search(r"[0-9,]+/3,000 profiles", text)
    assert "polling batch status" in text
    # Each stage leaves one line, then the summary.
    for line in (
        "✓ read 3,000 rows",
        "✓ diff: 3,000 new, 0 changed, 0 removed, 0 unchanged",
        "✓ upload: 3 batches,",
        "✓ batch status: 0 rows failed",
        "sync 'test_sync': delivered in",
        "sent         3,000 profiles in 3 batches,",
        "next         all delivered; the next run sends only what changes",
    ):
        assert line in text, line


def test_off_a_terminal_each_stage_prints_one_plain_line(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=3000))
    config = write_config(emulator=emulator, target={"max_rows_per_batch": 1000})
    cli = run_cli("sync", config)
    assert cli.returncode == 0, cli.stderr
    assert "\x1b" not in cli.stderr + cli.stdout
    lines = cli.stderr.splitlines()
    texts = [re.sub(r"^\d\d:\d\d:\d\d sync 'test_sync': ", "", line) for line in lines]
    assert all(t != line for t, line in zip(texts, lines, strict=True)), lines
    assert texts[0].startswith("run ") and texts[0].endswith(" started")
    assert texts[1].startswith("read 3,000 rows (")
    assert texts[2].startswith("diff: 3,000 new, 0 changed, 0 removed, 0 unchanged (")
    assert texts[3] == "sending 3,000 profiles"
    batches = [t for t in texts if re.match(r"batch \d uploaded: ", t)]
    assert len(batches) == 3 and all(", HTTP 200, " in t for t in batches)
    assert texts[-3].startswith("upload: 3 batches, ")
    assert texts[-2] == "polling the status of 3 batches"
    assert texts[-1].startswith("batch status: 0 rows failed (")
    assert cli.stdout.startswith("sync 'test_sync': delivered in ")

    # A dry run says what it would send and where the files went.
    cli = run_cli("sync", config, "--dry-run", "--out", tmp_path / "out")
    assert cli.returncode == 0, cli.stderr
    assert "sync 'test_sync': dry run in" in cli.stdout
    assert "would send" in cli.stdout and "0 profiles in 0 batches" in cli.stdout
    assert "run without --dry-run to send" in cli.stdout


def test_status_before_any_run(write_config: ConfigWriter) -> None:
    config = write_config()
    cli = run_cli("status", config)
    assert cli.returncode == 0, cli.stderr
    assert "no runs yet" in cli.stdout
    report = json.loads(run_cli("status", config, "--json").stdout)
    assert report["runs"] == [] and report["snapshot_profiles"] == 0
    assert report["failed_rows"] == [] and report["rejects"] == []
