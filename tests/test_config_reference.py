"""The README documents every config key (issue #12): its reference is generated from the
config models' field descriptions, and these tests fail when a key has no description or the
README's copy is stale. Also: config errors that name file, line and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from connector.config import TargetConfig, load_config
from connector.config import reference as config_reference
from connector.config.reference import (
    END,
    START,
    config_fields,
    reference_markdown,
    undocumented,
    with_reference,
)
from connector.errors import ConfigError

from .conftest import ConfigWriter, run_cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_config_key_has_a_description() -> None:
    assert undocumented() == []


def test_the_readme_holds_the_current_reference() -> None:
    assert START in README and END in README
    assert with_reference(README) == README, (
        "README.md's config reference is stale: run python -m connector.config.reference README.md"
    )


def test_the_keys_users_asked_about_are_in_the_readme() -> None:
    block = README[README.index(START) : README.index(END)]
    for key in (
        "target.base_url",
        "target.max_rows_per_batch",
        "target.max_bytes_per_batch",
        "target.calls_per_minute",
        "target.connect_timeout_seconds",
        "target.read_timeout_seconds",
        "target.status_deadline_seconds",
        "min_rows",
        "strict",
        "state.keep_runs",
        "notify",
        "notify.webhook_url",
        "source.schema",  # the alias, as written in YAML
        "attributes.NAME.null",
    ):
        assert f"| `{key}` |" in block, key
    rows = re.findall(r"^\| `([^`]+)` \|", block, re.M)
    assert len(rows) == len(list(config_fields()))


def test_a_key_without_a_description_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    class Extra(BaseModel):
        documented: int = Field(1, description="Has one.")
        forgotten: int = 2

    sections = (*config_reference.SECTIONS, ("`extra`", "extra.", Extra))
    monkeypatch.setattr(config_reference, "SECTIONS", sections)
    assert undocumented() == ["extra.forgotten"]
    assert "| `extra.forgotten` |" in reference_markdown()
    assert with_reference(README) != README  # the README would be stale too


def test_the_refresh_command_rewrites_only_the_block(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(f"# title\n\n{START}\nold table\n{END}\n\nafter\n", encoding="utf-8")
    assert config_reference.main([str(stale)]) == 0
    text = stale.read_text(encoding="utf-8")
    assert text.startswith("# title\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "old table" not in text and "| `target.auth_token` |" in text


# -- config errors that point at the line -------------------------------------------------------


def test_insecure_http_names_file_line_and_key(write_config: ConfigWriter) -> None:
    path = write_config(target={"base_url": "http://target.example.com"})
    line = next(
        number
        for number, text in enumerate(path.read_text().splitlines(), start=1)
        if "base_url" in text
    )
    with pytest.raises(ConfigError) as failure:
        load_config(path)
    assert str(failure.value).startswith(f"{path.resolve()}:{line}: target.base_url: refusing")
    cli = run_cli("sync", path)
    assert cli.returncode == 2
    assert cli.stderr.strip() == f"error: {failure.value}"
    allowed = write_config(
        target={"base_url": "http://target.example.com", "allow_insecure_http": True},
        file_name="allowed.yaml",
    )
    assert load_config(allowed).target.allow_insecure_http


def test_a_pace_above_targets_limit_needs_a_base_url(write_config: ConfigWriter) -> None:
    direct = write_config(target={"base_url": None, "calls_per_minute": 60})
    with pytest.raises(ConfigError, match=r"target\.calls_per_minute: is 60, but Target allows 50"):
        load_config(direct)
    assert TargetConfig(client_code="demo", calls_per_minute=50).calls_per_minute == 50
    path = write_config(target={"calls_per_minute": 600}, file_name="stand_in.yaml")
    assert load_config(path).target.calls_per_minute == 600  # base_url: a loopback stand-in
