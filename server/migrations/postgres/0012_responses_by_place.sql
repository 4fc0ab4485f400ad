-- SQLite's migration 16: a stored sync response keeps where its pull read the feed (a JSON object
-- of village code to position), not the pulled changes' bytes (issue 15, server disk): a replay
-- reads them again from the feed and the documents. Rows stored before keep their whole answer
-- (the column is NULL) and are replayed as they are.
ALTER TABLE sync_batches ADD COLUMN pull_from TEXT COLLATE "C";
