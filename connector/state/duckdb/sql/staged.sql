-- The local store's statements over a run's stage: keeping its rejects with the run, and
-- forgetting the profiles that left the result. Placeholders: {stage} the stage table,
-- {changes} its view of the rows to send, {snapshot} the snapshot table.

-- name: record_rejects
INSERT INTO ts_rejects
SELECT $run_id, $sync, id, reject, reject_detail FROM {stage}
WHERE reject IS NOT NULL ORDER BY reject, id LIMIT $limit;

-- name: forget_removed_count
SELECT count(*) FROM {changes} WHERE kind = 'removed';

-- name: forget_removed
DELETE FROM {snapshot} WHERE id IN (SELECT id FROM {changes} WHERE kind = 'removed');
