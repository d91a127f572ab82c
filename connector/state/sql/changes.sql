-- Reading what staging found: counts, the changes to send, and what plan shows.
-- Placeholders: {stage} the run's stage table, {changes} its view of the rows to send,
-- {previous} a table of what the snapshot held for them (id, cells, binding: the snapshot
-- itself, or the values a store carried in with the rows); {only} an optional binding filter;
-- {exit_cells} the encoded cells sent for removed profiles.

-- name: changes_view
CREATE OR REPLACE VIEW {changes} AS
SELECT id, fp, kind, cells FROM {stage} WHERE kind IS NOT NULL;

-- name: tally
-- Every count of the run comes from this one grouping.
SELECT kind, reject, count(*) FROM {stage} GROUP BY ALL;

-- name: upserts
SELECT id, cells, fp, url_encode(id) || ',' || cells || chr(10) AS line
FROM {changes} WHERE kind <> 'removed';

-- name: removals
SELECT id, CAST(NULL AS VARCHAR) AS cells, CAST(NULL AS UBIGINT) AS fp,
       url_encode(id) || ',' || {exit_cells} || chr(10) AS line
FROM {changes} WHERE kind = 'removed';

-- name: samples
SELECT c.kind, c.id, p.cells, c.cells, p.binding
FROM (SELECT * FROM {changes} ORDER BY kind, id LIMIT $limit) AS c
LEFT JOIN {previous} AS p ON p.id = c.id AND c.kind <> 'new'
ORDER BY c.kind, c.id;

-- name: field_changes
-- One row per (profile, attribute), grouped by position: the SQL stays the same size
-- whatever the width (two counts per attribute made planning quadratic: 58 s at 1,000
-- attributes). Two joins, so the snapshot's cells are read for the changed profiles only:
-- ids find their rows, then rowids their cells (one join carrying every profile's cells
-- took twice as long at 10M profiles; a binding filter on the cells' side made DuckDB scan
-- them all, 7x slower at 1M).
SELECT position, count(*) FILTER (WHERE old <> new),
       count(*) FILTER (WHERE old <> '' AND new = '')
FROM (
    SELECT unnest(old_cells) AS old, unnest(new_cells) AS new,
           generate_subscripts(old_cells, 1) AS position
    FROM (
        SELECT string_split(p.cells, ',') AS old_cells, string_split(c.cells, ',') AS new_cells
        FROM (
            SELECT c.cells, r.snapshot_row FROM {changes} AS c
            JOIN (SELECT id, rowid AS snapshot_row FROM {previous}{only}) AS r ON r.id = c.id
            WHERE c.kind = 'changed'
        ) AS c
        JOIN (SELECT rowid AS snapshot_row, cells FROM {previous}) AS p USING (snapshot_row)
    )
)
GROUP BY position ORDER BY position;

-- name: staged_rejects
SELECT id, reject, reject_detail FROM {stage}
WHERE reject IS NOT NULL ORDER BY reject, id LIMIT $limit;

-- name: drop_changes
DROP VIEW IF EXISTS {changes};

-- name: drop_stage
DROP TABLE IF EXISTS {stage};

-- name: drop_carried
DROP TABLE IF EXISTS {carried};

-- name: carried_previous
-- What the snapshot held for the rows a store staged with their diff done elsewhere.
CREATE OR REPLACE TABLE {carried} AS
SELECT id, old_cells AS cells, old_binding AS binding FROM {stage}
WHERE old_cells IS NOT NULL OR old_binding IS NOT NULL;

-- name: add_removed
-- Profiles that left the result, as a store that diffs elsewhere found them ({removed}: id,
-- and the cells and binding the snapshot held).
INSERT INTO {stage} (id, kind, old_cells, old_binding)
SELECT id, 'removed', cells, binding FROM {removed};
