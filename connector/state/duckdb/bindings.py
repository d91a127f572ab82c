"""Bindings and fingerprints: what a snapshot row was sent under, and keeping fingerprints
comparable across target-sync and DuckDB versions without resending."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import duckdb

from ...mapping.staging import TYPED_SCHEME
from ...sqltext import sql_literal
from ..store import Binding, PrepareReport
from .base import StoreBase
from .history import now

log = logging.getLogger(__name__)

# How fingerprints are computed: DuckDB's hash() of canonical typed values (mapping/canonical).
# DuckDB's hash() may change between versions, and the scheme before typed values hashed the
# texts: a snapshot of another scheme is migrated (see Bindings.prepare).
FINGERPRINT_SCHEME = f"{TYPED_SCHEME}/duckdb-hash/{duckdb.__version__}"
# The scheme before: hash(texts..., binding signature), which the stored cells can recompute.
TEXT_SCHEME = f"duckdb-hash/{duckdb.__version__}"


class Bindings(StoreBase):
    """Prepares the snapshot for a run under one binding (mapping + destination)."""

    def bindings(self) -> dict[str, Binding]:
        """Every binding this sync's rows were sent under, by signature."""
        if self.outdated:
            return {}
        return {
            r[0]: Binding(r[0], json.loads(r[1]), json.loads(r[2]) if r[2] else None, int(r[3]))
            for r in self._run("bindings").fetchall()
        }

    def prepare(
        self,
        binding: str,
        mapping: dict[str, Any],
        destination: dict[str, Any],
        mapping_signature: str,
        config_path: str | None,
    ) -> PrepareReport:
        """Bind the snapshot to ``binding`` before staging (see the protocol). A writable
        store records the binding and the config file, binds rows of a schema-1 file to
        this destination (when the mapping is the same: upgrading resends nothing), makes
        the profiles of an upload whose answer was never recorded owed, and drops stored
        values when they are not kept.

        Fingerprints of another scheme are migrated without a resend: text fingerprints of
        this DuckDB version are compared as they are; those of another version (text or
        typed) are first recomputed as text fingerprints from the stored cells (each row
        with its own binding, so a row never passes for one sent under another mapping).
        The next staging then compares every row's texts once, and unchanged rows take
        their typed fingerprints (the report's ``migrating`` tells :meth:`stage` to)."""
        scheme, previous_config = self._sync_record()
        unrefreshable = self._unrefreshable(scheme)
        unconfirmed = self._unconfirmed()
        adopted = dropped = 0
        migrating = False
        if self.writable:
            if scheme is None:
                self._run("forget_sync")
                self._run("new_sync", scheme=FINGERPRINT_SCHEME, config_path=config_path, now=now())
                scheme = FINGERPRINT_SCHEME
            elif self.mode == "write":
                self._run("sync_ran_from", config_path=config_path, now=now())
            self._register(binding, mapping, destination)
            if unconfirmed:
                self._owe_unconfirmed(binding)
            adopted = self._adopt_legacy(mapping_signature, binding)
            if adopted and scheme == FINGERPRINT_SCHEME:
                scheme = TEXT_SCHEME  # the adopted rows' fingerprints are the texts' again
                self._run("scheme_is", scheme=scheme)
            if scheme != FINGERPRINT_SCHEME:
                if not self._count("snapshot_rows"):
                    self._run("scheme_is", scheme=FINGERPRINT_SCHEME)
                else:
                    if scheme != TEXT_SCHEME:
                        self._rehash(lambda known: known.signature)
                        self._run("scheme_is", scheme=TEXT_SCHEME)
                    migrating = True
            if not self.keep_values and self.mode == "write":
                dropped = self._count("values_kept")
                if dropped:
                    self._run("drop_values")
                    self.rewrite_on_close = True  # no trace of the values may stay on disk
        return PrepareReport(
            previous_config=previous_config,
            snapshot_size=self._count("snapshot_size"),
            census={b: int(n) for b, n in self._run("census").fetchall()},
            bindings=self.bindings(),
            unrefreshable=unrefreshable,
            adopted=adopted,
            values_dropped=dropped,
            migrating=migrating,
            unconfirmed=unconfirmed,
        )

    def needs_rewrite(self) -> bool:
        """Whether reading this (read-only) store needs changes it cannot make: an older
        schema, rows of a schema-1 file, fingerprints of another DuckDB version, or profiles
        of an unrecorded upload to make owed."""
        if self.outdated or self._unconfirmed():
            return True
        scheme, _ = self._sync_record()
        legacy = any(b.destination is None for b in self.bindings().values())
        return legacy or (
            scheme is not None and scheme != FINGERPRINT_SCHEME and self._count("snapshot_rows") > 0
        )

    def _sync_record(self) -> tuple[str | None, str | None]:
        if self.outdated:
            return None, None
        rows = self._run("sync_record").fetchall()
        return (rows[0][0], rows[0][1]) if rows else (None, None)

    def _unconfirmed(self) -> int:
        """Profiles :meth:`sending` recorded whose batch was never committed."""
        if self.outdated or not self._has_table("ts_sending"):
            return 0  # (a file of an earlier version, read-only: nothing was recorded)
        return self._count("unconfirmed_count")

    def _owe_unconfirmed(self, binding: str) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            self._run("owe_unconfirmed")
            self._run("owe_unconfirmed_new", binding=binding)
            self._run("forget_sending")
            self.con.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _unrefreshable(self, scheme: str | None) -> int:
        if scheme in (None, FINGERPRINT_SCHEME, TEXT_SCHEME) or self.outdated:
            return 0  # text fingerprints of this DuckDB version migrate without values
        return self._count("without_values")

    def _register(self, binding: str, mapping: dict[str, Any], destination: dict[str, Any]) -> None:
        if binding in self.bindings():
            return
        self._run(
            "register_binding",
            binding=binding,
            mapping=json.dumps(mapping),
            destination=json.dumps(destination),
            attributes=len(mapping.get("attributes", {})),
            now=now(),
        )

    def _adopt_legacy(self, mapping_signature: str, current: str) -> int:
        """Bind rows from a schema-1 state file (no destination recorded) to ``current``, when
        they were sent under the same mapping; returns how many."""
        legacy = self.bindings().get(mapping_signature)
        if legacy is None or legacy.destination is not None:
            return 0
        count = self._count("rows_of_binding", binding=mapping_signature)
        self._rehash(lambda known: current, only=mapping_signature, relabel=current)
        self._run("delete_binding", binding=mapping_signature)
        log.info("%d profiles of a state file from an earlier version bound to %s", count, current)
        return count

    def _rehash(
        self,
        signature_of: Callable[[Binding], str],
        only: str | None = None,
        relabel: str | None = None,
    ) -> None:
        for known in self.bindings().values():
            if only is not None and known.signature != only:
                continue
            texts = ", ".join(
                f"url_decode(split_part(cells, ',', {position}))"
                for position in range(1, known.attributes + 1)
            )
            label = f", binding = {sql_literal(relabel)}" if relabel else ""
            self._run(
                "rehash",
                fill={"texts": texts, "relabel": label},
                signature=signature_of(known),
                binding=known.signature,
            )

    def prune_bindings(self, keep: str) -> None:
        """Forget bindings no snapshot row uses any more (``keep`` always stays)."""
        self._run("prune_bindings", keep=keep)
