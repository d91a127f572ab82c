-- An id that appears more than once: every copy is rejected, none is picked at random.
-- The rows that take part are exactly those of duplicate_precheck.sql.
UPDATE {stage} AS s
SET reject = 'duplicate_id', reject_detail = copies.n || ' rows have this id', kind = NULL,
    cells = NULL
FROM (
    SELECT id, count(*) AS n FROM {stage}
    WHERE id IS NOT NULL AND id <> '' AND kind IS DISTINCT FROM 'removed'
    GROUP BY id HAVING count(*) > 1
) AS copies
WHERE s.id = copies.id AND s.reject IS NULL;
