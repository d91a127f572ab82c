-- With an empty snapshot every valid staged row is new: no join, and no copy either.
CREATE OR REPLACE VIEW {changes} AS
SELECT id, fp, CAST(NULL AS VARCHAR) AS old_cells, 'new' AS kind, {values}
FROM {stage}
WHERE reject IS NULL;
