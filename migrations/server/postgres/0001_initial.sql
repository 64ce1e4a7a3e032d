-- The central service's first schema on PostgreSQL (production).
-- Keep in step with ../sqlite/0001_initial.sql: the same tables, columns and meaning.
-- Times are Unix milliseconds (BIGINT); booleans are 0/1; ids are UUID text.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
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


-- The audit log cannot be changed, not even by the tables' owner by mistake.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Row-level security: the second line behind the service's own checks. The service runs as
-- feltkontor_app, which owns nothing, is no superuser and has no BYPASSRLS; each transaction
-- sets `feltkontor.worker` to the worker it acts for, and the policies key on it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'feltkontor_app') THEN
        CREATE ROLE feltkontor_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database's migration created it at the same moment
END $$;

CREATE FUNCTION feltkontor_worker() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT nullif(current_setting('feltkontor.worker', true), '')
$$;

-- Runs as the tables' owner (which bypasses RLS) so that the policies below can look at the
-- projections without recursing into their own policies.
CREATE FUNCTION feltkontor_case_visible(c text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (
        SELECT 1 FROM case_index ci
        WHERE ci.case_id = c AND (
            ci.team_id IN (SELECT m.team_id FROM members_index m WHERE m.staff_id = feltkontor_worker())
            OR ci.coordinator_id = feltkontor_worker()
            OR EXISTS (SELECT 1 FROM participant_index p WHERE p.case_id = c AND p.staff_id = feltkontor_worker())
        )
    )
$$;

CREATE FUNCTION feltkontor_team_visible(t text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = t AND m.staff_id = feltkontor_worker())
$$;

ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE records FORCE ROW LEVEL SECURITY;
-- Reference data (teams, staff, memberships: case_id NULL) is the directory every signed-in
-- worker sees; case data only within the worker's scope.
CREATE POLICY records_scope ON records
    USING (feltkontor_worker() IS NOT NULL AND (case_id IS NULL OR feltkontor_case_visible(case_id)))
    WITH CHECK (feltkontor_worker() IS NOT NULL AND (case_id IS NULL OR feltkontor_case_visible(case_id)));

ALTER TABLE case_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_index FORCE ROW LEVEL SECURITY;
CREATE POLICY case_index_scope ON case_index
    USING (feltkontor_case_visible(case_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);

ALTER TABLE participant_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE participant_index FORCE ROW LEVEL SECURITY;
CREATE POLICY participant_index_scope ON participant_index
    USING (feltkontor_case_visible(case_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);

ALTER TABLE members_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE members_index FORCE ROW LEVEL SECURITY;
CREATE POLICY members_index_scope ON members_index
    USING (staff_id = feltkontor_worker() OR feltkontor_team_visible(team_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);

GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, enrollment_codes, devices, refresh_tokens,
    login_throttle, counters, records, case_index, members_index, participant_index TO feltkontor_app;
GRANT SELECT ON server_secrets, schema_migrations TO feltkontor_app;
-- Append-only for the service: no UPDATE, no DELETE on the log.
GRANT SELECT, INSERT ON audit_log TO feltkontor_app;
GRANT SELECT, UPDATE ON audit_head TO feltkontor_app;
GRANT EXECUTE ON FUNCTION feltkontor_worker(), feltkontor_case_visible(text), feltkontor_team_visible(text) TO feltkontor_app;
