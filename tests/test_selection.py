"""Choosing syncs like dbt chooses models: tags, names and paths; union, intersection, exclude."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.emulator import Emulator
from connector.errors import ConfigError
from connector.selection import Candidate, select

from .conftest import CUSTOMERS, ConfigWriter, run_cli


@pytest.fixture
def candidates(tmp_path: Path) -> list[Candidate]:
    crm = tmp_path / "configs" / "crm"
    return [
        Candidate(crm / "vip.yaml", "vip_customers", ("daily", "crm")),
        Candidate(crm / "lapsed.yaml", "lapsed_customers", ("hourly", "crm")),
        Candidate(tmp_path / "configs" / "web.yaml", "web_visitors", ("daily",)),
        Candidate(tmp_path / "configs" / "test_sync.yaml", "test_sync", ()),
    ]


def names(picked: list[Candidate]) -> list[str | None]:
    return [c.name for c in picked]


def test_tags_names_and_paths(
    candidates: list[Candidate], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert names(select(candidates, ["tag:daily"])) == ["vip_customers", "web_visitors"]
    assert names(select(candidates, ["tag:hour*"])) == ["lapsed_customers"]
    assert names(select(candidates, ["vip_*"])) == ["vip_customers"]
    assert names(select(candidates, ["name:*_customers"])) == ["vip_customers", "lapsed_customers"]
    assert names(select(candidates, ["path:configs/crm"])) == ["vip_customers", "lapsed_customers"]
    assert names(select(candidates, ["configs/crm/"])) == ["vip_customers", "lapsed_customers"]
    assert names(select(candidates, ["configs/web.yaml"])) == ["web_visitors"]
    assert names(select(candidates, ["path:configs/*/l*.yaml"])) == ["lapsed_customers"]
    absolute = str(tmp_path / "configs" / "crm" / "vip.yaml")
    assert names(select(candidates, [f"path:{absolute}"])) == ["vip_customers"]


def test_union_intersection_and_exclude(candidates: list[Candidate]) -> None:
    # Spaces (or several --select) are a union, commas an intersection, as in dbt.
    assert names(select(candidates, ["tag:hourly web_visitors"])) == [
        "lapsed_customers",
        "web_visitors",
    ]
    assert names(select(candidates, ["tag:hourly", "web_visitors"])) == [
        "lapsed_customers",
        "web_visitors",
    ]
    assert names(select(candidates, ["tag:daily,tag:crm"])) == ["vip_customers"]
    assert names(select(candidates, [], ["tag:crm"])) == ["web_visitors", "test_sync"]
    assert names(select(candidates, ["tag:daily"], ["name:web_*"])) == ["vip_customers"]
    assert names(select(candidates)) == names(candidates)


def test_a_config_that_failed_to_load_is_kept_unless_its_path_decides(
    candidates: list[Candidate], tmp_path: Path
) -> None:
    broken = Candidate(tmp_path / "configs" / "crm" / "broken.yaml")
    everything = [*candidates, broken]
    # Its tags are unknown: it might be a daily one, so its error is reported, not skipped.
    assert select(everything, ["tag:daily"])[-1] is broken
    assert broken not in select(everything, [f"path:{tmp_path / 'configs' / 'web.yaml'}"])
    assert broken not in select(everything, [], [f"path:{tmp_path / 'configs' / 'crm'}"])


def test_bad_selectors_and_no_match_are_one_line_errors(candidates: list[Candidate]) -> None:
    with pytest.raises(ConfigError, match=r"unknown selector method 'config'"):
        select(candidates, ["config:materialized"])
    with pytest.raises(ConfigError, match=r"nothing after 'tag:'"):
        select(candidates, ["tag:"])
    with pytest.raises(ConfigError) as caught:
        select(candidates, ["tag:weekly"])
    assert str(caught.value) == (
        "no config matches --select tag:weekly (tags in these configs: crm, daily, hourly); "
        "nothing was run"
    )


def test_sync_runs_only_the_selected_configs(
    emulator: Emulator, warehouse, write_config: ConfigWriter, tmp_path: Path
) -> None:
    warehouse(CUSTOMERS.format(n=5))
    folder = tmp_path / "configs"
    folder.mkdir()
    for name, tags in (("vip", ["daily", "crm"]), ("lapsed", ["hourly"]), ("web", ["daily"])):
        write_config(emulator=emulator, name=name, file_name=f"configs/{name}.yaml", tags=tags)
    done = run_cli(
        "--log-format", "json", "sync", folder, "--select", "tag:daily", "--exclude", "web"
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    ran = [e["sync"] for e in events if e["event"] == "run_end"]
    assert ran == ["vip"] and len(emulator.uploads) == 1

    both = run_cli("sync", folder, "-s", "tag:daily")
    assert both.returncode == 0, both.stderr
    assert len(emulator.uploads) == 2  # web's first run; vip had nothing new

    none = run_cli("sync", folder, "--select", "tag:weekly")
    assert none.returncode == 2
    assert none.stderr.strip() == (
        "error: no config matches --select tag:weekly (tags in these configs: crm, daily, "
        "hourly); nothing was run"
    )


def test_tags_must_be_single_words(write_config: ConfigWriter) -> None:
    config = write_config(tags=["daily run"])
    done = run_cli("sync", config)
    assert done.returncode == 2
    assert "tags.0: tag 'daily run': use letters, digits" in done.stderr
