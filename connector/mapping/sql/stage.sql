-- The staged rows of the source stream: per row its id, its fingerprint over canonical typed
-- values (connector/mapping/canonical.py), the snapshot's id and fingerprint for it (old_id,
-- old_fp: NULL when new; a snapshot row the stream lacks comes out with fp NULL), whether it
-- is unchanged, why Target must not receive it, and the URL-encoded cells of the rows to send.
-- Run inside stage_first.sql or stage_diff.sql; the placeholders in braces are generated from
-- the mapping by connector/mapping/staging.py; {join}, {old_columns} (with need: whether the
-- row needs its texts), {values} and {unchanged} when the store renders it for its run;
-- {carry}: columns of the stream passed through to the result untouched (a store that diffs
-- elsewhere hands in what it found per row, see connector/state/sql/stage_given.sql).
-- Texts (v0, v1, ...: NULL already replaced) are built only for the rows that need them: rows
-- to send, and rows whose bounds (byte lengths of strings and texts, constant widths of
-- numbers, dates and times) do not clear every limit, which are then checked on their texts
-- exactly (so every row is checked, and rejected, exactly as when every text was built). A
-- migration ({unchanged} comparing the texts' fingerprints) builds every row's texts, once.
-- Every expression over all the values is one flat call (hash, greatest, concat, concat_ws,
-- coalesce, a list), never a chain of operators or a CASE per value, so the SQL's depth and
-- its planning time stay small however many attributes there are (DuckDB's parser stops at
-- a depth of 1000).
-- The all_clear test passes the common row with byte counts alone (strlen is O(1), and never
-- less than length), and leaves out the sums the mapping's width already bounds: character
-- counts, sizes, encoded line sizes and details are computed only for the other rows.
SELECT
    id,
    fp,
    old_id,
    old_fp,
    unchanged,
    reject,
    CASE reject
        WHEN 'id_too_long' THEN length(id) || ' characters'
        {range_check_detail}
        WHEN 'value_too_long' THEN {long_value_detail}
        WHEN 'profile_too_large' THEN {size} || ' bytes'
        WHEN 'line_too_large' THEN {line_size} || {line_detail}
    END AS reject_detail,
    CASE WHEN reject IS NULL AND fp IS NOT NULL AND NOT unchanged THEN {cells} END AS cells{carry}
FROM (
    SELECT
        id,
        fp,
        old_id,
        old_fp,
        {unchanged} AS unchanged,
        CASE
            WHEN fp IS NULL OR clear THEN NULL
            WHEN {all_clear} THEN NULL
            WHEN id IS NULL OR id = '' THEN 'empty_id'
            WHEN length(id) > {max_id} THEN 'id_too_long'
            {id_checks}
            {range_check}
            WHEN {longest_value} > {max_value} THEN 'value_too_long'
            WHEN {size} >= {max_bytes} THEN 'profile_too_large'
            WHEN {line_bound} > {line_room} AND {line_size} > {line_room} THEN 'line_too_large'
        END AS reject,
        {value_names}{out_of_range_column}{carry}
    FROM (
        SELECT id, fp, old_id, old_fp, clear{out_of_range_column}, {values}{carry}
        FROM (
            SELECT s.*, {old_columns}
            FROM (
                SELECT
                    id,
                    fp,
                    coalesce({bounds_clear}, false) AS clear{out_of_range_column}{text_names},
                    {raw}{carry}
                FROM (
                    SELECT
                        id,
                        hash({fingerprint}, {fp_signature}) AS fp{bounds_column}
                        {out_of_range_column}{text_names},
                        {raw}{carry}
                    FROM (
                        SELECT {id_text} AS id{texts}{out_of_range}, {raw}{carry} FROM {source}
                    ) AS typed
                ) AS measured
            ) AS s {join}
        ) AS joined
    ) AS texts
) AS checked
