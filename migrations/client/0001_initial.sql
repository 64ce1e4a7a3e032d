-- The first schema of the desktop app's encrypted local store.
--
-- Every table of synced data has:
--   id         the entity's UUID (text), unique
--   archived   1 = tombstone (soft delete); rows are never physically deleted by the app
--   field_hlc  JSON object: field name -> hybrid-logical-clock timestamp of the write that set it;
--              the key "*" stands for every field not listed (a new row is {"*": <hlc of its insert>})
-- No foreign-key constraints: sync may deliver rows in any order; the store's operations check
-- references themselves.

CREATE TABLE device_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    device_id TEXT NOT NULL,
    worker_id TEXT NOT NULL,
    next_seq  INTEGER NOT NULL,
    hlc       TEXT NOT NULL
);

-- One row per committed mutation, written in the same transaction as the mutation.
CREATE TABLE change_log (
    seq       INTEGER PRIMARY KEY,           -- per-device sequence: 1, 2, 3, … no gaps
    op_id     TEXT NOT NULL UNIQUE,          -- UUIDv7
    device_id TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    hlc       TEXT NOT NULL,                 -- the mutation's timestamp: every field in it carries this one
    fields    TEXT NOT NULL,                 -- JSON: field -> new value
    pushed    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX change_log_entity ON change_log (entity, entity_id);

CREATE TABLE teams (
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    district TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE staff (
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    initials TEXT NOT NULL,
    profession TEXT NOT NULL,
    sector TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE team_members (
    id TEXT NOT NULL UNIQUE,
    team_id TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX team_members_staff ON team_members (staff_id);

CREATE TABLE cases (
    id TEXT NOT NULL UNIQUE,
    team_id TEXT NOT NULL,
    child_name TEXT NOT NULL,
    child_birth_date TEXT NOT NULL,
    child_cpr TEXT,
    child_institution TEXT,
    status TEXT NOT NULL,
    closed_reason TEXT,
    coordinator_id TEXT NOT NULL,
    opened_on TEXT NOT NULL,
    first_concern_on TEXT,
    first_meeting_on TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX cases_coordinator ON cases (coordinator_id);
CREATE INDEX cases_team ON cases (team_id);

CREATE TABLE participants (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    staff_id TEXT NOT NULL,
    role TEXT NOT NULL,
    legal_basis TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX participants_case ON participants (case_id);
CREATE INDEX participants_staff ON participants (staff_id, case_id);

CREATE TABLE handovers (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    from_staff_id TEXT NOT NULL,
    to_staff_id TEXT NOT NULL,
    note TEXT NOT NULL,
    at TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX handovers_case ON handovers (case_id, at);

CREATE TABLE persons (
    rid INTEGER PRIMARY KEY,                 -- stable rowid, the search index's key
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    name TEXT NOT NULL,
    relation TEXT NOT NULL,
    custody INTEGER NOT NULL,
    email TEXT,
    address TEXT,
    protected_address INTEGER NOT NULL,
    language TEXT,
    interpreter_needed INTEGER NOT NULL,
    do_not_contact INTEGER NOT NULL,
    do_not_contact_reason TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX persons_case ON persons (case_id);

CREATE TABLE phones (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    number TEXT NOT NULL,
    label TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX phones_person ON phones (person_id);

CREATE TABLE relations (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    from_person_id TEXT,                     -- NULL: the child
    to_person_id TEXT NOT NULL,
    quality TEXT NOT NULL,
    as_of TEXT NOT NULL,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX relations_case ON relations (case_id, as_of);

CREATE TABLE notes (
    rid INTEGER PRIMARY KEY,                 -- stable rowid, the search index's key
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    author_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at TEXT NOT NULL,               -- RFC 3339, UTC, whole seconds: sorts as time
    body TEXT NOT NULL,
    child_words TEXT NOT NULL,
    family_perspective TEXT NOT NULL,
    statutory INTEGER NOT NULL,
    audience TEXT NOT NULL,
    status TEXT NOT NULL,
    signed_at TEXT,
    content_hash TEXT,
    addendum_to TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX notes_timeline ON notes (case_id, occurred_at DESC, id DESC);
CREATE INDEX notes_addendum ON notes (addendum_to) WHERE addendum_to IS NOT NULL;

CREATE TABLE consents (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    given_by TEXT NOT NULL,
    sectors TEXT NOT NULL,                   -- JSON array
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    withdrawn_at TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX consents_case ON consents (case_id);

CREATE TABLE agreements (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    what TEXT NOT NULL,
    responsible_staff_id TEXT,
    responsible_person_id TEXT,
    due_on TEXT,
    done_at TEXT,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX agreements_case ON agreements (case_id, due_on);
