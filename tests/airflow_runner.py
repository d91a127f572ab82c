"""Run one DAG with Airflow's own ``dag.test()`` and print what the metadata DB recorded.

Run as ``python tests/airflow_runner.py DAG_FILE DAG_ID`` in a process whose ``AIRFLOW_HOME``
has a migrated database and whose ``AIRFLOW__CORE__DAGS_FOLDER`` holds ``DAG_FILE`` (Airflow 3
serializes the DAG from its bundle before it runs it). Prints one ``RESULT {json}`` line: the
run's state, each task's state and try number, the XCom return values, and the asset events.
"""

from __future__ import annotations

import importlib.util
import json
import sys

from airflow.models import TaskInstance
from airflow.models.asset import AssetEvent
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session


def main(dag_file: str, dag_id: str) -> None:
    spec = importlib.util.spec_from_file_location("dag_under_test", dag_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = next(value for value in vars(module).values() if getattr(value, "dag_id", None) == dag_id)
    run = dag.test()
    with create_session() as session:
        tasks = session.query(TaskInstance).filter(TaskInstance.run_id == run.run_id).all()
        xcoms = session.query(XComModel).filter(XComModel.run_id == run.run_id).all()
        events = session.query(AssetEvent).all()
        result = {
            "state": str(run.state),
            "tasks": {ti.task_id: {"state": str(ti.state), "tries": ti.try_number} for ti in tasks},
            "xcom": {x.task_id: x.value for x in xcoms if x.key == "return_value"},
            "asset_events": [
                {"name": e.asset.name, "uri": e.asset.uri, "dag_id": e.source_dag_id}
                for e in events
            ],
        }
    print("RESULT " + json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
