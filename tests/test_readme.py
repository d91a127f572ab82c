"""The README stays true: its demo command runs and its config example is valid."""

from __future__ import annotations

import re
from pathlib import Path

from connector.config import parse_config

from .conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_names_the_two_commands_and_the_makefile_has_them() -> None:
    assert "make demo" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_demo_runs_and_sends_only_the_changes(tmp_path: Path) -> None:
    # `make demo` is `target-sync demo` once .venv exists.
    done = run_cli("demo", "--workdir", tmp_path / "demo")
    assert done.returncode == 0, done.stderr
    assert "demo OK: only changed profiles were sent" in done.stdout
    assert "third sync: 4,502 rows read, 2 new, 4 changed" in done.stdout


def test_config_example_in_readme_is_valid(tmp_path: Path) -> None:
    example = re.search(r"## A sync config\n\n```yaml\n(.*?)```", README, re.S)
    assert example is not None
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "vip_customers.sql").write_text("select 1 as customer_id")
    configs = tmp_path / "configs"
    configs.mkdir()
    config = parse_config(
        example.group(1),
        configs / "vip.yaml",
        {"TARGET_CLIENT_CODE": "acme", "TARGET_PROFILE_TOKEN": "t0ken"},
    )
    assert config.name == "vip_customers"
    assert config.source.type == "duckdb"
    assert config.target.client_code == "acme"
    assert config.attributes["lifetimeValue"].null == "0"
    assert config.state.path == (configs / ".target-sync/state.duckdb").resolve()


def test_dbt_source_example_in_readme_is_valid(tmp_path: Path) -> None:
    example = re.search(r"### dbt\n\n```yaml\n(.*?)```", README, re.S)
    assert example is not None
    text = (
        "name: vip_customers\n"
        + example.group(1)
        + "identity: {column: customer_id}\nattributes: {tier: tier}\n"
        + "target: {client_code: acme}\n"
    )
    config = parse_config(text, tmp_path / "configs" / "vip.yaml", {})
    assert config.source.type == "dbt"
    assert config.source.model == "vip_customers" and config.source.max_age is not None
    assert config.source.exposure is not None and config.source.exposure.owner is not None
