-- The feed keeps each change once by its hash (issue 15, server disk): the UNIQUE btree on the
-- 64-character hex hash took 745 KB for 6,000 changes at the end of `pilar-bench sync` (an entry
-- holds the whole key, and random keys leave pages a third empty), 29 % of the feed's bytes. An
-- exclusion constraint of equality on a hash index gives the same guarantee (a second row with an
-- equal hash is refused, concurrent inserters wait for each other) with 4-byte hash codes. SQLite
-- keeps its UNIQUE index; the schema comparison counts this constraint as that one.
ALTER TABLE changes DROP CONSTRAINT changes_hash_key;
ALTER TABLE changes ADD CONSTRAINT changes_hash_once EXCLUDE USING hash (hash WITH =);
