-- Schema 1 → 2: mapping bookkeeping moves from ts_syncs to ts_bindings. Each sync's old
-- mapping becomes a binding whose destination is unknown (NULL); its signature is the old
-- mapping signature, which is what the old fingerprints were computed with, so rows and
-- fingerprints stay consistent. The first run adopts the configured destination for it when
-- the mapping is unchanged (see StateStore.adopt_legacy). Snapshot tables get their binding
-- column in Python (one ALTER per table) before this runs.
CREATE TABLE ts_bindings (
    sync VARCHAR,
    binding VARCHAR,
    mapping VARCHAR,
    destination VARCHAR,
    attributes INTEGER,
    created_at TIMESTAMP
);
INSERT INTO ts_bindings
SELECT sync, mapping_signature, mapping, NULL,
       CAST(len(json_keys(mapping, '$.attributes')) AS INTEGER), updated_at
FROM ts_syncs;
CREATE TABLE ts_syncs_2 AS
SELECT sync, fingerprint_scheme, CAST(NULL AS VARCHAR) AS config_path, updated_at FROM ts_syncs;
DROP TABLE ts_syncs;
ALTER TABLE ts_syncs_2 RENAME TO ts_syncs;
UPDATE ts_meta SET value = '2' WHERE key = 'schema';
