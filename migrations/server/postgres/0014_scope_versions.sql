-- A number per worker that moves whenever what they may see could have changed: a case
-- entering or leaving their scope, their participation (its legal basis) changing, a consent
-- of a case in their scope written, a purge. A kept pull plan (see
-- crates/feltkontor-central/src/plans.rs) is used only while its worker's number is the one it
-- was made with: one row read instead of the whole scope. Numbers only: no row-level
-- security. Keep in step with ../sqlite/0014_scope_versions.sql.
CREATE TABLE scope_versions (
    staff_id TEXT PRIMARY KEY,
    n        BIGINT NOT NULL
);
GRANT SELECT, INSERT, UPDATE ON scope_versions TO feltkontor_app;
-- Everyone with a scope today starts at 1 (a bump then always finds their row).
INSERT INTO scope_versions (staff_id, n) SELECT DISTINCT staff_id, 1 FROM scope_index;

CREATE FUNCTION feltkontor_scope_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO scope_versions (staff_id, n) VALUES (NEW.staff_id, 1)
            ON CONFLICT (staff_id) DO UPDATE SET n = scope_versions.n + 1;
    END IF;
    IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR OLD.staff_id <> NEW.staff_id) THEN
        INSERT INTO scope_versions (staff_id, n) VALUES (OLD.staff_id, 1)
            ON CONFLICT (staff_id) DO UPDATE SET n = scope_versions.n + 1;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER scope_version AFTER INSERT OR DELETE ON scope_index
    FOR EACH ROW EXECUTE FUNCTION feltkontor_scope_version();
-- A participation or membership coming, going or changing moves it even when another reason
-- keeps the case in scope (a participant sees more than a team member who is not one).
CREATE TRIGGER scope_version_participant AFTER INSERT OR UPDATE OR DELETE ON participant_index
    FOR EACH ROW EXECUTE FUNCTION feltkontor_scope_version();
CREATE TRIGGER scope_version_member AFTER INSERT OR UPDATE OR DELETE ON members_index
    FOR EACH ROW EXECUTE FUNCTION feltkontor_scope_version();

-- A consent of the case was written: everyone with the case in scope (read as the owner: a
-- worker sees their own scope rows only).
CREATE FUNCTION feltkontor_bump_case_scope(c text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    UPDATE scope_versions SET n = n + 1
    WHERE staff_id IN (SELECT s.staff_id FROM scope_index s WHERE s.case_id = c);
$$;
GRANT EXECUTE ON FUNCTION feltkontor_bump_case_scope(text) TO feltkontor_app;
