-- Delivery bookkeeping: accepted batches, what their statuses do to the snapshot, and the
-- batches still waiting. Placeholders: {snapshot} the snapshot table; {where} the rows of a
-- batch to revert ("batch_id = $batch_id", optionally "AND id IN (SELECT unnest($ids))").
-- Parameters as named below.

-- name: record_sending
-- The ids of a batch about to be uploaded ({batch}: its rows); kept until its answer is
-- committed (forget_sending, in the same transaction as record_batch).
INSERT INTO ts_sending SELECT $sync, id FROM {batch};

-- name: forget_sending
DELETE FROM ts_sending WHERE sync = $sync;

-- name: unconfirmed_count
SELECT count(DISTINCT id) FROM ts_sending WHERE sync = $sync;

-- name: owe_unconfirmed
-- A batch went out and its answer was never recorded: Target may have applied it, so its
-- profiles are owed (as a reverted batch's are).
UPDATE {snapshot} SET fp = NULL, batch_id = NULL, gone = false
WHERE id IN (SELECT id FROM ts_sending WHERE sync = $sync);

-- name: owe_unconfirmed_new
-- Those not in the snapshot yet become owed rows under $binding: resent while the source has
-- them, removed once it does not.
INSERT INTO {snapshot} (id, cells, fp, batch_id, gone, binding)
SELECT DISTINCT id, CAST(NULL AS VARCHAR), CAST(NULL AS UBIGINT), CAST(NULL AS VARCHAR), false,
       $binding
FROM ts_sending WHERE sync = $sync AND id NOT IN (SELECT id FROM {snapshot});

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

-- name: revert
-- The profile becomes owed, whatever its batch carried: Target may have applied part of it,
-- so what it holds is unknown. The next run resends it: its values if the source still has
-- it, else its exit attributes (an owed profile the source lacks is 'removed' again). A
-- reverted goodbye that kept its old fingerprint passed for delivered values once the
-- profile came back unchanged, while Target held the exit attributes.
UPDATE {snapshot} SET fp = NULL, batch_id = NULL, gone = false WHERE {where};

-- name: confirm
-- A batch is complete: profiles it said goodbye to leave the snapshot.
DELETE FROM {snapshot} WHERE gone AND batch_id = $batch_id;

-- name: owed_count
SELECT count(*) FROM {snapshot}
WHERE NOT gone AND fp IS NOT NULL AND id IN (SELECT unnest($ids));

-- name: mark_owed
UPDATE {snapshot} SET fp = NULL, batch_id = NULL
WHERE NOT gone AND fp IS NOT NULL AND id IN (SELECT unnest($ids));
