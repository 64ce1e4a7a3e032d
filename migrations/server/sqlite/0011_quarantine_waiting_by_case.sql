-- A worker's waiting quarantined notes are counted on every pull's last page over the cases
-- they decide on: found by case, without reading the notes waiting in anyone else's cases
-- (0007's index is by note, for the list and the decision).
CREATE INDEX quarantine_waiting_by_case ON quarantine (case_id, note_id) WHERE resolved_at IS NULL;
