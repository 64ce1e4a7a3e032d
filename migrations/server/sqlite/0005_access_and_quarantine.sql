-- Access-log entries uploaded by devices (a case or person opened, a search made while
-- offline): each is written to the audit log once; this table remembers which entry ids the
-- service has recorded, so an upload sent again records nothing twice.
CREATE TABLE device_access (
    id        TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices (id),
    at        BIGINT NOT NULL
);

-- A quarantined note's decision: 'accepted' (its changes were written into the case as its
-- author's) or 'kept_out' (it stays here only). Rows are never deleted.
ALTER TABLE quarantine ADD COLUMN decision TEXT;

-- Deleted (archived) records of a case are purged after a while (`admin purge-tombstones`).
-- A device whose cursor for the case is older than the newest purged record may have missed
-- a deletion: that bucket alone is deleted on the device and pulled again from the start.
CREATE TABLE case_horizon (
    case_id TEXT PRIMARY KEY,
    seq     BIGINT NOT NULL
);
