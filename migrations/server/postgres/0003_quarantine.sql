-- Notes pushed by a worker who had lost access to the case while offline (removed from the
-- team, consent withdrawn): refused, but never discarded. The pushed change waits here, whole,
-- for the case's coordinator or a leader to decide.
CREATE TABLE quarantine (
    device_id   TEXT NOT NULL REFERENCES devices (id),
    seq         BIGINT NOT NULL,
    staff_id    TEXT NOT NULL,
    case_id     TEXT,
    note_id     TEXT NOT NULL,
    entry       TEXT NOT NULL,
    at          BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    PRIMARY KEY (device_id, seq)
);
CREATE INDEX quarantine_case ON quarantine (case_id);
GRANT SELECT, INSERT, UPDATE ON quarantine TO feltkontor_app;
