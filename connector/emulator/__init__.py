"""A local Adobe Target emulator for tests, demos and development.

A real HTTP server on loopback that speaks Target's bulk profile API as documented by Adobe
(upload v1/v2, batch status, profile read-back), keeps profiles in memory, injects faults on
demand and records what it received::

    from connector.emulator import Emulator, Faults

    with Emulator(client_code="demo") as target:
        ...  # point the connector at target.base_url
        target.faults.fail_next = 2          # the next two uploads get HTTP 503
        assert target.profiles()["cust-0001"]["city"] == "São Paulo"
        assert not any(u.duplicate_ids for u in target.uploads)

Out of process (``target-sync emulator --port 8899``), the same state and switches are reached
over HTTP under ``/_emulator/`` (see :mod:`connector.emulator.admin`).

Modules: :mod:`.server` (sockets, :class:`Emulator`), :mod:`.app` (request -> answer: routing
and the API's behaviour), :mod:`.answers` (the XML and JSON answered), :mod:`.faults` (the
switches and their decisions), :mod:`.account` and :mod:`.store` (what Target keeps per client
code), :mod:`.batchfile` (the upload body), :mod:`.records` (what the emulator records),
:mod:`.admin` (``/_emulator/``).
"""

from .faults import Faults
from .records import UploadRecord
from .server import Emulator, serve_forever

__all__ = ["Emulator", "Faults", "UploadRecord", "serve_forever"]
