-- A number per worker that moves whenever what they may see could have changed: a case
-- entering or leaving their scope, their participation (its legal basis) changing, a consent
-- of a case in their scope written, a purge. A kept pull plan (PostgreSQL, see
-- crates/feltkontor-central/src/plans.rs) is used only while its worker's number is the one it
-- was made with: one row read instead of the whole scope. Keep in step with
-- ../postgres/0014_scope_versions.sql.
CREATE TABLE scope_versions (
    staff_id TEXT PRIMARY KEY,
    n        BIGINT NOT NULL
);
-- Everyone with a scope today starts at 1 (a bump then always finds their row).
INSERT INTO scope_versions (staff_id, n) SELECT DISTINCT staff_id, 1 FROM scope_index;
CREATE TRIGGER scope_version_in AFTER INSERT ON scope_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (NEW.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scope_version_out AFTER DELETE ON scope_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (OLD.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
-- A participation or membership coming or going moves it even when another reason keeps the
-- case in scope (a participant sees more than a team member who is not one).
CREATE TRIGGER scope_version_participant_in AFTER INSERT ON participant_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (NEW.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scope_version_participant_out AFTER DELETE ON participant_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (OLD.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scope_version_member_in AFTER INSERT ON members_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (NEW.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scope_version_member_out AFTER DELETE ON members_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (OLD.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scope_version_member AFTER UPDATE ON members_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (NEW.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
    INSERT INTO scope_versions (staff_id, n) VALUES (OLD.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER scope_version_participant AFTER UPDATE ON participant_index BEGIN
    INSERT INTO scope_versions (staff_id, n) VALUES (NEW.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
    INSERT INTO scope_versions (staff_id, n) VALUES (OLD.staff_id, 1)
        ON CONFLICT (staff_id) DO UPDATE SET n = n + 1;
END;
