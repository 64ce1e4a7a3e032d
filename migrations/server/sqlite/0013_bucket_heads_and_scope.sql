-- Pulls that cost what changed. Keep in step with ../postgres/0013_bucket_heads_and_scope.sql.
--
-- `bucket_heads`: one row per bucket ('' the team's reference data, else the case id) with the
-- bucket's newest sequence number and how many records it holds. A record's `seq` is now
-- counted per bucket (the bucket's head, raised in the writing transaction), not by one counter
-- for the whole service: writers of different cases no longer wait for one another, and a
-- device's cursor stays a bucket's own count as before (each bucket continues from its highest
-- number). A pull compares the device's cursor with the head and reads only the buckets that
-- moved.
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

-- `scope_index`: which staff member has which case in scope (a member of the case's team, a
-- participant, or its coordinator), kept by triggers on the three projections. The visible set
-- of a pull is one indexed range of it; on PostgreSQL row-level security looks a row's case up
-- in it instead of calling a function per row.
CREATE TABLE scope_index (
    staff_id TEXT NOT NULL,
    case_id  TEXT NOT NULL,
    PRIMARY KEY (staff_id, case_id)
);
CREATE INDEX scope_index_case ON scope_index (case_id);
INSERT OR IGNORE INTO scope_index (staff_id, case_id)
    SELECT m.staff_id, ci.case_id FROM case_index ci JOIN members_index m ON m.team_id = ci.team_id
    UNION SELECT p.staff_id, p.case_id FROM participant_index p JOIN case_index ci ON ci.case_id = p.case_id
    UNION SELECT ci.coordinator_id, ci.case_id FROM case_index ci;

CREATE TRIGGER scope_case_insert AFTER INSERT ON case_index BEGIN
    INSERT INTO scope_index (staff_id, case_id)
        SELECT x.staff_id, x.case_id FROM (
            SELECT m.staff_id AS staff_id, NEW.case_id AS case_id FROM members_index m WHERE m.team_id = NEW.team_id
            UNION SELECT p.staff_id, NEW.case_id FROM participant_index p WHERE p.case_id = NEW.case_id
            UNION SELECT NEW.coordinator_id, NEW.case_id) AS x
        WHERE NOT EXISTS (SELECT 1 FROM scope_index si WHERE si.staff_id = x.staff_id AND si.case_id = x.case_id);
END;
-- Only a new team or coordinator changes the scope (a status change does not).
CREATE TRIGGER scope_case_update AFTER UPDATE ON case_index
    WHEN OLD.team_id <> NEW.team_id OR OLD.coordinator_id <> NEW.coordinator_id BEGIN
    DELETE FROM scope_index WHERE case_id = OLD.case_id;
    INSERT INTO scope_index (staff_id, case_id)
        SELECT x.staff_id, x.case_id FROM (
            SELECT m.staff_id AS staff_id, NEW.case_id AS case_id FROM members_index m WHERE m.team_id = NEW.team_id
            UNION SELECT p.staff_id, NEW.case_id FROM participant_index p WHERE p.case_id = NEW.case_id
            UNION SELECT NEW.coordinator_id, NEW.case_id) AS x
        WHERE NOT EXISTS (SELECT 1 FROM scope_index si WHERE si.staff_id = x.staff_id AND si.case_id = x.case_id);
END;
CREATE TRIGGER scope_case_delete AFTER DELETE ON case_index BEGIN
    DELETE FROM scope_index WHERE case_id = OLD.case_id;
END;

-- A membership gives the team's cases; when it goes, a case stays only where another reason
-- holds (another membership of the same team, a participation, the coordinator).
CREATE TRIGGER scope_member_insert AFTER INSERT ON members_index BEGIN
    INSERT INTO scope_index (staff_id, case_id)
        SELECT x.staff_id, x.case_id FROM (
            SELECT NEW.staff_id AS staff_id, ci.case_id AS case_id FROM case_index ci WHERE ci.team_id = NEW.team_id) AS x
        WHERE NOT EXISTS (SELECT 1 FROM scope_index si WHERE si.staff_id = x.staff_id AND si.case_id = x.case_id);
END;
CREATE TRIGGER scope_member_update AFTER UPDATE ON members_index BEGIN
    DELETE FROM scope_index WHERE staff_id = OLD.staff_id AND case_id IN (
        SELECT ci.case_id FROM case_index ci WHERE ci.team_id = OLD.team_id
          AND NOT EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = OLD.staff_id)
          AND NOT EXISTS (SELECT 1 FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = OLD.staff_id)
          AND ci.coordinator_id <> OLD.staff_id);
    INSERT INTO scope_index (staff_id, case_id)
        SELECT x.staff_id, x.case_id FROM (
            SELECT NEW.staff_id AS staff_id, ci.case_id AS case_id FROM case_index ci WHERE ci.team_id = NEW.team_id) AS x
        WHERE NOT EXISTS (SELECT 1 FROM scope_index si WHERE si.staff_id = x.staff_id AND si.case_id = x.case_id);
END;
CREATE TRIGGER scope_member_delete AFTER DELETE ON members_index BEGIN
    DELETE FROM scope_index WHERE staff_id = OLD.staff_id AND case_id IN (
        SELECT ci.case_id FROM case_index ci WHERE ci.team_id = OLD.team_id
          AND NOT EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = OLD.staff_id)
          AND NOT EXISTS (SELECT 1 FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = OLD.staff_id)
          AND ci.coordinator_id <> OLD.staff_id);
END;

CREATE TRIGGER scope_participant_insert AFTER INSERT ON participant_index BEGIN
    INSERT INTO scope_index (staff_id, case_id)
        SELECT x.staff_id, x.case_id FROM (
            SELECT NEW.staff_id AS staff_id, ci.case_id AS case_id FROM case_index ci WHERE ci.case_id = NEW.case_id) AS x
        WHERE NOT EXISTS (SELECT 1 FROM scope_index si WHERE si.staff_id = x.staff_id AND si.case_id = x.case_id);
END;
CREATE TRIGGER scope_participant_update AFTER UPDATE ON participant_index BEGIN
    DELETE FROM scope_index WHERE staff_id = OLD.staff_id AND case_id IN (
        SELECT ci.case_id FROM case_index ci WHERE ci.case_id = OLD.case_id
          AND NOT EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = OLD.staff_id)
          AND NOT EXISTS (SELECT 1 FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = OLD.staff_id)
          AND ci.coordinator_id <> OLD.staff_id);
    INSERT INTO scope_index (staff_id, case_id)
        SELECT x.staff_id, x.case_id FROM (
            SELECT NEW.staff_id AS staff_id, ci.case_id AS case_id FROM case_index ci WHERE ci.case_id = NEW.case_id) AS x
        WHERE NOT EXISTS (SELECT 1 FROM scope_index si WHERE si.staff_id = x.staff_id AND si.case_id = x.case_id);
END;
CREATE TRIGGER scope_participant_delete AFTER DELETE ON participant_index BEGIN
    DELETE FROM scope_index WHERE staff_id = OLD.staff_id AND case_id IN (
        SELECT ci.case_id FROM case_index ci WHERE ci.case_id = OLD.case_id
          AND NOT EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = OLD.staff_id)
          AND NOT EXISTS (SELECT 1 FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = OLD.staff_id)
          AND ci.coordinator_id <> OLD.staff_id);
END;
