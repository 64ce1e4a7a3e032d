-- The SHA-256 of each applied migration's file, recorded when it is applied (and, for the
-- migrations applied before this one, the first time a server with this one starts). A server
-- whose embedded file differs from what was applied refuses to start: a landed migration never
-- changes silently.
ALTER TABLE schema_migrations ADD COLUMN checksum TEXT;
