"""The dbt source as dbt users expect it: profile and target resolved exactly as dbt resolves
them, the model found by name or meta, and a failed or stale dbt build never synced.

The build checks run against real projects built with the real dbt CLI (dbt-duckdb); the
resolution order is checked on real files with an explicit environment and working directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

import connector
from connector.config import DbtSource, SyncConfig, parse_config
from connector.emulator import Emulator
from connector.errors import ConfigError, UpstreamError
from connector.integrations._run import source_facts, summary
from connector.sources import open_reader
from connector.sources.dbt_profiles import setup
from connector.sources.dbt_source import resolve_dbt

from .conftest import run_cli

# One worker runs these (one build of the project, not one per worker).
pytestmark = pytest.mark.xdist_group("dbt_project")

DBT = str(Path(sys.executable).parent / "dbt")
KEYS = {"type", "path"}

GOOD_SQL = """
{{ config(materialized='table') }}
select
    'c' || i as id,
    case when {{ var('fail_test', false) }} then null else 'tier ' || i end as tier,
    '{{ target.name }}' as built_for
from range(1, 4) t(i)
"""
BAD_SQL = """
{{ config(materialized='table') }}
select {{ 'no_such_column' if var('fail', false) else "'c1'" }} as id, 'x' as tier
"""
DOWN_SQL = "{{ config(materialized='table') }}\nselect * from {{ ref('bad') }}"
SCHEMA_YML = {
    "version": 2,
    "models": [
        {
            "name": "good",
            "config": {"meta": {"target_sync": ["vip", "winback"], "owner": "crm"}},
            "columns": [{"name": "tier", "data_tests": ["not_null"]}],
        },
        {"name": "bad", "config": {"meta": {"target_sync": "vip_bad"}}},
    ],
}


def write_project(root: Path) -> Path:
    """A dbt-duckdb project with a dev and a prod target (one DuckDB file each)."""
    (root / "models").mkdir(parents=True)
    project = {"name": "shop", "version": "1.0", "config-version": 2, "profile": "shop"}
    (root / "dbt_project.yml").write_text(yaml.safe_dump(project))
    outputs = {
        "dev": {"type": "duckdb", "path": "dev.duckdb", "threads": 1},
        "prod": {"type": "duckdb", "path": "prod.duckdb", "threads": 1},
    }
    (root / "profiles.yml").write_text(
        yaml.safe_dump({"shop": {"target": "dev", "outputs": outputs}})
    )
    for name, sql in (("good", GOOD_SQL), ("bad", BAD_SQL), ("down", DOWN_SQL)):
        (root / "models" / f"{name}.sql").write_text(sql)
    (root / "models" / "schema.yml").write_text(yaml.safe_dump(SCHEMA_YML, sort_keys=False))
    return root


def dbt(project: Path, *args: str, ok: bool = True, **env: str) -> None:
    """Run the real dbt CLI in the project folder (where dbt finds profiles.yml)."""
    environ = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env}
    for name in ("DBT_PROFILES_DIR", "DBT_PROJECT_DIR", "DBT_TARGET", "DBT_PROFILE"):
        if name not in env:
            environ.pop(name, None)
    done = subprocess.run(
        [DBT, *args], cwd=project, env=environ, capture_output=True, text=True, timeout=300
    )
    if ok:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    else:
        assert done.returncode != 0, done.stdout[-3000:]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, built for its default target (dev)."""
    root = write_project(tmp_path_factory.mktemp("dbt_build") / "shop")
    dbt(root, "build")
    return root


Copier = Callable[..., Path]


@pytest.fixture
def project_copy(built: Path, tmp_path: Path) -> Copier:
    """A copy of the built project, optionally after one more dbt command of this test."""

    def copy(*dbt_args: str, ok: bool = True, **env: str) -> Path:
        root = tmp_path / "shop"
        shutil.copytree(built, root, ignore=shutil.ignore_patterns("logs", "*.wal"))
        if dbt_args:
            dbt(root, *dbt_args, ok=ok, **env)
        return root

    return copy


