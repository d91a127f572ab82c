-- Advance the snapshot for the profiles of one accepted batch ({batch}: id, cells, fp), sent
-- under binding $binding. {cells}: the batch's cells, or NULL when values are not kept.
DELETE FROM {snapshot} WHERE id IN (SELECT id FROM {batch});
INSERT INTO {snapshot} (id, cells, fp, batch_id, gone, binding)
SELECT id, {cells}, fp, $batch_id, false, $binding FROM {batch};
