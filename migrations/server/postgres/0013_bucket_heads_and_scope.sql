-- Pulls that cost what changed. Keep in step with ../sqlite/0013_bucket_heads_and_scope.sql.
--
-- `bucket_heads`: one row per bucket ('' the team's reference data, else the case id) with the
-- bucket's newest sequence number and how many records it holds. A record's `seq` is now
-- counted per bucket (the bucket's head, raised in the writing transaction), not by one counter
-- for the whole service: writers of different cases no longer wait for one another, and a
-- device's cursor stays a bucket's own count as before (each bucket continues from its highest
-- number). A pull compares the device's cursor with the head and reads only the buckets that
-- moved. Like `case_horizon` it holds ids and numbers only: no row-level security.
CREATE TABLE bucket_heads (
    bucket  TEXT PRIMARY KEY,
    seq     BIGINT NOT NULL,
    records BIGINT NOT NULL
);
-- Every existing bucket continues from the service-wide counter (at or above every number
-- ever given, purged records' included: a device's cursor may stand on a purged one), and so
-- does a bucket whose records were all purged (it has a horizon and no row).
INSERT INTO bucket_heads (bucket, seq, records)
    SELECT COALESCE(case_id, ''), (SELECT value FROM counters WHERE name = 'records'), COUNT(*)
    FROM records GROUP BY COALESCE(case_id, '');
INSERT INTO bucket_heads (bucket, seq, records)
    SELECT z.case_id, (SELECT value FROM counters WHERE name = 'records'), 0 FROM case_horizon z
    WHERE NOT EXISTS (SELECT 1 FROM bucket_heads h WHERE h.bucket = z.case_id);
GRANT SELECT, INSERT, UPDATE ON bucket_heads TO feltkontor_app;

-- `scope_index`: which staff member has which case in scope (a member of the case's team, a
-- participant, or its coordinator), kept by triggers on the three projections (running as the
-- tables' owner). The visible set of a pull is one indexed range of it, and row-level security
-- looks a row's case up in it (an index probe the planner sees) instead of calling a
-- SECURITY DEFINER function per row that it cannot inline.
CREATE TABLE scope_index (
    staff_id TEXT NOT NULL,
    case_id  TEXT NOT NULL,
    PRIMARY KEY (staff_id, case_id)
);
CREATE INDEX scope_index_case ON scope_index (case_id);
INSERT INTO scope_index (staff_id, case_id)
    SELECT m.staff_id, ci.case_id FROM case_index ci JOIN members_index m ON m.team_id = ci.team_id
    UNION SELECT p.staff_id, p.case_id FROM participant_index p JOIN case_index ci ON ci.case_id = p.case_id
    UNION SELECT ci.coordinator_id, ci.case_id FROM case_index ci
ON CONFLICT DO NOTHING;
-- A worker reads their own rows only; the triggers write.
ALTER TABLE scope_index ENABLE ROW LEVEL SECURITY;
CREATE POLICY scope_index_own ON scope_index USING (staff_id = feltkontor_worker());
GRANT SELECT ON scope_index TO feltkontor_app;

-- Drops the pairs (staff, case) among `cases` that no reason holds any more.
CREATE FUNCTION feltkontor_scope_drop(s text, cases text[]) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    DELETE FROM scope_index si WHERE si.staff_id = s AND si.case_id = ANY (cases)
      AND NOT EXISTS (SELECT 1 FROM case_index ci WHERE ci.case_id = si.case_id AND (
            ci.coordinator_id = s
            OR EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = s)
            OR EXISTS (SELECT 1 FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = s)));
$$;

CREATE FUNCTION feltkontor_scope_case() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    -- Only a new team or coordinator changes the scope (a status change does not).
    IF TG_OP = 'UPDATE' AND OLD.team_id = NEW.team_id AND OLD.coordinator_id = NEW.coordinator_id THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        DELETE FROM scope_index WHERE case_id = OLD.case_id;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO scope_index (staff_id, case_id)
            SELECT m.staff_id, NEW.case_id FROM members_index m WHERE m.team_id = NEW.team_id
            UNION SELECT p.staff_id, NEW.case_id FROM participant_index p WHERE p.case_id = NEW.case_id
            UNION SELECT NEW.coordinator_id, NEW.case_id
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER scope_case AFTER INSERT OR UPDATE OR DELETE ON case_index
    FOR EACH ROW EXECUTE FUNCTION feltkontor_scope_case();

CREATE FUNCTION feltkontor_scope_member() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM feltkontor_scope_drop(OLD.staff_id,
            ARRAY(SELECT ci.case_id FROM case_index ci WHERE ci.team_id = OLD.team_id));
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO scope_index (staff_id, case_id)
            SELECT NEW.staff_id, ci.case_id FROM case_index ci WHERE ci.team_id = NEW.team_id
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER scope_member AFTER INSERT OR UPDATE OR DELETE ON members_index
    FOR EACH ROW EXECUTE FUNCTION feltkontor_scope_member();

CREATE FUNCTION feltkontor_scope_participant() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM feltkontor_scope_drop(OLD.staff_id, ARRAY[OLD.case_id]);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO scope_index (staff_id, case_id)
            SELECT NEW.staff_id, ci.case_id FROM case_index ci WHERE ci.case_id = NEW.case_id
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER scope_participant AFTER INSERT OR UPDATE OR DELETE ON participant_index
    FOR EACH ROW EXECUTE FUNCTION feltkontor_scope_participant();

-- The policies look the case up in the worker's scope rows (an index probe per row, or a
-- semi-join) instead of calling `feltkontor_case_visible` per row.
DROP POLICY records_scope ON records;
CREATE POLICY records_scope ON records
    USING (feltkontor_worker() IS NOT NULL AND (case_id IS NULL OR EXISTS (
        SELECT 1 FROM scope_index s WHERE s.staff_id = feltkontor_worker() AND s.case_id = records.case_id)))
    WITH CHECK (feltkontor_worker() IS NOT NULL AND (case_id IS NULL OR EXISTS (
        SELECT 1 FROM scope_index s WHERE s.staff_id = feltkontor_worker() AND s.case_id = records.case_id)));
DROP POLICY case_index_scope ON case_index;
CREATE POLICY case_index_scope ON case_index
    USING (EXISTS (SELECT 1 FROM scope_index s WHERE s.staff_id = feltkontor_worker() AND s.case_id = case_index.case_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);
DROP POLICY participant_index_scope ON participant_index;
CREATE POLICY participant_index_scope ON participant_index
    USING (EXISTS (SELECT 1 FROM scope_index s WHERE s.staff_id = feltkontor_worker() AND s.case_id = participant_index.case_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);
DROP POLICY case_history_scope ON case_history;
CREATE POLICY case_history_scope ON case_history
    USING (feltkontor_worker() IS NOT NULL AND EXISTS (
        SELECT 1 FROM scope_index s WHERE s.staff_id = feltkontor_worker() AND s.case_id = case_history.case_id))
    WITH CHECK (feltkontor_worker() IS NOT NULL);
