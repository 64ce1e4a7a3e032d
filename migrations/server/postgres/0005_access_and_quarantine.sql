-- Access-log entries uploaded by devices (a case or person opened, a search made while
-- offline): each is written to the audit log once; this table remembers which entry ids the
-- service has recorded, so an upload sent again records nothing twice.
CREATE TABLE device_access (
    id        TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    at        BIGINT NOT NULL
);
GRANT SELECT, INSERT ON device_access TO feltkontor_app;

-- A quarantined note's decision: 'accepted' (its changes were written into the case as its
-- author's) or 'kept_out' (it stays here only). Rows are never deleted.
ALTER TABLE quarantine ADD COLUMN decision TEXT;
