-- Profiles whose exit attributes Target accepted: kept as 'gone' until the batch is confirmed.
UPDATE {snapshot} SET gone = true, batch_id = $batch_id WHERE id IN (SELECT id FROM {batch});
