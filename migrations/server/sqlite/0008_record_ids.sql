-- Every record id ever used, with its kind and case (ids only, no personal data). A new record
-- whose id was used before is refused: an id never moves to another kind, case or team, and a
-- deleted case's id cannot be claimed again by anyone.
CREATE TABLE record_ids (
    id      TEXT PRIMARY KEY,
    entity  TEXT NOT NULL,
    case_id TEXT
);
INSERT INTO record_ids (id, entity, case_id)
    SELECT id, MIN(entity), MIN(case_id) FROM records GROUP BY id;
-- Whether a worker ever had a case in sight (a quarantined note, an uploaded access-log entry).
CREATE INDEX audit_log_staff_case ON audit_log (staff_id, case_id) WHERE case_id IS NOT NULL;
-- A worker's waiting quarantined notes, counted over their own cases.
CREATE INDEX quarantine_waiting_case ON quarantine (case_id, note_id) WHERE resolved_at IS NULL;
CREATE INDEX quarantine_waiting_device ON quarantine (device_id) WHERE resolved_at IS NULL;
