-- Stage and diff in one pass: the source stream probes the snapshot's (id, fp) as it is read,
-- so a row that did not change is kept as its id alone, and only new and changed rows are
-- URL-encoded and kept with their fingerprints and cells. Staging every text first and
-- diffing afterwards cost 2x at 10M profiles (the texts of unchanged rows went to disk and
-- back). Profiles the snapshot holds and the stream lacks come out of the join as 'removed'.
--   kind   new | changed | retry | removed, or NULL: unchanged or rejected (never sent).
--          'retry': the snapshot owes the profile (fp NULL: Target failed, lost or never
--          confirmed its last delivery). A rejected row still counts as present: its profile
--          is not removed.
--   staged  the staging SELECT of connector/sql/stage.sql over the source stream
--   cells   the URL-encoded texts of s.v0, s.v1, ... joined by commas
-- 'gone' profiles (exit attributes already sent) are left out: one that reappears is new.
CREATE OR REPLACE TABLE {stage} AS
SELECT
    coalesce(s.id, p.id) AS id,
    CASE WHEN p.fp IS DISTINCT FROM s.fp THEN s.fp END AS fp,
    s.reject,
    s.reject_detail,
    CAST(CASE
        WHEN s.fp IS NULL THEN 'removed'
        WHEN s.reject IS NOT NULL THEN NULL
        WHEN p.id IS NULL THEN 'new'
        WHEN p.fp IS NULL THEN 'retry'
        WHEN p.fp <> s.fp THEN 'changed'
    END AS ENUM('new', 'changed', 'removed', 'retry')) AS kind,
    CASE WHEN s.reject IS NULL AND p.fp IS DISTINCT FROM s.fp THEN {cells} END AS cells
FROM ({staged}) AS s
FULL OUTER JOIN (SELECT id, fp FROM {snapshot} WHERE NOT gone) AS p ON s.id = p.id;