def sync_config(folder: Path, source: dict[str, Any], **top: Any) -> SyncConfig:
    text = yaml.safe_dump(
        {
            "name": "dbt_sync",
            "source": source,
            "identity": {"column": "id"},
            "attributes": {"tier": "tier", "builtFor": "built_for"},
            "target": {"client_code": "demo"},
            **top,
        }
    )
    return parse_config(text, folder / "sync.yaml", {})


def rows(config: SyncConfig) -> list[dict[str, Any]]:
    with open_reader(config) as reader:
        table = pa.Table.from_batches(list(reader), reader.schema)
    return sorted(table.to_pylist(), key=lambda row: str(row["id"]))


def built_for(config: SyncConfig) -> set[str]:
    return {row["built_for"] for row in rows(config)}


def source(project: Path, model: str = "good", **keys: Any) -> dict[str, Any]:
    return {"type": "dbt", "project_dir": str(project), "model": model, **keys}


# --- profile, target, profiles dir, project dir: dbt's order --------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A project with profiles.yml in three places: a flag's folder, the working directory
    and ~/.dbt, each naming a different default target."""
    project = tmp_path / "work" / "shop"
    project.mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": "shop", "config-version": 2, "profile": "shop"})
    )
    places = {
        "flag": tmp_path / "flagdir",
        "env": tmp_path / "envdir",
        "cwd": tmp_path / "work",
        "home": tmp_path / "home" / ".dbt",
    }
    for name, folder in places.items():
        folder.mkdir(parents=True, exist_ok=True)
        outputs = {
            t: {"type": "duckdb", "path": f"{name}-{t}.duckdb"} for t in ("dev", "prod", name)
        }
        profiles = {
            "shop": {"target": name, "outputs": outputs},
            "other": {"target": "dev", "outputs": outputs},
        }
        (folder / "profiles.yml").write_text(yaml.safe_dump(profiles))
    return {"project": project, **places, "home": tmp_path / "home"}


def resolved(
    layout: dict[str, Path], environ: dict[str, str], cwd: Path | None = None, **keys: Any
) -> tuple[Path, str, str, str, str]:
    dbt_source = DbtSource.model_validate({"type": "dbt", "model": "m", **keys})
    found = setup(
        dbt_source,
        "sync 't'",
        KEYS,
        {"HOME": str(layout["home"]), **environ},
        cwd or layout["cwd"],
    )
    return (
        found.profiles_yml.parent,
        found.profile,
        found.target,
        found.target_from,
        found.output["path"],
    )


def test_profiles_dir_flag_then_variable_then_working_directory_then_home(
    layout: dict[str, Path],
) -> None:
    project = str(layout["project"])
    flag = resolved(
        layout,
        {"DBT_PROFILES_DIR": str(layout["env"])},
        project_dir=project,
        profiles_dir=str(layout["flag"]),
    )
    assert flag[0] == layout["flag"] and flag[2] == "flag"
    env = resolved(layout, {"DBT_PROFILES_DIR": str(layout["env"])}, project_dir=project)
    assert env[0] == layout["env"] and env[2] == "env"
    # An empty variable is unset, as for dbt; the working directory holds profiles.yml.
    cwd = resolved(layout, {"DBT_PROFILES_DIR": ""}, project_dir=project)
    assert cwd[0] == layout["cwd"] and cwd[2] == "cwd"
    # dbt does not look in the project folder: from elsewhere, ~/.dbt.
    (layout["project"] / "profiles.yml").write_text((layout["cwd"] / "profiles.yml").read_text())
    home = resolved(layout, {}, cwd=layout["flag"].parent, project_dir=project)
    assert home[0] == layout["home"] / ".dbt" and home[2] == "home"


def test_target_and_profile_flag_then_variable_then_default(layout: dict[str, Path]) -> None:
    project = str(layout["project"])
    assert resolved(layout, {"DBT_TARGET": "dev"}, project_dir=project, target="prod")[2:] == (
        "prod",
        "source.target",
        "cwd-prod.duckdb",
    )
    assert resolved(layout, {"DBT_TARGET": "prod"}, project_dir=project)[2:] == (
        "prod",
        "DBT_TARGET",
        "cwd-prod.duckdb",
    )
    assert resolved(layout, {}, project_dir=project)[2:4] == ("cwd", "profiles.yml")
    assert resolved(layout, {"DBT_PROFILE": "other"}, project_dir=project)[1:3] == (
        "other",
        "dev",
    )
    assert resolved(layout, {"DBT_PROFILE": "other"}, project_dir=project, profile="shop")[1] == (
        "shop"
    )


def test_project_dir_from_variable_or_the_working_directory_upwards(
    layout: dict[str, Path],
) -> None:
    models = layout["project"] / "models" / "marts"
    models.mkdir(parents=True)
    found = setup(
        DbtSource.model_validate({"type": "dbt", "model": "m", "profiles_dir": str(layout["env"])}),
        "sync 't'",
        KEYS,
        {},
        models,
    )
    assert found.project_dir == layout["project"]
    via_env = setup(
        DbtSource.model_validate({"type": "dbt", "model": "m"}),
        "sync 't'",
        KEYS,
        {"DBT_PROJECT_DIR": "shop"},
        layout["cwd"],
    )
    assert via_env.project_dir == layout["project"] and via_env.profiles_yml.parent == layout["cwd"]
    with pytest.raises(ConfigError, match=r"no dbt project: .* set source.project_dir"):
        setup(
            DbtSource.model_validate({"type": "dbt", "model": "m"}),
            "sync 't'",
            KEYS,
            {},
            layout["home"],
        )


def test_profiles_yml_only_in_the_project_folder_says_dbt_would_not_read_it(
    tmp_path: Path, layout: dict[str, Path]
) -> None:
    (layout["project"] / "profiles.yml").write_text("shop: {}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with pytest.raises(ConfigError) as caught:
        setup(
            DbtSource.model_validate(
                {"type": "dbt", "model": "m", "project_dir": str(layout["project"])}
            ),
            "sync 't'",
            KEYS,
            {"HOME": str(tmp_path / "nohome")},
            elsewhere,
        )
    message = str(caught.value)
    assert "\n" not in message and "dbt does not look in the project folder" in message
    assert "DBT_PROFILES_DIR" in message


# --- against a real dbt build --------------------------------------------------------------


@pytest.mark.slow
def test_dbt_target_variable_chooses_the_target_and_the_run_says_which(
    project_copy: Copier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = project_copy("build", DBT_TARGET="prod")  # artifacts of a prod build
    with Emulator(client_code="demo") as emulator:
        config_file = tmp_path / "sync.yaml"
        config_file.write_text(
            yaml.safe_dump(
                {
                    "name": "dbt_sync",
                    "source": source(project),
                    "identity": {"column": "id"},
                    "attributes": {"tier": "tier", "builtFor": "built_for"},
                    "target": {"client_code": "demo", "base_url": emulator.base_url},
                    "state": {"path": str(tmp_path / "state.duckdb")},
                }
            )
        )
        env = {"DBT_TARGET": "prod", "DBT_PROFILES_DIR": str(project)}
        done = run_cli("sync", config_file, env=env)
        assert done.returncode == 0, done.stderr
        assert "target 'prod' (DBT_TARGET)" in done.stderr
        assert "profile 'shop' (dbt_project.yml)" in done.stderr
        assert {p["builtFor"] for p in emulator.profiles().values()} == {"prod"}
        logged = run_cli("--log-format", "json", "sync", config_file, env=env)
        events = [json.loads(line) for line in logged.stderr.splitlines()]
        (event,) = [e for e in events if e["event"] == "dbt_source"]
        assert (event["dbt_target"], event["dbt_target_from"]) == ("prod", "DBT_TARGET")
        assert event["dbt_model"] == "model.shop.good" and event["sync"] == "dbt_sync"
        assert (event["dbt_last_command"], event["dbt_model_status"]) == ("build", "success")
        # The orchestrator integrations put the same facts into the run summary.
        monkeypatch.setenv("DBT_TARGET", "prod")
        monkeypatch.setenv("DBT_PROFILES_DIR", str(project))
        with source_facts() as facts:
            result = connector.sync(config_file)
        assert summary(result, facts)["source"]["dbt_target"] == "prod"

    monkeypatch.chdir(project)  # dbt's default profiles dir: the working directory
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.setenv("DBT_TARGET", "prod")
    config = sync_config(tmp_path, source(project))
    resolution = resolve_dbt(config)
    assert (resolution.setup.target, resolution.setup.target_from) == ("prod", "DBT_TARGET")
    assert resolution.setup.profiles_yml == project / "profiles.yml"
    assert built_for(config) == {"prod"}
    # With dev's artifacts in target/, reading prod would name dev's tables: refused.
    dbt(project, "compile")
    with pytest.raises(ConfigError) as caught:
        rows(config)
    message = str(caught.value)
    assert "for target 'dev'" in message and "reads target 'prod' (from DBT_TARGET)" in message
    monkeypatch.delenv("DBT_TARGET")
    assert built_for(config) == {"dev"}
    # That compile did not build the model: its age is unknown, which max_age refuses.
    stale = sync_config(tmp_path, source(project, max_age="4d"))
    with pytest.raises(UpstreamError, match=r"cannot tell when dbt model 'good' was last built"):
        rows(stale)


@pytest.mark.slow
def test_a_model_whose_latest_run_failed_or_was_skipped_is_not_synced(
    project_copy: Copier, tmp_path: Path
) -> None:
    # One dbt build: 'bad' errors, 'down' (built from it) is skipped, a test on 'good' fails.
    project = project_copy("build", "--vars", "{fail: true, fail_test: true}", ok=False)
    env = {"DBT_PROFILES_DIR": str(project)}
    for model, status in (("bad", "error"), ("down", "skipped")):
        config = tmp_path / f"{model}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "name": f"sync_{model}",
                    "source": source(project, model),
                    "identity": {"column": "id"},
                    "attributes": {"tier": "tier"},
                    "target": {"client_code": "demo", "base_url": "http://127.0.0.1:9"},
                    "state": {"path": str(tmp_path / "state.duckdb")},
                }
            )
        )
        done = run_cli("sync", config, env=env)
        assert done.returncode == 1, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and "Traceback" not in done.stderr
        assert f"model '{model}' ended '{status}'" in lines[0]
        assert "nothing was read or sent" in lines[0] and "allow_failed_build" in lines[0]
    # The override reads the table the previous, successful build left.
    allowed = sync_config(tmp_path, {**source(project, "bad"), "profiles_dir": str(project)})
    with pytest.raises(UpstreamError):
        rows(allowed)
    override = {**source(project, "bad"), "profiles_dir": str(project), "allow_failed_build": True}
    assert [r["id"] for r in rows(sync_config(tmp_path, override, attributes={"t": "tier"}))] == [
        "c1"
    ]
    # 'good' was built, but dbt build would skip everything downstream of its failed test.
    config = sync_config(tmp_path, {**source(project), "profiles_dir": str(project)})
    with pytest.raises(UpstreamError) as caught:
        rows(config)
    assert "failed test(s) on model 'good' (not_null_good_tier" in str(caught.value)


@pytest.mark.slow
def test_max_age_of_the_last_successful_build(project_copy: Copier, tmp_path: Path) -> None:
    project = project_copy()
    keys = {"profiles_dir": str(project)}
    assert built_for(sync_config(tmp_path, {**source(project), **keys, "max_age": "1h"})) == {"dev"}
    # The same artifacts as dbt wrote them three days earlier.
    results_path = project / "target" / "run_results.json"
    results = json.loads(results_path.read_text())
    for result in results["results"]:
        for timing in result["timing"]:
            moment = datetime.fromisoformat(timing["completed_at"].replace("Z", "+00:00"))
            timing["completed_at"] = (moment - timedelta(days=3)).isoformat()
    results_path.write_text(json.dumps(results))
    with pytest.raises(UpstreamError, match=r"last built 3d0h ago .* more than its max_age 24h"):
        rows(sync_config(tmp_path, {**source(project), **keys, "max_age": "24h"}))
    assert built_for(sync_config(tmp_path, {**source(project), **keys, "max_age": "4d"})) == {"dev"}


@pytest.mark.slow
def test_model_selected_by_a_meta_entry(project_copy: Copier, tmp_path: Path) -> None:
    project = project_copy()
    keys = {"type": "dbt", "project_dir": str(project), "profiles_dir": str(project)}
    by_meta = sync_config(tmp_path, {**keys, "meta": {"target_sync": "winback"}})
    assert resolve_dbt(by_meta).model == "model.shop.good"
    assert [r["id"] for r in rows(by_meta)] == ["c1", "c2", "c3"]
    both = sync_config(tmp_path, {**keys, "meta": {"target_sync": "vip", "owner": "crm"}})
    assert resolve_dbt(both).model == "model.shop.good"
    with pytest.raises(ConfigError, match=r"no dbt model .* has meta \{target_sync: 'nope'\}"):
        resolve_dbt(sync_config(tmp_path, {**keys, "meta": {"target_sync": "nope"}}))


def test_source_needs_exactly_one_of_model_or_meta(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"source: give exactly one of 'model' or 'meta'"):
        sync_config(tmp_path, {"type": "dbt", "project_dir": ".", "meta": {"a": 1}, "model": "m"})
    with pytest.raises(ConfigError, match=r"source.max_age: 'soon' is not a duration"):
        sync_config(tmp_path, {"type": "dbt", "project_dir": ".", "model": "m", "max_age": "soon"})
    config = sync_config(tmp_path, {"type": "dbt", "model": "m", "max_age": "1d12h"})
    assert isinstance(config.source, DbtSource)
    assert config.source.max_age == timedelta(hours=36) and config.source.project_dir is None
    assert datetime.now(UTC) - config.source.max_age < datetime.now(UTC)


# --- exposures -----------------------------------------------------------------------------


def write_sync(folder: Path, name: str, source: dict[str, Any], **top: Any) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": name,
                "source": source,
                "identity": {"column": "id"},
                "attributes": {"tier": "tier"},
                "target": {"client_code": "demo"},
                **top,
            }
        )
    )
    return path


@pytest.mark.slow
def test_exposures_are_valid_dbt_and_show_what_feeds_each_sync(
    project_copy: Copier, tmp_path: Path
) -> None:
    project = project_copy()
    configs = tmp_path / "configs"
    configs.mkdir()
    keys = {"type": "dbt", "project_dir": str(project)}
    write_sync(configs, "vip-customers", {**keys, "meta": {"target_sync": "vip"}}, tags=["daily"])
    write_sync(
        configs,
        "downstream",
        {
            **keys,
            "model": "shop.down",
            "exposure": {
                "owner": {"name": "CRM team"},
                "url": "https://wiki.example.com/downstream",
                "maturity": "high",
            },
        },
    )
    (configs / "plain.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "plain",
                "source": {"type": "duckdb", "database": "w.duckdb", "query": "select 1"},
                "identity": {"column": "id"},
                "attributes": {"tier": "tier"},
                "target": {"client_code": "demo"},
            }
        )
    )
    no_owner = run_cli("dbt", "exposures", configs)
    assert no_owner.returncode == 2 and no_owner.stdout == ""
    assert "vip-customers.yaml" in no_owner.stderr and "--owner-name" in no_owner.stderr

    done = run_cli("dbt", "exposures", configs, "--owner-email", "crm@example.com")
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load(done.stdout)
    assert document["version"] == 2
    by_name = {e["name"]: e for e in document["exposures"]}
    assert set(by_name) == {"vip_customers", "downstream"}  # the duckdb sync has no model
    vip = by_name["vip_customers"]
    assert vip["type"] == "application" and vip["owner"] == {"email": "crm@example.com"}
    assert vip["depends_on"] == ["ref('good')"] and "daily" in vip["tags"]
    assert by_name["downstream"]["owner"] == {"name": "CRM team"}
    assert by_name["downstream"]["depends_on"] == ["ref('shop', 'down')"]

    selected = run_cli("dbt", "exposures", configs, "--owner-name", "x", "-s", "tag:daily")
    assert [e["name"] for e in yaml.safe_load(selected.stdout)["exposures"]] == ["vip_customers"]

    # dbt itself accepts the file and draws the lineage.
    (project / "models" / "exposures.yml").write_text(done.stdout)
    environ = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    listed = subprocess.run(
        [DBT, "ls", "--select", "+exposure:downstream", "--output", "name", "-q"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert listed.returncode == 0, listed.stdout[-3000:] + listed.stderr[-2000:]
    assert set(listed.stdout.split()) == {"downstream", "down", "bad"}
