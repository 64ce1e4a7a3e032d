-- Planned home visits, meetings and network meetings (the `Appointment` record): synced case
-- data like any other. Once held, `note_id` names the note written of the meeting.
CREATE TABLE appointments (
    id TEXT NOT NULL UNIQUE,
    case_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    place TEXT NOT NULL,
    invited_persons TEXT NOT NULL,
    invited_staff TEXT NOT NULL,
    note_id TEXT,
    cancelled INTEGER NOT NULL DEFAULT 0,
    archived INTEGER NOT NULL DEFAULT 0,
    field_hlc TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX appointments_case ON appointments (case_id, starts_at);
CREATE INDEX appointments_when ON appointments (starts_at);
