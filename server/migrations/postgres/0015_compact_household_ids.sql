-- SQLite's schema unchanged: households' ids kept as `uuid` (16 bytes) instead of 36 characters
-- (issue 15, server disk): every row version sync writes, and both of the table's indexes, carry
-- one. The server binds and reads them as text (`$1::text::uuid`, `id::text`); a uuid sorts as
-- its lowercase hyphenated text does, so pages and prefixes keep their order.
-- `pilar-server migrate` converts them (postgres_schema::COMPACT_COLUMNS).
ALTER TABLE households ALTER COLUMN id TYPE UUID USING id::uuid;
