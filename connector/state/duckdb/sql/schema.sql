-- The state file's shared bookkeeping tables (schema 2). Each sync also has a snapshot table,
-- see snapshot.sql.
--   ts_syncs     per sync: how its fingerprints were computed, and the config file that last
--                ran it
--   ts_bindings  every mapping + destination a sync's snapshot rows were sent under: the
--                binding signature is part of each fingerprint, so a row never passes for
--                one sent under another mapping or to another Target
--   ts_sending   per sync: the ids of the batch being uploaded, until its answer is committed
--                (a run killed in between leaves them: the next run makes them owed)
--   ts_runs, ts_batches, ts_failed, ts_rejects  run history (see the README)
CREATE TABLE IF NOT EXISTS ts_meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS ts_syncs (
    sync VARCHAR,
    fingerprint_scheme VARCHAR,
    config_path VARCHAR,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS ts_bindings (
    sync VARCHAR,
    binding VARCHAR,
    mapping VARCHAR,
    destination VARCHAR,
    attributes INTEGER,
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS ts_runs (
    run_id VARCHAR,
    sync VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    dry_run BOOLEAN,
    outcome VARCHAR,
    exit_code INTEGER,
    summary VARCHAR,
    message VARCHAR
);
CREATE TABLE IF NOT EXISTS ts_batches (
    run_id VARCHAR,
    sync VARCHAR,
    seq INTEGER,
    kind VARCHAR,
    batch_id VARCHAR,
    status_url VARCHAR,
    rows BIGINT,
    bytes BIGINT,
    state VARCHAR,
    detail VARCHAR,
    uploaded_at TIMESTAMP,
    resolved_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS ts_failed (
    run_id VARCHAR,
    sync VARCHAR,
    batch_id VARCHAR,
    id VARCHAR,
    reason VARCHAR
);
CREATE TABLE IF NOT EXISTS ts_rejects (
    run_id VARCHAR,
    sync VARCHAR,
    id VARCHAR,
    reason VARCHAR,
    detail VARCHAR
);
CREATE TABLE IF NOT EXISTS ts_sending (
    sync VARCHAR,
    id VARCHAR
);
