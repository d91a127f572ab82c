-- Whether duplicates.sql has anything to find: true when two of the rows it looks at share an
-- id hash. Over exactly its rows (a NULL id hashes to a value, and counting it once hid a
-- duplicate); an equal hash of two distinct ids only costs a needless exact check.
--   {hash}  the hash expression of id (hash(id); tests use a weaker one to force collisions)
SELECT count(*) > count(DISTINCT {hash}) FROM {stage}
WHERE id IS NOT NULL AND id <> '' AND kind IS DISTINCT FROM 'removed';
