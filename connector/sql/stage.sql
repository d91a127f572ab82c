-- The staged rows of the source stream: every mapped value serialized to the text Target
-- will hold (v0, v1, ...: NULL already replaced), the profile's fingerprint over those texts,
-- and why Target must not receive the row, if it must not. Run inside stage_first.sql or
-- stage_diff.sql, which URL-encode the texts of the rows to send only. The placeholders in
-- braces are generated from the mapping by connector/staging.py.
-- The all_clear test passes the common row with byte counts alone (strlen is O(1), and never less
-- than length): the character counts and the details are computed only for the rest.
SELECT
    id,
    hash({value_names}, {signature}) AS fp,
    CASE
        WHEN {all_clear} THEN NULL
        WHEN id IS NULL OR id = '' THEN 'empty_id'
        WHEN length(id) > {max_id} THEN 'id_too_long'
        {id_checks}
        {value_checks}
        WHEN size >= {max_bytes} THEN 'profile_too_large'
    END AS reject,
    CASE
        WHEN {all_clear} THEN NULL
        WHEN id IS NULL OR id = '' THEN NULL
        WHEN length(id) > {max_id} THEN length(id) || ' characters'
        {id_check_details}
        {value_check_details}
        WHEN size >= {max_bytes} THEN size || ' bytes'
    END AS reject_detail,
    {value_names}
FROM (
    SELECT id, {values}, {size} AS size
    FROM (SELECT {id_text} AS id, {texts} FROM {source}) AS typed
) AS effective
