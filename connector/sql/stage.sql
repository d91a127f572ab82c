-- Ingest the source stream once: serialize and URL-encode every mapped value, fingerprint
-- the profile, and flag rows Target must not receive. The placeholders in braces are
-- generated from the mapping by connector/staging.py; the source is the Arrow stream.
CREATE OR REPLACE TABLE {stage} AS
SELECT
    id,
    cells,
    hash(cells, {signature}) AS fp,
    CASE
        WHEN id IS NULL OR id = '' THEN 'empty_id'
        WHEN length(id) > {max_id} THEN 'id_too_long'
        {id_checks}
        {value_checks}
        WHEN size >= {max_bytes} THEN 'profile_too_large'
    END AS reject,
    CASE
        WHEN id IS NULL OR id = '' THEN NULL
        WHEN length(id) > {max_id} THEN length(id) || ' characters'
        {id_check_details}
        {value_check_details}
        WHEN size >= {max_bytes} THEN size || ' bytes'
    END AS reject_detail
FROM (
    SELECT id, {cells} AS cells, {size} AS size, {text_names}
    FROM (SELECT {id_text} AS id, {texts} FROM {source}) AS typed
) AS encoded;
