-- The state file: one snapshot table per sync, plus shared bookkeeping tables.
-- {snapshot} is replaced by the quoted snapshot table of a sync.
CREATE TABLE IF NOT EXISTS ts_meta (key VARCHAR, value VARCHAR);
CREATE TABLE IF NOT EXISTS ts_syncs (
    sync VARCHAR,
    mapping_signature VARCHAR,
    mapping VARCHAR,
    fingerprint_scheme VARCHAR,
    updated_at TIMESTAMP
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
