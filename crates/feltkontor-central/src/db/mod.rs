//! One small SQL interface over two engines: SQLite (rusqlite, the embedded default) and
//! PostgreSQL (the `postgres` crate, for production). Everything above this module is written
//! once against [`Conn`]: statements use `$1, $2, …` placeholders and only the column types
//! both engines share (`TEXT`, `BIGINT`, `BYTEA`/`BLOB`), so the same code behaves the same on
//! both. The library is synchronous; the HTTP layer runs it on blocking threads.

pub mod pool;
pub(crate) mod postgres;
mod sqlite;

pub use pool::{Pool, Pooled};

use crate::error::{Result, ServiceError};
use std::fmt;

/// A parameter or column value.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl fmt::Debug for Value {
    // Values are personal data: a diagnostic never shows their content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Int(_) => f.write_str("<int>"),
            Value::Text(s) => write!(f, "<text {}>", s.len()),
            Value::Bytes(b) => write!(f, "<bytes {}>", b.len()),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<uuid::Uuid> for Value {
    fn from(v: uuid::Uuid) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Refuses text holding the NUL character, the same way on both engines (PostgreSQL cannot
/// store it; SQLite could): a clear `invalid_input`, never a database error.
pub(crate) fn check_params(params: &[Value]) -> Result<()> {
    if params
        .iter()
        .any(|p| matches!(p, Value::Text(s) if s.as_bytes().contains(&0)))
    {
        return Err(ServiceError::invalid(
            "text",
            "Text must not contain the NUL character (U+0000).",
        ));
    }
    Ok(())
}

/// Parameters: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { &[$($crate::db::Value::from($v)),*][..] };
}

/// A result row.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn bad(&self, i: usize, want: &str) -> ServiceError {
        ServiceError::internal(format!(
            "column {i}: expected {want}, found {:?}",
            self.0.get(i)
        ))
    }

    pub fn text(&self, i: usize) -> Result<String> {
        match self.0.get(i) {
            Some(Value::Text(s)) => Ok(s.clone()),
            _ => Err(self.bad(i, "text")),
        }
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s.clone())),
            _ => Err(self.bad(i, "text or null")),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64> {
        match self.0.get(i) {
            Some(Value::Int(v)) => Ok(*v),
            _ => Err(self.bad(i, "integer")),
        }
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        match self.0.get(i) {
            Some(Value::Null) => Ok(None),
            Some(Value::Int(v)) => Ok(Some(*v)),
            _ => Err(self.bad(i, "integer or null")),
        }
    }

    pub fn bytes(&self, i: usize) -> Result<Vec<u8>> {
        match self.0.get(i) {
            Some(Value::Bytes(b)) => Ok(b.clone()),
            _ => Err(self.bad(i, "bytes")),
        }
    }

    pub fn uuid(&self, i: usize) -> Result<uuid::Uuid> {
        self.text(i)?.parse().map_err(|_| self.bad(i, "a UUID"))
    }
}

/// Which engine a connection talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        })
    }
}

/// A database connection. Statements use `$1, $2, …`.
pub trait Conn: Send {
    fn engine(&self) -> Engine;
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
    /// Several statements without parameters (migrations).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue instead of
    /// failing on upgrade).
    fn begin(&mut self) -> Result<()>;
    /// Starts a read-only transaction: one consistent snapshot, no write lock (SQLite readers
    /// run alongside the writer in WAL mode).
    fn begin_read(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;
    /// Tells the database which worker the transaction acts for. PostgreSQL's row-level
    /// security policies key on it; SQLite has no such layer and ignores it.
    fn set_worker(&mut self, staff_id: Option<uuid::Uuid>) -> Result<()>;
    /// Whether the connection is still usable (checked before it returns to the pool).
    fn is_broken(&self) -> bool;

    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// Where the data lives: `sqlite:PATH` or `postgres://…`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            DatabaseUrl::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("sqlite: needs a file path, e.g. sqlite:data/central.db".into());
            }
            Ok(DatabaseUrl::Sqlite(path.into()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else {
            Err(format!(
                "unknown database URL {:?}: use sqlite:PATH or postgres://…",
                s.split(':').next().unwrap_or("")
            ))
        }
    }
}

impl DatabaseUrl {
    pub fn engine(&self) -> Engine {
        match self {
            DatabaseUrl::Sqlite(_) => Engine::Sqlite,
            DatabaseUrl::Postgres(_) => Engine::Postgres,
        }
    }

    /// Opens one connection.
    pub fn connect(&self) -> Result<Box<dyn Conn>> {
        match self {
            DatabaseUrl::Sqlite(path) => Ok(Box::new(sqlite::SqliteConn::open(path)?)),
            DatabaseUrl::Postgres(url) => Ok(Box::new(postgres::PgConn::open(url)?)),
        }
    }

    /// Brings the schema up to date. On PostgreSQL this must run as the tables' owner; it
    /// also creates the role the server runs as (`feltkontor_app`), which is neither owner nor
    /// superuser, so row-level security applies to it.
    pub fn migrate(&self) -> Result<u32> {
        let mut conn = self.connect()?;
        crate::migrate::run(conn.as_mut())
    }
}

/// Runs `f` in a write transaction; commits on `Ok`, rolls back on `Err`.
pub fn transaction<T>(
    conn: &mut dyn Conn,
    worker: Option<uuid::Uuid>,
    f: impl FnOnce(&mut dyn Conn) -> Result<T>,
) -> Result<T> {
    conn.begin()?;
    finish(conn, worker, f)
}

/// Runs `f` in a read-only transaction.
pub fn read_transaction<T>(
    conn: &mut dyn Conn,
    worker: Option<uuid::Uuid>,
    f: impl FnOnce(&mut dyn Conn) -> Result<T>,
) -> Result<T> {
    conn.begin_read()?;
    finish(conn, worker, f)
}

fn finish<T>(
    conn: &mut dyn Conn,
    worker: Option<uuid::Uuid>,
    f: impl FnOnce(&mut dyn Conn) -> Result<T>,
) -> Result<T> {
    let result = conn.set_worker(worker).and_then(|()| f(conn));
    match result {
        Ok(v) => {
            conn.commit()?;
            Ok(v)
        }
        Err(e) => {
            // The transaction's error is the one that matters; a failed rollback marks the
            // connection broken and the pool drops it.
            let _ = conn.rollback();
            Err(e)
        }
    }
}
