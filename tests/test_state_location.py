"""Where the state file is (issue 20): the default ``.target-sync/state.duckdb`` sits next to
the config file whatever the working directory, as an explicit relative ``state.path`` does;
and a state file an earlier version left in the working directory is never silently
replaced by a full resend."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import connector
from connector.config import load_config
from connector.emulator import Emulator

from .conftest import CLI, CUSTOMERS, ConfigWriter

Warehouse = Callable[[str], Path]


def folders(tmp_path: Path, *names: str) -> list[Path]:
    made = [tmp_path / name for name in names]
    for folder in made:
        folder.mkdir(parents=True, exist_ok=True)
    return made


def with_state(config: Path, state: dict[str, Any] | None) -> Path:
    """Rewrite ``config`` with this ``state`` section (None: no ``state`` key at all)."""
    data = yaml.safe_load(config.read_text())
    data.pop("state", None)
    if state is not None:
        data["state"] = state
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def cli_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout importable from any directory."""
    root = str(Path(connector.__file__).parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def sync_from(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """``target-sync --log-format json sync ...`` run in the working directory ``cwd``."""
    return command_from(cwd, "sync", *args)


def command_from(cwd: Path, command: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--log-format", "json", command, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=cli_env(),
        check=False,
    )


def summary(cli: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The ``run_end`` event of a JSON-logged run."""
    events = [json.loads(line) for line in cli.stderr.splitlines() if line.startswith("{")]
    ends = [e for e in events if e["event"] == "run_end"]
    assert ends, cli.stderr
    return ends[-1]


def error_line(cli: subprocess.CompletedProcess[str]) -> str:
    """The message of the ``error`` event a JSON-logged command failed with."""
    events = [json.loads(line) for line in cli.stderr.splitlines() if line.startswith("{")]
    errors = [str(e["message"]) for e in events if e["event"] == "error"]
    assert len(errors) == 1, cli.stderr
    return errors[0]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# -- 1. the default is resolved next to the config, like an explicit relative path -------------


@pytest.mark.parametrize("state", [None, {}, {"keep_values": True}], ids=["none", "empty", "keys"])
def test_the_default_state_path_is_next_to_the_config_whatever_the_working_directory(
    tmp_path: Path,
    write_config: ConfigWriter,
    monkeypatch: pytest.MonkeyPatch,
    state: dict[str, Any] | None,
) -> None:
    configs, elsewhere = folders(tmp_path, "configs", "elsewhere")
    config = with_state(write_config(file_name="configs/default.yaml"), state)
    explicit = with_state(
        write_config(file_name="configs/explicit.yaml"), {"path": ".target-sync/state.duckdb"}
    )
    monkeypatch.chdir(elsewhere)
    expected = configs.resolve() / ".target-sync" / "state.duckdb"
    loaded = load_config(config)
    assert loaded.state.path == expected
    assert loaded.state.path.is_absolute()
    assert load_config(explicit).state.path == expected
    # Whether the path was written stays known (the legacy check depends on it).
    assert "path" not in loaded.state.model_fields_set
    assert "path" in load_config(explicit).state.model_fields_set
    assert loaded.state.temp_directory is None  # spills next to the (resolved) state file


def test_the_library_keeps_the_state_next_to_the_config_from_any_directory(
    tmp_path: Path,
    emulator: Emulator,
    warehouse: Warehouse,
    write_config: ConfigWriter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warehouse(CUSTOMERS.format(n=12))
    configs, one, two = folders(tmp_path, "configs", "one", "two")
    config = with_state(write_config(emulator=emulator, file_name="configs/sync.yaml"), None)
    monkeypatch.chdir(one)
    assert connector.sync(config).sent == 12
    monkeypatch.chdir(two)
    assert connector.sync(config).sent == 0
    assert (configs / ".target-sync" / "state.duckdb").is_file()
    assert tree(one) == tree(two) == []


# -- 2. the CLI from two working directories --------------------------------------------------


def test_one_config_run_from_two_directories_uses_one_state_file(
    tmp_path: Path, emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=30))
    configs, one, two = folders(tmp_path, "configs", "one", "two")
    config = with_state(write_config(emulator=emulator, file_name="configs/sync.yaml"), None)

    first = sync_from(one, config)
    assert first.returncode == 0, first.stderr
    assert summary(first)["sent"] == 30
    uploads = emulator.upload_count
    assert len(emulator.profiles()) == 30

    second = sync_from(two, config)
    assert second.returncode == 0, second.stderr
    assert summary(second)["sent"] == 0
    assert emulator.upload_count == uploads

    assert (configs / ".target-sync" / "state.duckdb").is_file()
    assert tree(one) == tree(two) == []


# -- 3. ... and at the same time --------------------------------------------------------------


def test_a_second_run_from_another_directory_meets_the_first_runs_lock(
    tmp_path: Path, emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=1000))
    configs, one, two = folders(tmp_path, "configs", "one", "two")
    config = with_state(
        write_config(
            emulator=emulator, target={"max_rows_per_batch": 50}, file_name="configs/sync.yaml"
        ),
        None,
    )
    emulator.faults.delay_seconds = 0.6  # 20 uploads: 12 s, long enough on a busy machine
    run = subprocess.Popen(
        [*CLI, "sync", str(config)],
        cwd=one,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while emulator.upload_count < 1:
            assert run.poll() is None, run.communicate()
            assert time.monotonic() < deadline, "timed out waiting for the first upload"
            time.sleep(0.01)
        started = time.monotonic()
        second = sync_from(two, config)
        assert second.returncode == 1, second.stderr
        assert time.monotonic() - started < 30  # at once, not after the first run
        message = error_line(second)
        assert "another run holds the lock" in message, second.stderr
        assert f"pid {run.pid}" in message
        assert str(configs.resolve() / ".target-sync" / "state.duckdb") in message
        emulator.faults.delay_seconds = 0
        _out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert len(emulator.profiles()) == 1000
    assert tree(one) == tree(two) == []


# -- 4. a state file an earlier version left in the working directory --------------------------


def test_a_state_file_left_in_the_working_directory_is_refused_with_the_two_fixes(
    tmp_path: Path, emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=20))
    configs, old_cwd = folders(tmp_path, "configs", "old_cwd")
    legacy = old_cwd / ".target-sync" / "state.duckdb"
    new = configs.resolve() / ".target-sync" / "state.duckdb"
    # What an earlier version made of a config without state.path run from old_cwd.
    config = write_config(emulator=emulator, file_name="configs/sync.yaml")
    with_state(config, {"path": str(legacy)})
    made = sync_from(old_cwd, config)
    assert made.returncode == 0 and summary(made)["sent"] == 20, made.stderr
    uploads = emulator.upload_count
    before = tree(old_cwd)

    with_state(config, None)
    for command, args in (
        ("sync", ()),
        ("sync", ("--dry-run",)),
        ("status", ()),
        ("plan", ()),
        ("reset", ("--yes",)),
    ):
        cli = command_from(old_cwd, command, config, *args)
        assert cli.returncode == 1, (command, cli.stdout, cli.stderr)
        message = error_line(cli)
        assert str(legacy) in message, (command, message)
        assert "20 profiles" in message
        assert "working directory" in message and "next to the config file" in message
        assert f"state.path: {legacy} in {config.resolve()}" in message
        assert f"copy it to the new default path {new}" in message
        assert "Nothing was read or sent" in message
        assert emulator.upload_count == uploads, command
        assert not new.parent.exists(), command  # no state file (nor folder) next to the config
        assert tree(old_cwd) == before, command

    # Fix 1: keep using the old file.
    with_state(config, {"path": str(legacy)})
    kept = sync_from(old_cwd, config)
    assert kept.returncode == 0, kept.stderr
    assert summary(kept)["sent"] == 0

    # Fix 2: copy it to the new default; the old one may stay (other folders' configs).
    with_state(config, None)
    new.parent.mkdir()
    shutil.copyfile(legacy, new)
    for cwd in (old_cwd, configs):
        copied = sync_from(cwd, config)
        assert copied.returncode == 0, copied.stderr
        assert summary(copied)["sent"] == 0
    assert emulator.upload_count == uploads


def test_a_state_file_in_the_working_directory_holding_only_other_syncs_does_not_block(
    tmp_path: Path, emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    configs, old_cwd = folders(tmp_path, "configs", "old_cwd")
    legacy = old_cwd / ".target-sync" / "state.duckdb"
    other = write_config(emulator=emulator, name="other", file_name="configs/other.yaml")
    assert sync_from(old_cwd, with_state(other, {"path": str(legacy)})).returncode == 0

    config = with_state(write_config(emulator=emulator, file_name="configs/sync.yaml"), None)
    cli = sync_from(old_cwd, config)
    assert cli.returncode == 0, cli.stderr
    assert summary(cli)["sent"] == 10
    assert (configs / ".target-sync" / "state.duckdb").is_file()


def test_an_unreadable_state_file_in_the_working_directory_is_refused(
    tmp_path: Path, emulator: Emulator, warehouse: Warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=10))
    configs, old_cwd = folders(tmp_path, "configs", "old_cwd")
    legacy = old_cwd / ".target-sync" / "state.duckdb"
    legacy.parent.mkdir()
    legacy.write_bytes(b"not a duckdb file, perhaps truncated by a crash" * 100)
    config = with_state(write_config(emulator=emulator, file_name="configs/sync.yaml"), None)
    cli = sync_from(old_cwd, config)
    assert cli.returncode == 1, cli.stderr
    message = error_line(cli)
    assert f"the state file {legacy} in the working directory could not be read" in message
    assert "may hold this sync's snapshot" in message and "Nothing was read or sent" in message
    assert emulator.upload_count == 0
    assert not (configs / ".target-sync").exists()
