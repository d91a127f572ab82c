-- With an empty snapshot every valid staged row is new: no join needed.
CREATE OR REPLACE TABLE {changes} AS
SELECT id, cells, fp, CAST(NULL AS VARCHAR) AS old_cells, 'new' AS kind
FROM {stage}
WHERE reject IS NULL;
