"""Getting the changes to Target: batch files (:mod:`.batches`), the API client
(:mod:`.client`, with :mod:`.urls`, :mod:`.answers`, :mod:`.failures` and the pace and
retries of :mod:`.retry`), sending and committing (:mod:`.upload`), and the one settle
policy for batch statuses (:mod:`.statuses`)."""

from __future__ import annotations

from .session import DeliveryReport, Session

__all__ = ["DeliveryReport", "Session"]
