-- Who created each note, beside its id (ids only, no personal data; no row-level security):
-- a refused change of a note is kept in quarantine only when it is its author's, which the
-- service must know even when the note's case is out of the pushing worker's sight.
ALTER TABLE record_ids ADD COLUMN author_id TEXT;
UPDATE record_ids SET author_id = (
    SELECT r.data::json ->> 'author_id' FROM records r WHERE r.entity = 'note' AND r.id = record_ids.id
) WHERE entity = 'note';
