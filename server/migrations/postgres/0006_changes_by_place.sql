-- SQLite's migration 10: the feed kept by its place (issue 15, server disk). A change is found by
-- (village, position), which the feed reads by, and by hash, which keeps it once; the global
-- sequence number (unused since migration 0002) and its index go.
ALTER TABLE changes DROP CONSTRAINT changes_pkey;
ALTER TABLE changes DROP COLUMN seq;
ALTER TABLE changes ADD CONSTRAINT changes_pkey PRIMARY KEY USING INDEX changes_village_pos;
