//! Schema migrations per engine, embedded in the binary (`migrations/server/{sqlite,postgres}`).

use crate::db::{Conn, Engine};
use crate::error::{Result, ServiceError};
use crate::params;

pub(crate) struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

impl Migration {
    fn sql(&self, engine: Engine) -> &'static str {
        match engine {
            Engine::Sqlite => self.sqlite,
            Engine::Postgres => self.postgres,
        }
    }

    /// The SHA-256 of the engine's file, as recorded when it was applied.
    fn checksum(&self, engine: Engine) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.sql(engine).as_bytes()))
    }
}

// `MIGRATIONS`, from `migrations/server/{sqlite,postgres}` (see `build.rs`).
include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

/// The schema version this build expects: the last migration's.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The migration that records checksums: before it, `schema_migrations` has no such column.
const CHECKSUMS_FROM: i64 = 9;

/// Applies every migration not yet applied, each in its own transaction. On PostgreSQL an
/// advisory lock keeps two instances started at once from migrating together.
pub fn run(conn: &mut dyn Conn) -> Result<u32> {
    run_to(conn, LATEST)
}

/// [`run`] up to schema version `last` only (the tests of a migration arrange data in the
/// schema before it).
pub fn run_to(conn: &mut dyn Conn, last: i64) -> Result<u32> {
    let engine = conn.engine();
    if engine == Engine::Postgres {
        conn.batch("SELECT pg_advisory_lock(72707271)")?;
    }
    let result = apply(conn, engine, last);
    if engine == Engine::Postgres {
        let _ = conn.batch("SELECT pg_advisory_unlock(72707271)");
    }
    result
}

fn apply(conn: &mut dyn Conn, engine: Engine, last: i64) -> Result<u32> {
    conn.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    let current = current_version(conn)?;
    if current > LATEST {
        return Err(ServiceError::internal(format!(
            "the database has schema version {current}, newer than this server ({LATEST}): upgrade the server"
        )));
    }
    verify(conn)?;
    let mut applied = 0;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= last)
    {
        conn.begin()?;
        let r = conn.batch(m.sql(engine)).and_then(|()| {
            if m.version >= CHECKSUMS_FROM {
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at, checksum) VALUES ($1, $2, $3)",
                    params![m.version, crate::now_ms(), m.checksum(engine)],
                )
            } else {
                conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    params![m.version, crate::now_ms()],
                )
            }
        });
        match r {
            Ok(_) => conn.commit()?,
            Err(e) => {
                let _ = conn.rollback();
                return Err(e);
            }
        }
        applied += 1;
    }
    if current_version(conn)? >= CHECKSUMS_FROM {
        // Migrations applied before checksums were recorded: their files as this build has them.
        for m in MIGRATIONS {
            conn.execute(
                "UPDATE schema_migrations SET checksum = $1 WHERE version = $2 AND checksum IS NULL",
                params![m.checksum(engine), m.version],
            )?;
        }
    }
    if applied > 0 {
        crate::identity::ensure_signing_key(conn)?;
    }
    Ok(applied)
}

/// Checks every applied migration's recorded checksum against the file this build embeds: a
/// landed migration that was edited since is refused, naming it.
pub fn verify(conn: &mut dyn Conn) -> Result<()> {
    if current_version(conn)? < CHECKSUMS_FROM {
        return Ok(());
    }
    let engine = conn.engine();
    for r in conn.query(
        "SELECT version, checksum FROM schema_migrations WHERE checksum IS NOT NULL ORDER BY version",
        params![],
    )? {
        let version = r.int(0)?;
        let recorded = r.text(1)?;
        let Some(m) = MIGRATIONS.iter().find(|m| m.version == version) else {
            continue;
        };
        if m.checksum(engine) != recorded {
            return Err(ServiceError::internal(format!(
                "migration {} ({}) differs from the one applied to this database: a landed migration is never edited; restore the file and add a new migration instead",
                m.version, m.name
            )));
        }
    }
    Ok(())
}

pub fn current_version(conn: &mut dyn Conn) -> Result<i64> {
    Ok(conn
        .query_one("SELECT MAX(version) FROM schema_migrations", params![])?
        .and_then(|r| r.opt_int(0).ok().flatten())
        .unwrap_or(0))
}
