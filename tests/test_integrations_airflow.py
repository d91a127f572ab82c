"""connector.integrations.airflow against the real Airflow 3: the operator's failure modes,
XCom summary and asset outlets, and the example DAG run by Airflow's own ``dag.test()``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from connector.emulator import Emulator
from connector.errors import TargetRetriableError

from .conftest import CUSTOMERS, ConfigWriter

airflow_sdk = pytest.importorskip("airflow.sdk", reason="Airflow is in the dev dependency group")

from airflow.sdk import DAG, Asset  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402

from connector.integrations.airflow import (  # noqa: E402
    TargetSyncOperator,
    dbt_model_asset,
    run_sync,
    sync_asset,
)

REPO = Path(__file__).resolve().parents[1]
BAD_ROWS = "INSERT INTO customers VALUES ('a+b', 'gold', 'x'), (NULL, 'gold', 'y')"
pytestmark = pytest.mark.xdist_group("airflow")


def test_run_sync_returns_the_summary_for_xcom(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(CUSTOMERS.format(n=30))
    config = write_config(emulator=emulator)
    summary = run_sync(config)
    assert json.loads(json.dumps(summary)) == summary  # XCom-able
    assert (summary["sent"], summary["outcome"], summary["exit_code"]) == (30, "delivered", 0)
    assert "batch_files" not in summary and len(emulator.profiles()) == 30

    warehouse(BAD_ROWS)
    left_behind = run_sync(config)  # rows left behind do not fail the task by default
    assert (left_behind["exit_code"], left_behind["rejected_total"]) == (3, 2)
    with pytest.raises(AirflowFailException, match=r"2 rejected"):
        run_sync(config, fail_on_rejects=True)  # the data must be fixed: no retry


def test_permanent_errors_fail_without_retry_and_transient_ones_are_retried(
    warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=10) + "; CREATE TABLE empty AS SELECT * FROM customers LIMIT 0")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nsource: {type: duckdb}\n")
    with pytest.raises(AirflowFailException, match=r"broken.yaml:2: source.database"):
        run_sync(broken)

    down = write_config(name="down", target={"max_attempts": 1}, file_name="down.yaml")
    with pytest.raises(TargetRetriableError):  # Target unreachable: Airflow's retries apply
        run_sync(down)

    strict = write_config(
        name="strict",
        query="select * from customers union all select 'a+b', 'x', 'y'",
        file_name="strict.yaml",
        strict=True,
    )
    with pytest.raises(AirflowFailException, match=r"strict mode is on"):
        run_sync(strict)

    guarded = write_config(name="guarded", file_name="guarded.yaml", min_rows=100)
    with pytest.raises(AirflowFailException, match=r"fewer than min_rows=100"):
        run_sync(guarded)


def test_operator_defaults_declare_the_sync_asset(write_config: ConfigWriter) -> None:
    config = write_config(name="vip_customers", file_name="vip.yaml")
    with DAG("t", schedule=None) as dag:
        task = TargetSyncOperator(config_path=config, retries=3)
    assert dag.get_task("sync_vip") is task and task.retries == 3
    assert task.outlets == [sync_asset(config)]
    asset = sync_asset(config)
    assert isinstance(asset, Asset)
    assert (asset.name, asset.uri) == ("target_sync.vip_customers", "x-target-sync://vip_customers")
    # Reading the name needs none of the config's variables (DAG files are parsed anywhere).
    secret = config.parent / "secret.yaml"
    secret.write_text("name: needs_env\ntarget:\n  client_code: ${NOT_SET_ANYWHERE}\n")
    assert sync_asset(secret).name == "target_sync.needs_env"


def test_a_dag_can_be_scheduled_on_the_dbt_models_asset(
    write_config: ConfigWriter, tmp_path: Path
) -> None:
    project = tmp_path / "analytics"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nprofile: shop\nconfig-version: 2\n")
    config = write_config(
        name="vip", source={"type": "dbt", "project_dir": str(project), "model": "vip_customers"}
    )
    model = dbt_model_asset(config)
    assert (model.name, model.uri) == ("dbt.shop.vip_customers", "x-dbt://shop/vip_customers")
    assert dbt_model_asset(config, uri="postgres://db:5432/shop/public/vip").uri == (
        "postgres://db:5432/shop/public/vip"
    )
    from airflow.providers.standard.operators.empty import EmptyOperator

    with DAG("dbt_build", schedule=None):  # the task running dbt declares the model's asset
        producer = EmptyOperator(task_id="dbt_build", outlets=[dbt_model_asset(config)])
    with DAG("vip_after_dbt", schedule=[dbt_model_asset(config)]) as consumer:
        sync = TargetSyncOperator(config_path=config)
    # The consumer waits on exactly the asset the producer emits.
    assert consumer.timetable.asset_condition.objects == tuple(producer.outlets) == (model,)
    assert sync.outlets == [sync_asset(config)]


# --- the real scheduler loop: dag.test() --------------------------------------------------


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An Airflow home with a migrated SQLite database; the environment to run Airflow in."""
    home = tmp_path_factory.mktemp("airflow_home")
    dags = home / "dags"
    dags.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    done = subprocess.run(
        [airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return env


def dag_test(env: dict[str, str], dag_file: Path, dag_id: str, **extra: str) -> dict[str, Any]:
    target = Path(env["AIRFLOW__CORE__DAGS_FOLDER"]) / dag_file.name
    shutil.copy(dag_file, target)
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "airflow_runner.py"), str(target), dag_id],
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = json.loads(lines[0].removeprefix("RESULT "))
    return result


