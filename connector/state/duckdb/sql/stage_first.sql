-- Stage a first run (an empty snapshot): every valid row is new, so nothing to join. Every
-- valid row is sent, so its cells are URL-encoded here, once.
--   staged  the staging SELECT of connector/sql/stage.sql over the source stream
--   cells   the URL-encoded texts of s.v0, s.v1, ... joined by commas
CREATE OR REPLACE TABLE {stage} AS
SELECT
    id,
    fp,
    reject,
    reject_detail,
    CAST(CASE WHEN reject IS NULL THEN 'new' END AS ENUM('new', 'changed', 'removed', 'retry')) AS kind,
    CASE WHEN reject IS NULL THEN {cells} END AS cells
FROM ({staged}) AS s;
