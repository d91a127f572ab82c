-- Delivery bookkeeping: accepted batches, what their statuses do to the snapshot, and the
-- batches still waiting. Placeholders: {snapshot} the snapshot table; {where} the rows of a
-- batch to revert ("batch_id = $batch_id", optionally "AND id IN (SELECT unnest($ids))").
-- Parameters as named below.

-- name: record_batch
INSERT INTO ts_batches VALUES
    ($run_id, $sync, $seq, $kind, $batch_id, $status_url, $rows, $bytes, 'pending', NULL, $now,
     NULL);

-- name: resolve_batch
UPDATE ts_batches SET state = $state, detail = $detail, resolved_at = $resolved_at
WHERE sync = $sync AND batch_id = $batch_id;

-- name: pending_batches
SELECT run_id, seq, kind, batch_id, status_url, rows FROM ts_batches
WHERE sync = $sync AND state = 'pending' ORDER BY uploaded_at, seq;

-- name: revert_count
SELECT count(*) FROM {snapshot} WHERE {where};

-- name: revert_list
-- Keep the reverted rows listed with the run (capped).
INSERT INTO ts_failed SELECT $run_id, $sync, $batch_id, id, $reason
FROM {snapshot} WHERE {where} ORDER BY id LIMIT $limit;

-- name: revert_upserted
-- The profile becomes owed: what Target holds is unknown, the next run resends it.
UPDATE {snapshot} SET fp = NULL, batch_id = NULL WHERE NOT gone AND {where};

-- name: revert_removed
-- The goodbye was not delivered: the profile is removed again by the next run.
UPDATE {snapshot} SET gone = false, batch_id = NULL WHERE gone AND {where};

-- name: confirm
-- A batch is complete: profiles it said goodbye to leave the snapshot.
DELETE FROM {snapshot} WHERE gone AND batch_id = $batch_id;

-- name: owed_count
SELECT count(*) FROM {snapshot}
WHERE NOT gone AND fp IS NOT NULL AND id IN (SELECT unnest($ids));

-- name: mark_owed
UPDATE {snapshot} SET fp = NULL, batch_id = NULL
WHERE NOT gone AND fp IS NOT NULL AND id IN (SELECT unnest($ids));
