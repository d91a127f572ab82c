-- The run history of one sync (ts_runs, ts_batches, ts_failed, ts_rejects; see the README).
-- Parameters as named below; $sync is the sync.

-- name: running
SELECT run_id, summary FROM ts_runs WHERE sync = $sync AND outcome = 'running';

-- name: mark_interrupted
UPDATE ts_runs SET outcome = 'interrupted', exit_code = NULL, summary = $summary,
    message = $message
WHERE sync = $sync AND run_id = $run_id;

-- name: uploaded_by
-- What a run's batches carried: batches, upserted rows, removed rows, bytes, still pending.
SELECT count(*), coalesce(sum(rows) FILTER (WHERE kind = 'upsert'), 0),
       coalesce(sum(rows) FILTER (WHERE kind = 'removed'), 0), coalesce(sum(bytes), 0),
       count(*) FILTER (WHERE state = 'pending')
FROM ts_batches WHERE sync = $sync AND run_id = $run_id;

-- name: start
INSERT INTO ts_runs VALUES ($run_id, $sync, $now, NULL, $dry_run, 'running', NULL, NULL, NULL);

-- name: progress
UPDATE ts_runs SET summary = $summary WHERE run_id = $run_id AND sync = $sync;

-- name: finish
UPDATE ts_runs SET finished_at = $now, outcome = $outcome, exit_code = $exit_code,
    summary = $summary, message = $message
WHERE run_id = $run_id AND sync = $sync;

-- name: runs
SELECT run_id, started_at, finished_at, dry_run, outcome, exit_code, summary, message
FROM ts_runs WHERE sync = $sync ORDER BY started_at DESC LIMIT $limit;

-- name: batches
SELECT run_id, seq, kind, batch_id, rows, bytes, state, detail, uploaded_at, resolved_at
FROM ts_batches
WHERE sync = $sync AND ($run_id IS NULL OR run_id = $run_id) AND ($state IS NULL OR state = $state)
ORDER BY uploaded_at, seq;

-- name: failed_rows
SELECT batch_id, id, reason FROM ts_failed WHERE sync = $sync AND run_id = $run_id
ORDER BY id LIMIT $limit;

-- name: rejects
SELECT id, reason, detail FROM ts_rejects WHERE sync = $sync AND run_id = $run_id
ORDER BY reason, id LIMIT $limit;

-- name: prune_failed
DELETE FROM ts_failed WHERE sync = $sync AND run_id IN
    (SELECT run_id FROM ts_runs WHERE sync = $sync ORDER BY started_at DESC OFFSET $keep);

-- name: prune_rejects
DELETE FROM ts_rejects WHERE sync = $sync AND run_id IN
    (SELECT run_id FROM ts_runs WHERE sync = $sync ORDER BY started_at DESC OFFSET $keep);

-- name: prune_batches
DELETE FROM ts_batches WHERE sync = $sync AND state <> 'pending' AND run_id IN
    (SELECT run_id FROM ts_runs WHERE sync = $sync ORDER BY started_at DESC OFFSET $keep);

-- name: prune_runs
DELETE FROM ts_runs WHERE sync = $sync AND run_id IN
    (SELECT run_id FROM ts_runs WHERE sync = $sync ORDER BY started_at DESC OFFSET $keep);
