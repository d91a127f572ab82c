"""A local Adobe Target emulator for tests, demos and development.

A real HTTP server on loopback that speaks the bulk profile API (upload v1/v2, batch status,
profile read-back) as described in /work/shared/target-api.md sections 1 to 5, keeps profiles
in memory, injects faults on demand and records what it received::

    from connector.emulator import Emulator, Faults

    with Emulator(client_code="demo") as target:
        ...  # point the connector at target.base_url
        target.faults.fail_next = 2          # the next two uploads get HTTP 503
        assert target.profiles()["cust-0001"]["city"] == "São Paulo"
        assert not any(u.duplicate_ids for u in target.uploads)

Out of process (``target-sync emulator --port 8899``), the same state and switches are reached
over HTTP under ``/_emulator/`` (see :mod:`connector.emulator.server`).
"""

from .faults import Faults
from .server import Emulator, UploadRecord, serve_forever

__all__ = ["Emulator", "Faults", "UploadRecord", "serve_forever"]
