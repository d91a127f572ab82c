"""Bad configs fail early, on one line, naming the file, the line and the key (issue #4).

Every case runs the real CLI in a subprocess: exit code 2, a single line on stderr, no
traceback, and the message names what to fix.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest

import connector
from connector.config import DEFAULT_MAX_REMOVED_FRACTION, DuckDBSource, load_config
from connector.emulator import Emulator

from .conftest import run_cli

BASE = """\
name: cfg_test
source:
  type: duckdb
  database: warehouse.duckdb
  query: select customer_id, tier, city, blob from customers
identity:
  column: customer_id
attributes:
  loyaltyTier: tier
  city: city
target:
  client_code: demo
  base_url: {base_url}
  status_poll_interval_seconds: 0.05
state:
  path: state/state.duckdb
"""


@pytest.fixture
def folder(tmp_path: Path, warehouse) -> Path:
    """A folder with a small DuckDB warehouse; configs are written next to it."""
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || i AS customer_id, 'gold' AS tier, "
        "'Oslo' AS city, '\\xAA'::BLOB AS blob FROM range(3) t(i)"
    )
    return tmp_path


def _write(folder: Path, text: str, name: str = "sync.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _config(folder: Path, base_url: str = "http://127.0.0.1:9", **replace: str) -> Path:
    text = BASE.format(base_url=base_url)
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return _write(folder, text)


def _fails(*args: str | Path, env: dict[str, str] | None = None) -> str:
    """Run the CLI; assert exit 2 and a one-line error without traceback; return the error.

    ``sync`` may print a progress line first (the run had started when the source's columns
    were checked); the error itself is one line.
    """
    proc = run_cli(*args, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    assert all("sync 'cfg_test'" in line for line in lines if line not in errors), proc.stderr
    return errors[0].removeprefix("error: ")


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def test_unknown_key_names_file_line_and_key_path(folder: Path) -> None:
    path = _config(folder, **{"  city: city\n": "  city: {colum: city}\n"})
    line = _fails("sync", path)
    assert f"{path.resolve()}:{_line_of(path, 'colum:')}: attributes.city.colum: unknown key" in (
        line.replace(str(path), str(path.resolve()))
    )


def test_typo_in_a_top_level_key(folder: Path) -> None:
    path = _config(folder, **{"state:\n": "stat:\n"})
    line = _fails("validate", path)
    assert f":{_line_of(path, 'stat:')}: stat: unknown key" in line
    assert str(path) in line


def test_missing_required_key(folder: Path) -> None:
    path = _config(folder, **{"identity:\n  column: customer_id\n": ""})
    line = _fails("sync", path)
    assert str(path) in line
    assert re.search(r":\d+: identity: required key is missing", line)


def test_missing_nested_required_key(folder: Path) -> None:
    path = _config(folder, **{"  client_code: demo\n": ""})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'target:')}: target.client_code: required key" in line


def test_wrong_type(folder: Path) -> None:
    path = _config(folder, **{"status_poll_interval_seconds: 0.05": "max_attempts: lots"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'max_attempts')}: target.max_attempts:" in line
    assert "valid integer" in line


def test_missing_environment_variable_is_named(folder: Path) -> None:
    path = _config(folder, **{"client_code: demo": "client_code: ${TS_TEST_NOT_SET}"})
    env = {k: v for k, v in os.environ.items() if k != "TS_TEST_NOT_SET"}
    proc = run_cli("sync", path, env=env)
    assert proc.returncode == 2
    line = proc.stderr.strip()
    assert "\n" not in line
    assert f"{path}:{_line_of(path, 'client_code')}: target.client_code" in line
    assert "TS_TEST_NOT_SET is not set" in line


def test_variable_default_and_relative_paths(folder: Path, emulator: Emulator) -> None:
    # ${VAR:-default}, and paths relative to the config file's folder (not the cwd).
    sub = folder / "configs"
    sub.mkdir()
    (folder / "sql").mkdir()
    (folder / "sql" / "q.sql").write_text("select customer_id, tier, city from customers;\n")
    text = BASE.format(base_url="${TS_TEST_BASE_URL:-" + emulator.base_url + "}")
    text = text.replace(
        "database: warehouse.duckdb", "database: ${TS_TEST_DB:-../warehouse.duckdb}"
    )
    text = text.replace(
        "  query: select customer_id, tier, city, blob from customers\n",
        "  query_file: ../sql/q.sql\n",
    )
    text = text.replace("path: state/state.duckdb", "path: ../state/here.duckdb")
    path = _write(sub, text)
    config = load_config(path, environ={})
    assert isinstance(config.source, DuckDBSource)
    assert config.source.database == (folder / "warehouse.duckdb").resolve()
    assert config.source.query_file == (folder / "sql" / "q.sql").resolve()
    assert config.state.path == (folder / "state" / "here.duckdb").resolve()
    assert config.target.base_url == emulator.base_url
    # The CLI runs in the repository folder: relative paths must not resolve against it.
    proc = run_cli("sync", path)
    assert proc.returncode == 0, proc.stderr
    assert len(emulator.profiles()) == 3
    assert (folder / "state" / "here.duckdb").exists()


def test_unreadable_config_file(folder: Path) -> None:
    line = _fails("sync", folder / "nope.yaml")
    assert f"{folder / 'nope.yaml'}: cannot read config" in line


def test_unreadable_query_file(folder: Path) -> None:
    path = _config(
        folder,
        **{
            "  query: select customer_id, tier, city, blob from customers\n": (
                "  query_file: missing.sql\n"
            )
        },
    )
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'query_file')}: source.query_file: cannot read" in line
    assert "missing.sql" in line


def test_mapped_column_missing_from_the_result(folder: Path) -> None:
    path = _config(folder, **{"  city: city\n": "  city: cty\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'city: cty')}: attributes.city:" in line
    assert "no column 'cty'" in line and "customer_id, tier, city, blob" in line
    # validate and plan say the same
    assert _fails("validate", path) == line
    assert _fails("plan", path) == line


def test_identity_column_missing_from_the_result(folder: Path) -> None:
    path = _config(folder, **{"  column: customer_id\n": "  column: cust_id\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'cust_id')}: identity.column:" in line


def test_unsupported_type_without_format(folder: Path) -> None:
    path = _config(folder, **{"  city: city\n": "  city: city\n  raw: blob\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'raw: blob')}: attributes.raw (column blob):" in line
    assert "format: base64 or format: hex" in line


def test_format_that_does_not_apply_or_does_not_parse(folder: Path) -> None:
    path = _config(folder, **{"  city: city\n": "  city: {column: city, format: '%.2f'}\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'format')}: attributes.city (column city):" in line
    assert "does not apply" in line
    _write(
        folder,
        BASE.format(base_url="http://127.0.0.1:9")
        .replace("select customer_id", "select current_date AS d, customer_id")
        .replace("  city: city\n", "  city: city\n  day: {column: d, format: '%Y-%Q'}\n"),
    )
    line = _fails("sync", folder / "sync.yaml")
    assert "attributes.day (column d): format '%Y-%Q' cannot format" in line


def test_duplicate_yaml_key(folder: Path) -> None:
    path = _config(folder, **{"  city: city\n": "  city: city\n  loyaltyTier: city\n"})
    line = _fails("sync", path)
    second = _line_of(path, "loyaltyTier: city")
    assert f"{path}:{second}: attributes.loyaltyTier: duplicate key (first on line" in line


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("profile.tier", "without 'profile.'"),
        ("x" * 129, "at most 128"),
        ("thirdPartyId", "reserved for the profile id"),
        ("' tier'", "leading or trailing spaces"),
    ],
)
def test_invalid_attribute_name(folder: Path, name: str, expected: str) -> None:
    path = _config(folder, **{"  city: city\n": f"  city: city\n  {name}: tier\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, name[:20])}: attributes." in line
    assert expected in line


def test_invalid_exit_attribute_name_and_value(folder: Path) -> None:
    path = _config(folder, **{"target:\n": "on_removed: {set: {profile.vip: 'no'}}\ntarget:\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'on_removed')}: on_removed.set.profile.vip:" in line
    path = _config(folder, **{"target:\n": "on_removed: {set: {vip: ''}}\ntarget:\n"})
    assert "on_removed.set.vip: must not be empty" in _fails("sync", path)
    path = _config(folder, **{"target:\n": "on_removed: forget\ntarget:\n"})
    assert "on_removed: expected 'ignore' or {set:" in _fails("sync", path)


def test_identity_column_as_a_short_form_attribute(folder: Path) -> None:
    # The short form is most likely a slip; the long form says it is meant.
    path = _config(folder, **{"  city: city\n": "  city: city\n  customerId: customer_id\n"})
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'customerId')}: attributes.customerId:" in line
    assert "write customerId: {column: customer_id}" in line
    path = _config(
        folder, **{"  city: city\n": "  city: city\n  customerId: {column: customer_id}\n"}
    )
    assert load_config(path).attributes["customerId"].column == "customer_id"


def test_attribute_forms(folder: Path) -> None:
    path = _config(
        folder,
        **{
            "  city: city\n": ("  city: {column: city, null: 0}\n  flag: {value: true}\n  bad: 5\n")
        },
    )
    line = _fails("sync", path)
    assert f"{path}:{_line_of(path, 'bad: 5')}: attributes.bad:" in line
    assert "got the number 5; expected a column name" in line
    path = _config(
        folder,
        **{"  city: city\n": "  city: {column: city, null: 0}\n  flag: {value: true}\n"},
    )
    config = load_config(path)
    assert config.attributes["city"].null == "0"
    assert config.attributes["flag"].value == "true"
    for spec, message in [
        ("{value: x, null: y}", "apply to a column"),
        ("{column: city, value: x}", "exactly one of 'column' or 'value'"),
        ("{value: ''}", "must not be empty"),
        ("{column: city, null: ''}", "must not be empty"),
        ("{value: " + "v" * 257 + "}", "at most 256"),
    ]:
        path = _config(folder, **{"  city: city\n": f"  city: {spec}\n"})
        line = _fails("sync", path)
        assert f"{path}:{_line_of(path, '  city:')}: attributes.city" in line, line
        assert message in line, line


def test_guardrail_defaults(folder: Path) -> None:
    config = load_config(_config(folder))
    assert config.max_removed_fraction == DEFAULT_MAX_REMOVED_FRACTION == 0.5
    assert config.min_rows is None
    off = load_config(_config(folder, **{"target:\n": "max_removed_fraction: null\ntarget:\n"}))
    assert off.max_removed_fraction is None
    line = _fails("sync", _config(folder, **{"target:\n": "max_removed_fraction: 2\ntarget:\n"}))
    assert "max_removed_fraction: Input should be less than or equal to 1" in line


def test_python_api_raises_config_error_with_the_same_message(folder: Path) -> None:
    path = _config(folder, **{"  city: city\n": "  city: cty\n"})
    with pytest.raises(connector.ConfigError, match=r"attributes\.city: the query result"):
        connector.sync(path)
