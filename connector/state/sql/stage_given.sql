-- Stage the rows of a diff done elsewhere (a store whose snapshot lives in the warehouse):
-- the stream holds only rows that need texts, each with what the store found for it, which
-- the staging SELECT carries through untouched:
--   ts_kind         new | changed | retry (the store's diff), or anything for rows that
--                   turn out rejected (NULL or empty ids, every copy of a duplicate)
--   ts_fp           the fingerprint the store commits for the row (its own kind of value)
--   ts_old_cells    the cells the snapshot held for it, NULL for a new one
--   ts_old_binding  the binding those cells were sent under
-- Every row gets its texts, cells and checks exactly as when the diff runs here (stage.sql);
-- a rejected row is never sent. Removed profiles are added afterwards (add_removed).
--   staged  the staging SELECT rendered with the carried columns
CREATE OR REPLACE TABLE {stage} AS
SELECT
    id,
    ts_fp AS fp,
    reject,
    reject_detail,
    CAST(CASE WHEN reject IS NULL THEN ts_kind END
         AS ENUM('new', 'changed', 'removed', 'retry')) AS kind,
    cells,
    ts_old_cells AS old_cells,
    ts_old_binding AS old_binding
FROM ({staged}) AS s;