@pytest.mark.slow
def test_example_dag_runs_each_config_in_turn_with_xcom_and_asset_events(
    airflow_home: dict[str, str],
    emulator: Emulator,
    warehouse,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    warehouse(CUSTOMERS.format(n=12))
    (tmp_path / "configs").mkdir()
    first = write_config(emulator=emulator, name="first", file_name="configs/a.yaml")
    write_config(emulator=emulator, name="second", file_name="configs/b.yaml")
    outcome = dag_test(
        airflow_home,
        REPO / "examples" / "airflow_dag.py",
        "target_sync",
        TARGET_SYNC_CONFIGS=str(first.parent),
    )
    assert outcome["state"] == "success"
    assert outcome["tasks"] == {
        "sync_a": {"state": "success", "tries": 1},
        "sync_b": {"state": "success", "tries": 1},
    }
    assert outcome["xcom"]["sync_a"]["sent"] == 12 and outcome["xcom"]["sync_b"]["sync"] == "second"
    events = [(e["name"], e["dag_id"]) for e in outcome["asset_events"]]
    assert ("target_sync.first", "target_sync") in events
    assert ("target_sync.second", "target_sync") in events
    assert len(emulator.uploads) == 2


FAILURES_DAG = """
from datetime import UTC, datetime, timedelta
import os
from airflow.sdk import DAG
from connector.integrations.airflow import TargetSyncOperator

folder = os.environ["TS_FAILURE_CONFIGS"]
with DAG(
    "target_sync_failures",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    default_args={"retries": 2, "retry_delay": timedelta(0)},
) as failures:
    TargetSyncOperator(config_path=f"{folder}/broken.yaml")
    TargetSyncOperator(config_path=f"{folder}/down.yaml")
"""


@pytest.mark.slow
def test_airflow_fails_config_errors_at_once_and_retries_an_unreachable_target(
    airflow_home: dict[str, str], warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=3))
    folder = tmp_path / "failing"
    folder.mkdir()
    (folder / "broken.yaml").write_text("name: broken\nsource: {type: duckdb}\n")
    write_config(name="down", target={"max_attempts": 1}, file_name="failing/down.yaml")
    dag_file = tmp_path / "target_sync_failures.py"
    dag_file.write_text(FAILURES_DAG)
    outcome = dag_test(
        airflow_home, dag_file, "target_sync_failures", TS_FAILURE_CONFIGS=str(folder)
    )
    assert outcome["state"] == "failed"
    assert outcome["tasks"]["sync_broken"] == {"state": "failed", "tries": 1}
    assert outcome["tasks"]["sync_down"] == {"state": "failed", "tries": 3}
