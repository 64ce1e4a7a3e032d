-- The notes still waiting in quarantine (read on every pull's last page, to tell a coordinator
-- how many wait for them) found without reading the decided ones.
CREATE INDEX quarantine_waiting ON quarantine (note_id, seq) WHERE resolved_at IS NULL;
