-- Ingest the source stream once: serialize every mapped value to the text Target will hold
-- (v0, v1, ...: NULL already replaced), fingerprint the profile over those texts, and flag
-- rows Target must not receive. URL-encoding waits until a profile is actually sent. The
-- placeholders in braces are generated from the mapping by connector/staging.py.
-- {all_clear} passes the common row with byte counts alone (strlen is O(1), and never less
-- than length): the character counts and the details are computed only for the rest.
CREATE OR REPLACE TABLE {stage} AS
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
) AS effective;
