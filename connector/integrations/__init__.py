"""Where target-sync meets the tools around it.

- :mod:`connector.integrations.dbt`: dbt exposures for the syncs (``target-sync dbt
  exposures``), so dbt docs and ``dbt ls --select +exposure:NAME`` show them.
- :mod:`connector.integrations.airflow`: an Airflow operator (Airflow 3).
- :mod:`connector.integrations.dagster`: a Dagster asset factory.

Airflow and Dagster are not dependencies of target-sync: each module imports its
orchestrator when it is used, in the environment that already has it.
"""
