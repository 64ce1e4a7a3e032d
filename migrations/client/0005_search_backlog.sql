-- A search index that is catching up. A large pull (a new device's first sync) stores its
-- records without indexing them one by one; the index is then built in short steps after the
-- sync, and before any search. A row here for a table means: every row of it with
-- `rid <= indexed_upto` has its current search entry, every row above has none yet. No row:
-- the table's index is complete.
CREATE TABLE search_backlog (
    tbl          TEXT PRIMARY KEY CHECK (tbl IN ('notes', 'persons')),
    indexed_upto INTEGER NOT NULL
);
