"""connector.integrations.dagster against the real Dagster: materialize(), metadata, the asset
check, retries, the concurrency pool, and the example code location."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.emulator import Emulator
from connector.state.duckdb.lock import RunLock

from .conftest import CUSTOMERS, ConfigWriter

dg = pytest.importorskip("dagster", reason="Dagster is in the dev dependency group")

from connector.integrations.dagster import (  # noqa: E402
    CHECK,
    POOL,
    asset_key,
    target_sync_asset,
)

REPO = Path(__file__).resolve().parents[1]
BAD_ROWS = "INSERT INTO customers VALUES ('a+b', 'gold', 'x'), (NULL, 'gold', 'y')"
NO_WAIT = dg.RetryPolicy(max_retries=1, delay=0)


def materialization(outcome: Any, key: str) -> Any:
    (event,) = outcome.asset_materializations_for_node(key)
    return event


def check_result(outcome: Any) -> Any:
    (evaluation,) = outcome.get_asset_check_evaluations()
    return evaluation


def retries(outcome: Any) -> int:
    return sum(1 for e in outcome.all_events if e.event_type_value == "STEP_UP_FOR_RETRY")


def test_materialization_records_counts_as_ints_and_passes_its_check(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=12))
    config = write_config(emulator=emulator, name="vip", file_name="vip.yaml")
    asset = target_sync_asset(config)
    assert asset.key == asset_key(config) == dg.AssetKey(["target_profiles_vip"])
    outcome = dg.materialize([asset])
    assert outcome.success
    meta = materialization(outcome, "target_profiles_vip").metadata
    assert isinstance(meta["sent"], dg.IntMetadataValue) and meta["sent"].value == 12
    assert meta["bytes_sent"].value == len(emulator.uploads[0].body)
    assert (meta["rows_read"].value, meta["batches"].value, meta["failed"].value) == (12, 1, 0)
    assert meta["outcome"].value == "delivered"
    check = check_result(outcome)
    assert check.check_name == CHECK and check.passed
    assert len(emulator.profiles()) == 12


def test_rejected_rows_warn_through_the_check_without_failing(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=5) + ";" + BAD_ROWS)
    config = write_config(emulator=emulator, name="vip", file_name="vip.yaml")
    outcome = dg.materialize([target_sync_asset(config)])
    assert outcome.success
    meta = materialization(outcome, "target_profiles_vip").metadata
    assert (meta["sent"].value, meta["rejected_total"].value) == (5, 2)
    by_reason = {
        name: value.value
        for name, value in meta.items()
        if name.startswith("rejected_") and name != "rejected_total"
    }
    assert sorted(by_reason.values()) == [1, 1]  # one per reason (NULL id, '+' in the id)
    check = check_result(outcome)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["rejected_total"].value == 2

    strict = dg.materialize(
        [target_sync_asset(config, fail_on_rejects=True, retry_policy=NO_WAIT)],
        raise_on_error=False,
    )
    assert not strict.success and retries(strict) == 0


def test_permanent_errors_fail_at_once_and_transient_ones_are_retried(
    warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=3))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nsource: {type: duckdb}\n")
    failed = dg.materialize(
        [target_sync_asset(broken, retry_policy=NO_WAIT, deps=[])], raise_on_error=False
    )
    assert not failed.success and retries(failed) == 0
    (failure,) = [e for e in failed.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "broken.yaml:2: source.database" in str(failure.event_specific_data.error)

    down = write_config(name="down", target={"max_attempts": 1}, file_name="down.yaml")
    unreachable = dg.materialize(
        [target_sync_asset(down, retry_policy=NO_WAIT)], raise_on_error=False
    )
    assert not unreachable.success and retries(unreachable) == 1


def test_a_run_meeting_a_held_lock_is_retried_and_every_sync_asset_is_in_one_pool(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=3))
    config = write_config(emulator=emulator, name="vip", file_name="vip.yaml")
    asset = target_sync_asset(config, retry_policy=NO_WAIT)
    other = target_sync_asset(write_config(emulator=emulator, name="web", file_name="web.yaml"))
    assert asset.op.pool == other.op.pool == POOL
    state = Path(yaml.safe_load(config.read_text())["state"]["path"])
    with RunLock(state, "another run"):
        locked = dg.materialize([asset], raise_on_error=False)
    assert not locked.success and retries(locked) == 1
    assert dg.materialize([asset]).success  # the lock is free again


def test_dbt_source_depends_on_the_models_dagster_dbt_asset(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\nconfig-version: 2\n")
    config = write_config(
        name="vip", source={"type": "dbt", "project_dir": str(project), "model": "vip_customers"}
    )
    asset = target_sync_asset(config)
    assert set(asset.dependency_keys) == {dg.AssetKey(["vip_customers"])}


def _load_example(configs: Path) -> Any:
    saved = os.environ.get("TARGET_SYNC_CONFIGS")
    os.environ["TARGET_SYNC_CONFIGS"] = str(configs)
    try:
        spec = importlib.util.spec_from_file_location(
            "example_dagster_asset", REPO / "examples" / "dagster_asset.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            os.environ.pop("TARGET_SYNC_CONFIGS", None)
        else:
            os.environ["TARGET_SYNC_CONFIGS"] = saved
    return module


def test_example_code_location(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=7))
    (tmp_path / "configs").mkdir()
    write_config(emulator=emulator, name="vip", file_name="configs/vip.yaml")
    write_config(emulator=emulator, name="web", file_name="configs/web.yaml")
    defs = _load_example(tmp_path / "configs").defs
    keys = sorted(key.to_user_string() for key in defs.resolve_all_asset_keys())
    assert keys == ["target_profiles_vip", "target_profiles_web"]
    job = defs.resolve_job_def("target_sync")
    outcome = job.execute_in_process()
    assert outcome.success
    assert len(outcome.get_asset_materialization_events()) == 2
    assert len(emulator.uploads) == 2
