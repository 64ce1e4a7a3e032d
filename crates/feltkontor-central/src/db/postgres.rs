//! PostgreSQL through the synchronous `postgres` client. Parameters are typed from the
//! prepared statement, so a `NULL` binds as whatever type its column has.

use super::{Conn, Engine, Row, Value};
use crate::error::{Result, ServiceError};
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

pub struct PgConn {
    client: Client,
    in_tx: bool,
    /// Prepared statements by SQL text: each statement is parsed once per connection.
    statements: std::collections::HashMap<String, postgres::Statement>,
}

fn err(e: postgres::Error) -> ServiceError {
    use postgres::error::SqlState;
    match e.code() {
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            ServiceError::unavailable("the database is busy")
        }
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
            ServiceError::conflict_internal(format!("postgres constraint: {e}"))
        }
        // Row-level security refused a row: the checks before it should have; never data.
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => ServiceError::new(
            crate::ErrorCode::Forbidden,
            "The change concerns data outside the worker's cases.",
        ),
        _ if e.is_closed() => ServiceError::unavailable("the database connection was lost"),
        // The SQL state and the server's message (which names the rule, e.g. a missing
        // grant), never the DETAIL line, which may quote row values.
        _ => match e.as_db_error() {
            Some(db) => {
                ServiceError::internal(format!("postgres {}: {}", db.code().code(), db.message()))
            }
            None => ServiceError::internal(format!("postgres: {e}")),
        },
    }
}

fn bind<'a>(values: &'a [Value], types: &[Type]) -> Result<Vec<Box<dyn ToSql + Sync + 'a>>> {
    let mut storage: Vec<Box<dyn ToSql + Sync + 'a>> = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let ty = types.get(i).ok_or_else(|| {
            ServiceError::internal(format!(
                "statement takes {} parameters, given {}",
                types.len(),
                values.len()
            ))
        })?;
        let boxed: Box<dyn ToSql + Sync + 'a> = match (v, ty) {
            (Value::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
            (Value::Null, t) if *t == Type::INT4 => Box::new(None::<i32>),
            (Value::Null, t) if *t == Type::BYTEA => Box::new(None::<Vec<u8>>),
            (Value::Null, _) => Box::new(None::<String>),
            (Value::Int(n), t) if *t == Type::INT4 => Box::new(
                i32::try_from(*n).map_err(|_| ServiceError::internal("integer out of range"))?,
            ),
            (Value::Int(n), t) if *t == Type::TEXT => Box::new(n.to_string()),
            (Value::Int(n), _) => Box::new(*n),
            (Value::Text(s), _) => Box::new(s.as_str()),
            (Value::Bytes(b), _) => Box::new(b.as_slice()),
        };
        storage.push(boxed);
    }
    Ok(storage)
}

fn read(row: &postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let v = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)
                .map(|v| v.map_or(Value::Null, Value::Int))
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)
                .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into())))
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)
                .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into())))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)
                .map(|v| v.map_or(Value::Null, |v| Value::Int(v.into())))
        } else if *t == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)
                .map(|v| v.map_or(Value::Null, Value::Bytes))
        } else {
            row.try_get::<_, Option<String>>(i)
                .map(|v| v.map_or(Value::Null, Value::Text))
        };
        out.push(v.map_err(|e| ServiceError::internal(format!("column {}: {e}", col.name())))?);
    }
    Ok(Row(out))
}

impl PgConn {
    pub fn open(url: &str) -> Result<PgConn> {
        let client = Client::connect(url, NoTls).map_err(|e| {
            ServiceError::unavailable_because(format!("cannot connect to PostgreSQL: {e}"))
        })?;
        Ok(PgConn {
            client,
            in_tx: false,
            statements: std::collections::HashMap::new(),
        })
    }

    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(sql).map_err(err)?;
        if self.statements.len() > 256 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    fn run(&mut self, sql: &str, params: &[Value]) -> Result<Vec<postgres::Row>> {
        let stmt = self.prepare(sql)?;
        let storage = bind(params, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = storage
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.client.query(&stmt, &refs).map_err(err)
    }
}

impl Conn for PgConn {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        super::check_params(params)?;
        let stmt = self.prepare(sql)?;
        let storage = bind(params, stmt.params())?;
        let refs: Vec<&(dyn ToSql + Sync)> = storage
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect();
        self.client.execute(&stmt, &refs).map_err(err)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        super::check_params(params)?;
        self.run(sql, params)?.iter().map(read).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).map_err(err)
    }

    fn begin(&mut self) -> Result<()> {
        self.client.batch_execute("BEGIN").map_err(err)?;
        self.in_tx = true;
        Ok(())
    }

    fn begin_read(&mut self) -> Result<()> {
        self.client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .map_err(err)?;
        self.in_tx = true;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        let r = self.client.batch_execute("COMMIT").map_err(err);
        self.in_tx = false;
        r
    }

    fn rollback(&mut self) -> Result<()> {
        let r = self.client.batch_execute("ROLLBACK").map_err(err);
        self.in_tx = false;
        r
    }

    fn set_worker(&mut self, staff_id: Option<uuid::Uuid>) -> Result<()> {
        let id = staff_id.map(|s| s.to_string()).unwrap_or_default();
        self.client
            .execute("SELECT set_config('feltkontor.worker', $1, true)", &[&id])
            .map_err(err)?;
        Ok(())
    }

    fn is_broken(&self) -> bool {
        self.in_tx || self.client.is_closed()
    }
}
