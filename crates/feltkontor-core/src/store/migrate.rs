//! Ordered, forward-only schema migrations, applied in one transaction at open.
//! The schema version is SQLite's `user_version`. Each applied migration's checksum is
//! recorded (`schema_migrations`, from migration [`RECORDED_FROM`] on) and compared at every
//! open ([`verify`]).

use crate::error::Result;
use rusqlite::{Connection, TransactionBehavior};

/// One `.sql` file of `migrations/client/`.
#[derive(Debug)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The migration that creates `schema_migrations`; from it on, applied migrations are recorded.
pub const RECORDED_FROM: u32 = 6;

impl Migration {
    /// BLAKE2s-256 of the file's text, hex.
    pub fn checksum(&self) -> String {
        use blake2::Digest;
        hex::encode(blake2::Blake2s256::digest(self.sql.as_bytes()))
    }
}

/// The newest schema this build knows.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub(crate) fn current_version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Applies every migration above the current version up to `target`, all or nothing.
pub(crate) fn apply(conn: &mut Connection, target: u32) -> Result<()> {
    let current = current_version(conn)?;
    if current >= target {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        tx.execute_batch(m.sql)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    if target >= RECORDED_FROM {
        let mut insert = tx.prepare(
            "INSERT OR IGNORE INTO schema_migrations (version, name, checksum) VALUES (?1, ?2, ?3)",
        )?;
        for m in MIGRATIONS.iter().filter(|m| m.version <= target) {
            insert.execute(rusqlite::params![m.version, m.name, m.checksum()])?;
        }
    }
    tx.pragma_update(None, "user_version", target)?;
    tx.commit()?;
    Ok(())
}

/// Compares every recorded migration with this build's: a landed migration edited after this
/// store applied it is [`crate::Error::MigrationChanged`].
pub(crate) fn verify(conn: &Connection) -> Result<()> {
    if current_version(conn)? < RECORDED_FROM {
        return Ok(());
    }
    let mut stmt = conn.prepare("SELECT version, name, checksum FROM schema_migrations")?;
    let recorded = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (version, name, checksum) in recorded {
        let same = MIGRATIONS
            .iter()
            .find(|m| m.version == version)
            .is_some_and(|m| m.checksum() == checksum);
        if !same {
            return Err(crate::Error::MigrationChanged { version, name });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::store::{KdfParams, Store, StoreLocation};
    use std::path::PathBuf;
    use std::sync::Arc;
    use time::macros::datetime;

    pub const FIXTURE_PASSPHRASE: &str = "fixture passphrase 1";

    fn fixture_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1")
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(datetime!(2026-11-23 09:00 UTC)))
    }

    #[test]
    fn migrations_are_numbered_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
        assert!(latest() >= 2);
    }

    /// Writes the schema-1 fixture: a database created with only the first migration and rows
    /// inserted as the first release wrote them. Run by hand with `--ignored` once; committed.
    #[test]
    #[ignore = "regenerates the committed fixture"]
    fn regenerate_schema_v1_fixture() {
        let dir = fixture_dir();
        let _ = std::fs::remove_dir_all(&dir);
        let loc = StoreLocation::new(&dir);
        let worker = feltkontor_wire::StaffId::new();
        let store = crate::store::create_at_schema_for_tests(
            &loc,
            FIXTURE_PASSPHRASE,
            worker,
            KdfParams::default(),
            clock(),
            1,
        )
        .unwrap();
        store
            .conn()
            .execute_batch(&format!(
                "INSERT INTO teams (id, name, district) VALUES ('0190a000-0000-7000-8000-000000000001', 'Team Søndervang', 'Søndervang');
                 INSERT INTO staff (id, name, initials, profession, sector) VALUES ('{worker}', 'Mette Kjær', 'MK', 'caseworker', 'social_services');
                 INSERT INTO cases (id, team_id, child_name, child_birth_date, status, coordinator_id, opened_on)
                   VALUES ('0190a000-0000-7000-8000-000000000002', '0190a000-0000-7000-8000-000000000001', 'Søren Åberg', '2015-03-01', 'open', '{worker}', '2026-01-05');
                 INSERT INTO participants (id, case_id, staff_id, role) VALUES ('0190a000-0000-7000-8000-000000000005', '0190a000-0000-7000-8000-000000000002', '{worker}', 'Tovholder');
                 INSERT INTO persons (id, case_id, name, relation, custody, protected_address, interpreter_needed, do_not_contact)
                   VALUES ('0190a000-0000-7000-8000-000000000003', '0190a000-0000-7000-8000-000000000002', 'Ærtebjerg Jørgensen', 'mother', 1, 0, 0, 0);
                 INSERT INTO notes (id, case_id, author_id, kind, occurred_at, body, child_words, family_perspective, statutory, audience, status)
                   VALUES ('0190a000-0000-7000-8000-000000000004', '0190a000-0000-7000-8000-000000000002', '{worker}', 'home_visit', '2026-02-01T10:00:00Z',
                           'Hjemmebesøg i Århus hos familien', 'Jeg kan godt lide skolen', '', 1, 'case_team', 'draft');"
            ))
            .unwrap();
        store
            .conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        drop(store);
    }

    #[test]
    fn upgrades_a_schema_v1_database_and_keeps_its_data() {
        let tmp = tempfile::tempdir().unwrap();
        for f in ["feltkontor.db", "feltkontor.key"] {
            std::fs::copy(fixture_dir().join(f), tmp.path().join(f)).unwrap();
        }
        let loc = StoreLocation::new(tmp.path());
        let store = Store::open(&loc, FIXTURE_PASSPHRASE, clock()).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest());
        let hits = store.search("aarhus", 10).unwrap();
        assert_eq!(hits.notes.len(), 1, "the migration indexed the old note");
        let people = store.search("aertebjerg", 10).unwrap();
        assert_eq!(people.persons.len(), 1);
        assert!(store.integrity_ok().unwrap());
    }

    #[test]
    fn every_applied_migration_is_recorded_and_an_edited_one_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for f in ["feltkontor.db", "feltkontor.key"] {
            std::fs::copy(fixture_dir().join(f), tmp.path().join(f)).unwrap();
        }
        let loc = StoreLocation::new(tmp.path());
        // A schema-1 store upgraded: every migration up to the latest recorded.
        let store = Store::open(&loc, FIXTURE_PASSPHRASE, clock()).unwrap();
        let recorded: Vec<(u32, String)> = store
            .conn()
            .prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let want: Vec<(u32, String)> = MIGRATIONS
            .iter()
            .map(|m| (m.version, m.checksum()))
            .collect();
        assert_eq!(recorded, want);
        // As if migration 3 had been applied from a text since edited.
        store
            .conn()
            .execute(
                "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 3",
                [],
            )
            .unwrap();
        drop(store);
        let err = Store::open(&loc, FIXTURE_PASSPHRASE, clock()).unwrap_err();
        assert!(
            matches!(&err, crate::Error::MigrationChanged { version: 3, name } if name == "0003_sync.sql"),
            "{err:?}"
        );
        assert_eq!(err.code(), "store.migration_changed");
    }

    #[test]
    fn a_newer_schema_is_refused_and_the_file_left_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let loc = StoreLocation::new(tmp.path());
        let store = Store::create(
            &loc,
            FIXTURE_PASSPHRASE,
            feltkontor_wire::StaffId::new(),
            clock(),
        )
        .unwrap();
        store
            .conn()
            .pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        drop(store);
        let before = std::fs::read(loc.database()).unwrap();
        let err = Store::open(&loc, FIXTURE_PASSPHRASE, clock()).unwrap_err();
        assert!(
            matches!(err, crate::Error::SchemaTooNew { found, known } if found == latest() + 1 && known == latest()),
            "{err:?}"
        );
        assert_eq!(std::fs::read(loc.database()).unwrap(), before);
    }
}
