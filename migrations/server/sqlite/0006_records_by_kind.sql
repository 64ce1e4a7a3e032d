-- A case's live records of one kind (its consents, read for every case a worker may see on
-- every pull page) found by the index instead of reading each of the case's records.
CREATE INDEX records_case_entity ON records (case_id, entity) WHERE archived = 0;
