-- Sync with the central service: a cursor per bucket of pulled data, and the changes the
-- service refused for good (shown to the worker; they no longer block the queue).

-- `bucket` is `team` or `case:<uuid>`; `cursor` the service's sequence number up to which the
-- bucket's records are applied here. A bucket listed here came from the service: when the
-- service stops listing it as visible, its data is deleted from this device.
CREATE TABLE sync_buckets (
    bucket TEXT PRIMARY KEY,
    cursor INTEGER NOT NULL
);

CREATE TABLE sync_rejected (
    seq       INTEGER PRIMARY KEY,          -- the change-log entry's sequence number
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    code      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        TEXT NOT NULL
);

CREATE INDEX change_log_pending ON change_log (seq) WHERE pushed = 0;

-- The clock each changed field had on this device before the change (JSON: field -> hlc);
-- the service compares it with its own to find concurrent writes.
ALTER TABLE change_log ADD COLUMN base TEXT;

-- Concurrent writes of one field (see the `Conflict` record). Synced case data like any other.
CREATE TABLE conflicts (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    field TEXT NOT NULL,
    kept_value TEXT NOT NULL,
    kept_hlc TEXT NOT NULL,
    kept_by TEXT,
    other_value TEXT NOT NULL,
    other_hlc TEXT NOT NULL,
    other_by TEXT,
    detected_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX conflicts_open ON conflicts (case_id) WHERE resolved_at IS NULL AND archived = 0;
