-- Stage and diff in one pass: the source stream probes the snapshot's (id, fp) as it is read
-- (the join is inside the staging SELECT, connector/mapping/sql/stage.sql), so a row that did
-- not change is kept as its id alone, and only new and changed rows get texts, URL-encoded
-- cells and their fingerprints. Staging every text first and diffing afterwards cost 2x at 10M
-- profiles (the texts of unchanged rows went to disk and back). Profiles the snapshot holds
-- and the stream lacks come out of the join as 'removed'.
--   kind   new | changed | retry | removed, or NULL: unchanged or rejected (never sent).
--          'retry': the snapshot owes the profile (fp NULL: Target failed, lost or never
--          confirmed its last delivery). A rejected row still counts as present: its profile
--          is not removed.
--   fp     the staged fingerprint of rows to send; with {keep_fp} (a migration of the
--          fingerprint scheme) also of unchanged rows, whose snapshot rows then take it
--   staged  the staging SELECT rendered with the snapshot's (id, fp) as previous
-- 'gone' profiles (exit attributes already sent) are left out: one that reappears is new.
CREATE OR REPLACE TABLE {stage} AS
SELECT
    coalesce(s.id, s.old_id) AS id,
    CASE WHEN {keep_fp} OR NOT s.unchanged THEN s.fp END AS fp,
    s.reject,
    s.reject_detail,
    CAST(CASE
        WHEN s.fp IS NULL THEN 'removed'
        WHEN s.reject IS NOT NULL THEN NULL
        WHEN s.old_id IS NULL THEN 'new'
        WHEN s.old_fp IS NULL THEN 'retry'
        WHEN NOT s.unchanged THEN 'changed'
    END AS ENUM('new', 'changed', 'removed', 'retry')) AS kind,
    s.cells
FROM ({staged}) AS s;
