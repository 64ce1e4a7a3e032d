-- The checksum of every migration applied to this store (BLAKE2s-256 of the file as the app
-- embedded it), recorded when applied and compared at every open: a landed migration edited
-- after this store applied it stops the app with a clear message instead of letting it run on
-- a schema other than the one its code expects. Migrations applied before this table existed
-- are recorded by the upgrade that creates it, from the text of that build.
CREATE TABLE schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL
);
