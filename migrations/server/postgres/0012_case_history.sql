-- A case's change history: who changed which fields of which record of the case, when, from
-- which device. One row per change the service applied (pushed or accepted from quarantine),
-- written in the same transaction. Read only through the visibility decision (a participant
-- sees the history of the records they may see, and a withheld field's name is not shown).
-- The values are not kept here: the records hold them, and the audit log holds the rest.
-- `seq` runs across all cases (a gap says nothing about one case).
CREATE TABLE case_history (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    staff_id  TEXT NOT NULL,
    device_id TEXT NOT NULL,
    entity    TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    fields    TEXT NOT NULL
);
CREATE INDEX case_history_by_case ON case_history (case_id, seq);
-- Row-level security as the second line: read within the worker's scope. Written by any
-- signed-in worker's applied change, even one that takes the case out of their scope (a case
-- deleted, a participant leaving): the change was allowed, so its history row is too.
ALTER TABLE case_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE case_history FORCE ROW LEVEL SECURITY;
CREATE POLICY case_history_scope ON case_history
    USING (feltkontor_worker() IS NOT NULL AND feltkontor_case_visible(case_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);
GRANT SELECT, INSERT, DELETE ON case_history TO feltkontor_app;
