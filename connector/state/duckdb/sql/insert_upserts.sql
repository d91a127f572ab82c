-- First run: the snapshot was empty and ids in a run are unique, so nothing to replace.
-- {cells}: the batch's cells, or NULL when values are not kept (state.keep_values).
INSERT INTO {snapshot} (id, cells, fp, batch_id, gone, binding)
SELECT id, {cells}, fp, $batch_id, false, $binding FROM {batch};
