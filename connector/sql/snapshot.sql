-- A sync's snapshot: what Target was last sent and accepted, per profile.
--   cells  the URL-encoded attribute cells, exactly as sent (kept to recompute fingerprints
--          and to show old → new values)
--   fp     fingerprint of cells and the mapping signature
--   batch_id  the upload that last carried this profile (reverted if that batch fails)
--   gone   the profile left the result and its exit attributes were sent; dropped once
--          that batch is confirmed
CREATE TABLE IF NOT EXISTS {snapshot} (
    id VARCHAR,
    cells VARCHAR,
    fp UBIGINT,
    batch_id VARCHAR,
    gone BOOLEAN
);
