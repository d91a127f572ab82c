"""One profile too big for a batch (issue #12): rejected at staging as ``line_too_large``,
the others delivered, nothing raised mid-delivery."""

from __future__ import annotations

from urllib.parse import quote

import pytest

import connector
from connector.emulator import Emulator

from .conftest import ConfigWriter, run_cli

MAX_BYTES = 2_048
# 'é' is 2 bytes of UTF-8 and 6 once URL-encoded: two values of 250 make a line of ~3 KB.
BIG = "é" * 250


def _line(pid: str, *values: str) -> int:
    return (
        len(quote(pid, safe="-_.~")) + 1 + len(",".join(quote(v, safe="-_.~") for v in values)) + 1
    )


def test_a_line_larger_than_a_batch_is_rejected_and_the_rest_delivered(
    emulator: Emulator, warehouse, write_config: ConfigWriter
) -> None:
    warehouse(
        "CREATE TABLE customers AS SELECT 'c' || lpad(i::VARCHAR, 3, '0') AS customer_id, "
        f"CASE WHEN i = 25 THEN '{BIG}' ELSE 'gold' END AS tier, "
        f"CASE WHEN i = 25 THEN '{BIG}' ELSE 'Oslo ' || i END AS city FROM range(60) t(i)"
    )
    # Small batches, so batches go out before and after the big profile's place.
    config = write_config(
        emulator=emulator, target={"max_bytes_per_batch": MAX_BYTES, "max_rows_per_batch": 10}
    )
    proc = run_cli("sync", config)
    assert proc.returncode == 3, proc.stderr
    assert "line_too_large: 1" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    profiles = emulator.profiles()
    assert set(profiles) == {f"c{i:03d}" for i in range(60)} - {"c025"}
    assert profiles["c026"] == {"loyaltyTier": "gold", "city": "Oslo 26"}
    assert all(len(upload.body) < MAX_BYTES for upload in emulator.uploads)

    header = len("batch=thirdPartyId,loyaltyTier,city\n")
    (reject,) = connector.status(config)["rejects"]
    assert (reject["id"], reject["reason"]) == ("c025", "line_too_large")
    assert reject["detail"] == (
        f"{_line('c025', BIG, BIG)} bytes URL-encoded, over the {MAX_BYTES - header - 1} a line "
        f"may take in a batch of target.max_bytes_per_batch={MAX_BYTES}"
    )
    assert connector.plan(config).rejected == {"line_too_large": 1}

    # Nothing else is sent again; with room for it, the profile goes out on the next run.
    roomy = write_config(emulator=emulator, target={"max_bytes_per_batch": 8_192})
    fixed = connector.sync(roomy)
    assert (fixed.exit_code, fixed.rejected, fixed.new, fixed.sent) == (0, {}, 1, 1)
    assert emulator.profiles()["c025"] == {"loyaltyTier": BIG, "city": BIG}


@pytest.mark.parametrize("room_delta", [0, 1])
def test_a_line_of_exactly_the_room_is_sent_and_one_byte_more_is_not(
    emulator: Emulator, warehouse, write_config: ConfigWriter, room_delta: int
) -> None:
    header = len("batch=thirdPartyId,loyaltyTier,city\n")
    room = MAX_BYTES - header - 1
    # '%' is 3 bytes encoded: fill the line up to the room (plus room_delta bytes) with a
    # long id and two values, each within 256 characters.
    big = "%" * 250
    tier = "%" * 250
    fill = room - _line(big, tier, "") + room_delta
    city = "%" * (fill // 3) + "x" * (fill % 3)
    assert _line(big, tier, city) == room + room_delta and len(city) <= 256
    warehouse(
        "CREATE TABLE customers (customer_id VARCHAR, tier VARCHAR, city VARCHAR);"
        f"INSERT INTO customers VALUES ('{big}', '{tier}', '{city}'), ('small', 'gold', 'Oslo')"
    )
    config = write_config(emulator=emulator, target={"max_bytes_per_batch": MAX_BYTES})
    result = connector.sync(config)
    if room_delta:
        assert result.rejected == {"line_too_large": 1}
        assert set(emulator.profiles()) == {"small"}
    else:
        assert (result.rejected, result.sent) == ({}, 2)
        assert emulator.profiles()[big] == {"loyaltyTier": tier, "city": city}
        assert max(len(upload.body) for upload in emulator.uploads) == MAX_BYTES - 1


def test_a_batch_size_that_cannot_hold_the_header_is_a_config_error(
    warehouse, write_config: ConfigWriter
) -> None:
    warehouse("CREATE TABLE customers AS SELECT 'c1' AS customer_id, 'x' AS tier")
    attributes = {f"attribute_with_a_long_name_{j:03d}": "tier" for j in range(40)}
    config = write_config(attributes=attributes, target={"max_bytes_per_batch": 1_024})
    for command in ("sync", "validate"):  # validate does not call fine what a run refuses
        proc = run_cli(command, config)
        assert proc.returncode == 2, command
        message = proc.stderr.strip().splitlines()[-1]
        assert f"{config.resolve()}:" in message
        assert (
            "target.max_bytes_per_batch: a batch of 1,024 bytes cannot hold the header" in message
        )
        assert "raise max_bytes_per_batch" in message
