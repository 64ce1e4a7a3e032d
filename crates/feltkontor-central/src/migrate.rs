//! Schema migrations per engine, embedded in the binary (`migrations/server/{sqlite,postgres}`).

use crate::db::{Conn, Engine};
use crate::error::{Result, ServiceError};
use crate::params;

struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../../../migrations/server/sqlite/0001_initial.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../../../migrations/server/sqlite/0002_sync.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0002_sync.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../../../migrations/server/sqlite/0003_quarantine.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0003_quarantine.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("../../../migrations/server/sqlite/0004_lease.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0004_lease.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../../../migrations/server/sqlite/0005_access_and_quarantine.sql"),
        postgres: include_str!(
            "../../../migrations/server/postgres/0005_access_and_quarantine.sql"
        ),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../../../migrations/server/sqlite/0006_records_by_kind.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0006_records_by_kind.sql"),
    },
    Migration {
        version: 7,
        sqlite: include_str!("../../../migrations/server/sqlite/0007_quarantine_waiting.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0007_quarantine_waiting.sql"),
    },
    Migration {
        version: 8,
        sqlite: include_str!("../../../migrations/server/sqlite/0008_record_ids.sql"),
        postgres: include_str!("../../../migrations/server/postgres/0008_record_ids.sql"),
    },
];

/// The schema version this build expects.
pub const LATEST: i64 = 8;

/// Applies every migration not yet applied, each in its own transaction. On PostgreSQL an
/// advisory lock keeps two instances started at once from migrating together.
pub fn run(conn: &mut dyn Conn) -> Result<u32> {
    let engine = conn.engine();
    if engine == Engine::Postgres {
        conn.batch("SELECT pg_advisory_lock(72707271)")?;
    }
    let result = apply(conn, engine);
    if engine == Engine::Postgres {
        let _ = conn.batch("SELECT pg_advisory_unlock(72707271)");
    }
    result
}

fn apply(conn: &mut dyn Conn, engine: Engine) -> Result<u32> {
    conn.batch("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    let current = current_version(conn)?;
    if current > LATEST {
        return Err(ServiceError::internal(format!(
            "the database has schema version {current}, newer than this server ({LATEST}): upgrade the server"
        )));
    }
    let mut applied = 0;
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        conn.begin()?;
        let sql = match engine {
            Engine::Sqlite => m.sqlite,
            Engine::Postgres => m.postgres,
        };
        let r = conn.batch(sql).and_then(|()| {
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                params![m.version, crate::now_ms()],
            )
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
    if applied > 0 {
        crate::identity::ensure_signing_key(conn)?;
    }
    Ok(applied)
}

pub fn current_version(conn: &mut dyn Conn) -> Result<i64> {
    Ok(conn
        .query_one("SELECT MAX(version) FROM schema_migrations", params![])?
        .and_then(|r| r.opt_int(0).ok().flatten())
        .unwrap_or(0))
}
