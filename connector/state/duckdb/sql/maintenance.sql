-- The state file's schema, sizes, forgetting a snapshot, and the invariants the snapshot
-- must keep. Placeholders: {snapshot} the snapshot table. Parameters as named below.

-- name: has_table
SELECT count(*) FROM information_schema.tables
WHERE table_catalog = $catalog AND table_name = $table;

-- name: schema_version
SELECT value FROM ts_meta WHERE key = 'schema';

-- name: set_schema_version
INSERT INTO ts_meta VALUES ('schema', $version);

-- name: snapshot_tables
SELECT table_name FROM information_schema.tables
WHERE table_catalog = $catalog AND table_name LIKE 'snapshot\_\_%' ESCAPE '\';

-- name: add_binding_column
ALTER TABLE {snapshot} ADD COLUMN binding VARCHAR;

-- name: legacy_binding
UPDATE {snapshot} SET binding = (SELECT mapping_signature FROM ts_syncs WHERE sync = $sync);

-- name: snapshot_size
-- Profiles in the snapshot, owed ones included, not the ones said goodbye to.
SELECT count(*) FROM {snapshot} WHERE NOT gone;

-- name: snapshot_rows
SELECT count(*) FROM {snapshot};

-- name: forget_rows
DELETE FROM {snapshot};

-- name: forget_bindings
DELETE FROM ts_bindings WHERE sync = $sync;

-- name: abandon_pending
UPDATE ts_batches SET state = 'abandoned', resolved_at = $now
WHERE sync = $sync AND state = 'pending';

-- name: invariant: ids that appear more than once
SELECT count(*) - count(DISTINCT id) FROM {snapshot};

-- name: invariant: rows with a NULL or empty id
SELECT count(*) FROM {snapshot} WHERE id IS NULL OR id = '';

-- name: invariant: rows claiming a batch Target did not confirm
SELECT count(*) FROM {snapshot} AS s
JOIN ts_batches AS b ON b.batch_id = s.batch_id AND b.sync = $sync
WHERE b.state NOT IN ('pending', 'complete') AND s.fp IS NOT NULL;

-- name: invariant: gone rows whose removal batch is not pending
SELECT count(*) FROM {snapshot} AS s
LEFT JOIN ts_batches AS b ON b.batch_id = s.batch_id AND b.sync = $sync
WHERE s.gone AND b.state IS DISTINCT FROM 'pending';

-- name: invariant: rows bound to no recorded mapping and destination
SELECT count(*) FROM {snapshot}
WHERE binding IS NULL OR binding NOT IN (SELECT binding FROM ts_bindings WHERE sync = $sync);

-- name: draw
-- A random sample (the same for the same $seed) of profiles confirmed or pending under
-- $binding, with when their batch went out and whether it is still pending (verify).
SELECT s.id, s.cells, b.uploaded_at, coalesce(b.pending, false) FROM (
    SELECT id, cells, batch_id FROM {snapshot}
    WHERE NOT gone AND fp IS NOT NULL AND binding = $binding
    ORDER BY hash(id, $seed), id LIMIT $limit
) AS s LEFT JOIN (
    SELECT batch_id, max(uploaded_at) AS uploaded_at, bool_or(state = 'pending') AS pending
    FROM ts_batches WHERE sync = $sync GROUP BY batch_id
) AS b USING (batch_id) ORDER BY s.id;
