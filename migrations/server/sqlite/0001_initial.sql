-- The central service's first schema on SQLite (the embedded default).
-- Keep in step with ../postgres/0001_initial.sql: the same tables, columns and meaning.
-- Times are Unix milliseconds (BIGINT); booleans are 0/1; ids are UUID text.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- A staff member's sign-in. The staff member's name, profession and sector are the `staff`
-- record (reference data that syncs); this is only what the central service needs to sign in.
CREATE TABLE accounts (
    staff_id      TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    contact       TEXT NOT NULL,           -- work phone or e-mail, shown to colleagues
    created_at    BIGINT NOT NULL,
    disabled      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE enrollment_codes (
    code_hash  TEXT PRIMARY KEY,           -- SHA-256 of the code; the code itself is never stored
    staff_id   TEXT NOT NULL REFERENCES accounts (staff_id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE devices (
    id               TEXT PRIMARY KEY,
    staff_id         TEXT NOT NULL REFERENCES accounts (staff_id),
    name             TEXT NOT NULL,
    enrolled_at      BIGINT NOT NULL,
    last_seen_at     BIGINT,
    revoked_at       BIGINT,
    token_generation BIGINT NOT NULL DEFAULT 1   -- raised when the device's tokens are revoked
);
CREATE INDEX devices_staff ON devices (staff_id);

-- Refresh tokens: one live token per device and generation; every use rotates it.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL REFERENCES devices (id),
    generation BIGINT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX refresh_tokens_device ON refresh_tokens (device_id);

CREATE TABLE login_throttle (
    username     TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('records', 0);

-- Every synced entity as a JSON object with the clock of each field (the same row form as the
-- desktop app's store). `case_id` is the case the record belongs to (NULL: reference data).
CREATE TABLE records (
    entity    TEXT NOT NULL,
    id        TEXT NOT NULL,
    case_id   TEXT,
    data      TEXT NOT NULL,
    field_hlc TEXT NOT NULL,
    archived  BIGINT NOT NULL DEFAULT 0,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (entity, id)
);
CREATE INDEX records_case ON records (case_id, seq);
CREATE INDEX records_seq ON records (seq);

-- Projections of the records that authorization needs, kept in the same transaction.
CREATE TABLE case_index (
    case_id        TEXT PRIMARY KEY,
    team_id        TEXT NOT NULL,
    coordinator_id TEXT NOT NULL,
    status         TEXT NOT NULL
);
CREATE INDEX case_index_team ON case_index (team_id);
CREATE INDEX case_index_coordinator ON case_index (coordinator_id);

CREATE TABLE members_index (
    member_id TEXT PRIMARY KEY,
    team_id   TEXT NOT NULL,
    staff_id  TEXT NOT NULL
);
CREATE INDEX members_index_staff ON members_index (staff_id, team_id);

CREATE TABLE participant_index (
    participant_id TEXT PRIMARY KEY,
    case_id        TEXT NOT NULL,
    staff_id       TEXT NOT NULL,
    legal_basis    BIGINT NOT NULL
);
CREATE INDEX participant_index_staff ON participant_index (staff_id, case_id);
CREATE INDEX participant_index_case ON participant_index (case_id);

-- Every use of personal data, append-only, each row's hash chained to the previous row's.
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    staff_id  TEXT,
    device_id TEXT,
    action    TEXT NOT NULL,
    case_id   TEXT,
    person_id TEXT,
    detail    TEXT NOT NULL,
    result    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_case ON audit_log (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX audit_log_person ON audit_log (person_id) WHERE person_id IS NOT NULL;

CREATE TABLE audit_head (
    singleton BIGINT PRIMARY KEY CHECK (singleton = 1),
    seq       BIGINT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_head (singleton, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
