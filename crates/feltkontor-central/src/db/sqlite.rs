//! SQLite through rusqlite: WAL, full sync (an acknowledged write survives power loss), a busy
//! timeout so writers queue, foreign keys on.

use super::{Conn, Engine, Row, Value};
use crate::error::{Result, ServiceError};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ToSql;
use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

pub struct SqliteConn {
    conn: rusqlite::Connection,
    broken: bool,
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn err(e: rusqlite::Error) -> ServiceError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::DatabaseBusy
                || f.code == rusqlite::ErrorCode::DatabaseLocked =>
        {
            ServiceError::unavailable("the database is busy")
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            ServiceError::conflict_internal(format!("sqlite constraint: {e}"))
        }
        _ => ServiceError::internal(format!("sqlite: {e}")),
    }
}

/// `$1` → `?1`: the statements are written once in PostgreSQL's placeholder style.
fn placeholders(sql: &str) -> Cow<'_, str> {
    if sql.contains('$') {
        Cow::Owned(sql.replace('$', "?"))
    } else {
        Cow::Borrowed(sql)
    }
}

impl SqliteConn {
    pub fn open(path: &Path) -> Result<SqliteConn> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                ServiceError::internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -32768; PRAGMA mmap_size = 1073741824;",
        )
        .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteConn {
            conn,
            broken: false,
        })
    }

    fn read_row(row: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Int(v as i64),
                ValueRef::Text(t) => Value::Text(match std::str::from_utf8(t) {
                    Ok(t) => t.to_owned(),
                    Err(_) => String::from_utf8_lossy(t).into_owned(),
                }),
                ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
            });
        }
        Ok(Row(values))
    }
}

impl Conn for SqliteConn {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        super::check_params(params)?;
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).map_err(err)?;
        let n = stmt
            .execute(rusqlite::params_from_iter(params.iter()))
            .map_err(err)?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        super::check_params(params)?;
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).map_err(err)?;
        let n = stmt.column_count();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                Self::read_row(r, n)
            })
            .map_err(err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(err)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(err)
    }

    fn begin(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err)
    }

    fn begin_read(&mut self) -> Result<()> {
        self.conn.execute_batch("BEGIN DEFERRED").map_err(err)
    }

    fn commit(&mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT").map_err(|e| {
            self.broken = !self.conn.is_autocommit();
            err(e)
        })
    }

    fn rollback(&mut self) -> Result<()> {
        self.conn.execute_batch("ROLLBACK").map_err(|e| {
            self.broken = !self.conn.is_autocommit();
            err(e)
        })
    }

    fn set_worker(&mut self, _staff_id: Option<uuid::Uuid>) -> Result<()> {
        Ok(())
    }

    fn is_broken(&self) -> bool {
        self.broken || !self.conn.is_autocommit()
    }
}
