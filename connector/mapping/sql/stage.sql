-- The staged rows of the source stream: every mapped value serialized to the text Target
-- will hold (v0, v1, ...: NULL already replaced), the profile's fingerprint over those texts,
-- and why Target must not receive the row, if it must not. Run inside stage_first.sql or
-- stage_diff.sql, which URL-encode the texts of the rows to send only. The placeholders in
-- braces are generated from the mapping by connector/staging.py.
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
    reject,
    CASE reject
        WHEN 'id_too_long' THEN length(id) || ' characters'
        {range_check_detail}
        WHEN 'value_too_long' THEN {long_value_detail}
        WHEN 'profile_too_large' THEN {size} || ' bytes'
        WHEN 'line_too_large' THEN {line_size} || {line_detail}
    END AS reject_detail,
    {value_names}
FROM (
    SELECT
        id,
        hash({value_names}, {signature}) AS fp,
        CASE
            WHEN {all_clear} THEN NULL
            WHEN id IS NULL OR id = '' THEN 'empty_id'
            WHEN length(id) > {max_id} THEN 'id_too_long'
            {id_checks}
            {range_check}
            WHEN {longest_value} > {max_value} THEN 'value_too_long'
            WHEN {size} >= {max_bytes} THEN 'profile_too_large'
            WHEN {line_bound} > {line_room} AND {line_size} > {line_room} THEN 'line_too_large'
        END AS reject,
        {value_names}{out_of_range_column}
    FROM (
        SELECT id, {values}{out_of_range}
        FROM (SELECT {id_text} AS id, {texts}{problems} FROM {source}) AS typed
    ) AS effective
) AS checked
