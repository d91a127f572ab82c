-- What a sync's snapshot is bound to: the bindings (mapping + destination) its rows were
-- sent under, the sync's record (fingerprint scheme, config file), and recomputing
-- fingerprints. Placeholders: {snapshot} the sync's snapshot table; {texts} the decoded
-- cells of a binding's attributes; {relabel} ", binding = '...'" or nothing.
-- Parameters: $sync, and as named below.

-- name: bindings
SELECT binding, mapping, destination, attributes FROM ts_bindings WHERE sync = $sync;

-- name: census
-- Confirmed or pending profiles (not owed, not said goodbye to) per binding.
SELECT binding, count(*) FROM {snapshot} WHERE NOT gone AND fp IS NOT NULL GROUP BY binding;

-- name: register_binding
INSERT INTO ts_bindings VALUES ($sync, $binding, $mapping, $destination, $attributes, $now);

-- name: delete_binding
DELETE FROM ts_bindings WHERE sync = $sync AND binding = $binding;

-- name: prune_bindings
-- Bindings no snapshot row uses any more ($keep always stays).
DELETE FROM ts_bindings WHERE sync = $sync AND binding <> $keep AND binding NOT IN
    (SELECT DISTINCT binding FROM {snapshot} WHERE binding IS NOT NULL);

-- name: sync_record
SELECT fingerprint_scheme, config_path FROM ts_syncs WHERE sync = $sync;

-- name: forget_sync
DELETE FROM ts_syncs WHERE sync = $sync;

-- name: new_sync
INSERT INTO ts_syncs VALUES ($sync, $scheme, $config_path, $now);

-- name: sync_ran_from
UPDATE ts_syncs SET config_path = $config_path, updated_at = $now WHERE sync = $sync;

-- name: scheme_is
UPDATE ts_syncs SET fingerprint_scheme = $scheme WHERE sync = $sync;

-- name: rehash
-- Recompute the fingerprints of one binding's rows from their stored cells as text
-- fingerprints of this DuckDB version (owed rows stay owed), which the next staging then
-- migrates to typed ones. The cells decode back to exactly the texts that were sent.
UPDATE {snapshot} SET fp = CASE WHEN fp IS NOT NULL THEN hash({texts}, $signature) END{relabel}
WHERE binding = $binding AND cells IS NOT NULL;

-- name: rows_of_binding
SELECT count(*) FROM {snapshot} WHERE binding = $binding;

-- name: values_kept
SELECT count(cells) FROM {snapshot};

-- name: drop_values
UPDATE {snapshot} SET cells = NULL;

-- name: without_values
-- Rows whose fingerprint cannot be recomputed (no stored values).
SELECT count(*) FROM {snapshot} WHERE cells IS NULL AND fp IS NOT NULL;

-- name: migrated_count
-- Staged rows found unchanged while migrating the fingerprint scheme (see stage_diff.sql).
SELECT count(*) FROM {stage} WHERE kind IS NULL AND reject IS NULL AND fp IS NOT NULL;

-- name: adopt_typed_fingerprints
-- Their snapshot rows take the typed fingerprint of the same texts (owed rows stay owed).
UPDATE {snapshot} AS p SET fp = s.fp
FROM (SELECT id, fp FROM {stage} WHERE kind IS NULL AND reject IS NULL AND fp IS NOT NULL) AS s
WHERE p.id = s.id AND NOT p.gone AND p.fp IS NOT NULL;
