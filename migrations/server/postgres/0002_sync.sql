-- Sync (PostgreSQL): how far each device's change log has been applied, the changes refused for good, and
-- the content hash of every signed note. Keep in step with ../sqlite/0002_sync.sql.

-- `pushed_seq`: every entry of the device's change log up to here is done (applied, or
-- refused and listed in push_rejections). The next push must start at pushed_seq + 1.
CREATE TABLE device_sync (
    device_id  TEXT PRIMARY KEY REFERENCES devices (id),
    pushed_seq BIGINT NOT NULL
);

CREATE TABLE push_rejections (
    device_id TEXT NOT NULL REFERENCES devices (id),
    seq       BIGINT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    code      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
);

-- A signed note is immutable everywhere: the hash of its content when it was first signed.
CREATE TABLE signed_notes (
    note_id      TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    signed_at    BIGINT NOT NULL
);

-- None of these rows holds personal data (ids, codes, hashes; a rejection's reason names the
-- rule, never the content).
GRANT SELECT, INSERT, UPDATE ON device_sync, push_rejections, signed_notes TO feltkontor_app;
