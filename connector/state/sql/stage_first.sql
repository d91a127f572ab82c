-- Stage a first run (an empty snapshot): every valid row is new, so nothing to join. Every
-- valid row is sent, so its cells are built and URL-encoded here, once.
--   staged  the staging SELECT of connector/mapping/sql/stage.sql over the source stream
CREATE OR REPLACE TABLE {stage} AS
SELECT
    id,
    fp,
    reject,
    reject_detail,
    CAST(CASE WHEN reject IS NULL THEN 'new' END AS ENUM('new', 'changed', 'removed', 'retry')) AS kind,
    cells
FROM ({staged}) AS s;
