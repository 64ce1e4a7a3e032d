//! PostgreSQL through the synchronous `postgres` client. Parameters are typed from the
//! prepared statement, so a `NULL` binds as whatever type its column has.

use super::{Conn, Engine, Row, Value};
use crate::error::{Result, ServiceError};
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};
use std::sync::Arc;

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
        // The connection was ended (an administrator, a restart, a failover: class 57) or lost
        // (class 08): a retry on a fresh connection can succeed.
        Some(c) if c.code().starts_with("57") || c.code().starts_with("08") => {
            ServiceError::unavailable_because(format!("postgres {}: {}", c.code(), e))
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
        // The socket failed under the statement (the backend was ended, the network broke).
        _ if std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()) => {
            ServiceError::unavailable_because(format!("postgres: {}", with_causes(&e)))
        }
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
        Self::open_with(url, |_| {})
    }

    /// A connection that waits for notifications: a peer gone silently (a dropped network path,
    /// a proxy) is found by TCP keep-alives and a user timeout within about 30 s, not after the
    /// kernel's quarter of an hour.
    pub fn open_listening(url: &str) -> Result<PgConn> {
        Self::open_with(url, |c| {
            c.keepalives(true)
                .keepalives_idle(std::time::Duration::from_secs(10))
                .keepalives_interval(std::time::Duration::from_secs(5))
                .keepalives_retries(3)
                .tcp_user_timeout(std::time::Duration::from_secs(30));
        })
    }

    fn open_with(url: &str, tune: impl FnOnce(&mut postgres::Config)) -> Result<PgConn> {
        let mut target = PgTarget::parse(url).map_err(ServiceError::unavailable_because)?;
        tune(&mut target.config);
        let connected = match &target.tls {
            None => target.config.connect(NoTls),
            Some(tls) => target.config.connect(tls.clone()),
        };
        let client = connected.map_err(|e| {
            ServiceError::unavailable_because(format!(
                "cannot connect to PostgreSQL: {}",
                with_causes(&e)
            ))
        })?;
        Ok(PgConn {
            client,
            in_tx: false,
            statements: std::collections::HashMap::new(),
        })
    }

    /// `LISTEN channel`, then hands each notification's payload to `heard` as it arrives,
    /// until the connection fails. A keep-alive query every 30 s finds a connection a proxy or
    /// the server dropped silently.
    pub fn listen(
        &mut self,
        channel: &str,
        listening: impl FnOnce(),
        heard: &mut dyn FnMut(&str),
    ) -> std::result::Result<(), String> {
        use postgres::fallible_iterator::FallibleIterator;
        self.client
            .batch_execute(&format!("LISTEN {channel}"))
            .map_err(|e| with_causes(&e))?;
        listening();
        loop {
            let mut notes = self.client.notifications();
            let mut iter = notes.timeout_iter(std::time::Duration::from_secs(30));
            loop {
                match iter.next() {
                    Ok(Some(n)) => heard(n.payload()),
                    Ok(None) => break,
                    Err(e) => return Err(with_causes(&e)),
                }
            }
            drop(iter);
            drop(notes);
            self.client
                .batch_execute("SELECT 1")
                .map_err(|e| with_causes(&e))?;
        }
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
        // Write transactions run one at a time, as SQLite's `BEGIN IMMEDIATE` makes them: a
        // merge reads a record, checks the rules against what it read and writes the record
        // back whole, so two concurrent writes of one record (or of a case and a record its
        // rules look at) must not interleave under READ COMMITTED. Without this a teammate's
        // concurrent edit could write back a case the coordinator had just closed as open.
        // The transaction-scoped advisory lock is released at COMMIT or ROLLBACK.
        self.client
            .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7270727201)")
            .map_err(err)?;
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

/// An error with the causes under it (`db error: FATAL: … rejects connection …`, `error
/// performing TLS handshake: invalid peer certificate: UnknownIssuer`): what failed at connecting
/// names the setting to fix, never row data.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Where and how to reach PostgreSQL: the URL's settings, with TLS decided by
/// [`PgTarget::parse`].
pub(crate) struct PgTarget {
    config: postgres::Config,
    /// `None`: plain TCP or a Unix socket, only ever to this machine.
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

/// How a URL asks for TLS (`sslmode`, named as libpq names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SslMode {
    /// No `sslmode` (or `prefer`): plain to this machine, verified TLS to any other.
    Default,
    Disable,
    /// `require`, `verify-ca` or `verify-full`: TLS, always with the chain and the host name
    /// verified (stricter than libpq's `require`: an unverified database is never used).
    Verified,
}

