-- Advance the snapshot for the profiles of one accepted batch (holding id, cells, fp).
DELETE FROM {snapshot} WHERE id IN (SELECT id FROM {batch});
INSERT INTO {snapshot} SELECT id, cells, fp, $batch_id, false FROM {batch};
