"""Long ids are shortened in human output and kept whole in JSON (issue #12)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from connector.cli.human import MAX_ID_CHARS
from connector.cli.human import short_id as _short_id
from connector.emulator import Emulator

from .conftest import ConfigWriter, run_cli


def test_short_ids_stay_whole_and_long_ones_keep_head_and_tail() -> None:
    assert _short_id("c-123") == "c-123"
    uuid = "3f2b8a4e-9c1d-4e7a-8b6f-0a1b2c3d4e5f-xy"  # 39 characters
    assert _short_id(uuid) == uuid
    long = "a" * 200 + "-tail-000042"
    short = _short_id(long)
    assert len(short) == MAX_ID_CHARS
    assert short == "a" * 27 + "…" + "-tail-000042"


def test_status_shows_long_ids_shortened_and_json_keeps_them(
    emulator: Emulator, warehouse: Callable[[str], Path], write_config: ConfigWriter
) -> None:
    failed = "f" * 180 + "-failed-0001"
    rejected = "r" * 180 + "+rejected-01"  # a '+' in a thirdPartyId is rejected
    warehouse(
        "CREATE TABLE customers AS SELECT * FROM (VALUES "
        f"('{failed}', 'gold', 'x'), ('{rejected}', 'gold', 'x'), ('c1', 'gold', 'x')"
        ") t(customer_id, tier, city)"
    )
    emulator.faults.failed_ids = {failed}
    config = write_config(emulator=emulator)
    assert run_cli("sync", config).returncode == 3

    text = run_cli("status", config)
    assert text.returncode == 0, text.stderr
    assert failed not in text.stdout and rejected not in text.stdout
    assert repr(_short_id(failed)) + " in batch " in text.stdout
    assert repr(_short_id(rejected)) + ": id_has_plus_or_slash" in text.stdout

    data = json.loads(run_cli("status", config, "--json").stdout)
    assert [row["id"] for row in data["failed_rows"]] == [failed]
    assert [row["id"] for row in data["rejects"]] == [rejected]