impl PgTarget {
    /// Reads a `postgres://` URL. Beyond what the `postgres` client reads itself: `sslmode`
    /// (`disable`, `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM
    /// file of the CA certificates to trust, or `system` for the machine's store, the default).
    /// A database on another host is only ever reached over TLS whose certificate is verified
    /// for that host name: data of children's cases never cross a network in clear, nor to a
    /// database that is not the one named.
    pub(crate) fn parse(url: &str) -> std::result::Result<PgTarget, String> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut mode = SslMode::Default;
        let mut root_cert: Option<String> = None;
        let mut rest = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "sslmode" => {
                    mode = match value {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Default,
                        "require" | "verify-ca" | "verify-full" => SslMode::Verified,
                        other => {
                            return Err(format!(
                                "sslmode={other} is not known: use verify-full (TLS, certificate checked), or disable for a database on this machine"
                            ))
                        }
                    }
                }
                "sslrootcert" => root_cert = Some(percent_decode(value)?),
                _ => rest.push(pair),
            }
        }
        let plain = if rest.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", rest.join("&"))
        };
        let mut config: postgres::Config = plain
            .parse()
            .map_err(|e| format!("the PostgreSQL URL is not valid: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        let local = config.get_hosts().iter().all(is_this_machine);
        let tls = match (mode, local) {
            (SslMode::Disable | SslMode::Default, true) => false,
            (SslMode::Disable, false) => {
                return Err("PostgreSQL on another host is only reached over TLS: remove sslmode=disable (or set sslmode=verify-full and sslrootcert=PATH of the database's CA)".into())
            }
            (SslMode::Default | SslMode::Verified, _) => true,
        };
        let tls = if tls {
            config.ssl_mode(postgres::config::SslMode::Require);
            Some(connector(root_cert.as_deref())?)
        } else {
            config.ssl_mode(postgres::config::SslMode::Disable);
            None
        };
        Ok(PgTarget { config, tls })
    }

    /// Whether connections are made over TLS.
    #[cfg(test)]
    fn encrypted(&self) -> bool {
        self.tls.is_some()
    }
}

fn is_this_machine(host: &postgres::config::Host) -> bool {
    match host {
        postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        postgres::config::Host::Unix(_) => true,
    }
}

fn percent_decode(value: &str) -> std::result::Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("sslrootcert has a malformed %-escape")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "sslrootcert is not UTF-8".into())
}

/// TLS that verifies the database's certificate chain against `root_cert` (a PEM file; the
/// machine's store when `None` or `system`) and its name against the host connected to.
fn connector(
    root_cert: Option<&str>,
) -> std::result::Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match root_cert {
        Some(path) if path != "system" => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert {path}: cannot read the CA certificates: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert {path} holds no CA certificate"));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err("no CA certificates in the machine's store: give the database's CA with sslrootcert=PATH".into());
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_host_is_only_reached_over_verified_tls() {
        let local = PgTarget::parse("postgres://app@127.0.0.1:5432/db").unwrap();
        assert!(!local.encrypted());
        let local = PgTarget::parse("postgres://app@localhost/db?sslmode=disable").unwrap();
        assert!(!local.encrypted());
        let err = PgTarget::parse("postgres://app@db.internal/db?sslmode=disable")
            .err()
            .unwrap();
        assert!(err.contains("only reached over TLS"), "{err}");
        let err = PgTarget::parse("postgres://app@10.0.0.5/db?sslmode=allow")
            .err()
            .unwrap();
        assert!(err.contains("sslmode=allow is not known"), "{err}");
        let err = PgTarget::parse(
            "postgres://app@db.internal/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .err()
        .unwrap();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        // `require` is verified as strictly as `verify-full`; to this machine too when asked.
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = PgTarget::parse(&format!(
            "postgres://app@127.0.0.1/db?sslmode=require&sslrootcert={}",
            empty.display()
        ))
        .err()
        .unwrap();
        assert!(err.contains("holds no CA certificate"), "{err}");
        let err = PgTarget::parse("postgres://app@db.internal/db?sslcompression=1")
            .err()
            .unwrap();
        assert!(err.contains("not valid"), "{err}");
    }
}
