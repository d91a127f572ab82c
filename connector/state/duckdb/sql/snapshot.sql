-- A sync's snapshot: what Target was last sent and accepted, per profile ({snapshot}).
--   cells     the URL-encoded attribute cells, exactly as sent (kept to recompute
--             fingerprints after a DuckDB upgrade and to show old → new values)
--   fp        fingerprint: hash of the values in their canonical typed forms and of a
--             signature of the binding and the values' shapes (connector/mapping/canonical.py;
--             ts_syncs.fingerprint_scheme typed-2/...); under the scheme before
--             (duckdb-hash/...), hash of the cells' decoded texts and the binding signature,
--             which the next staging migrates; NULL when the profile is owed: Target failed, lost or never confirmed its last
--             delivery, so what Target holds is unknown and the next run resends it
--   batch_id  the upload that last carried this profile (reverted if that batch fails)
--   gone      the profile left the result and its exit attributes were sent; dropped once
--             that batch is confirmed
--   binding   the ts_bindings signature (mapping + destination) the cells were sent under
CREATE TABLE IF NOT EXISTS {snapshot} (
    id VARCHAR,
    cells VARCHAR,
    fp UBIGINT,
    batch_id VARCHAR,
    gone BOOLEAN,
    binding VARCHAR
);
