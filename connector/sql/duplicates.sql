-- An id that appears more than once: every copy is rejected, none is picked at random.
UPDATE {stage} SET reject = 'duplicate_id', reject_detail = NULL
WHERE reject IS NULL AND id IN (
    SELECT id FROM {stage} WHERE id IS NOT NULL AND id <> '' GROUP BY id HAVING count(*) > 1
);
