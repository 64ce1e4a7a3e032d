//! The connection pool: r2d2 over [`Conn`]. A connection is validated (`SELECT 1`) each time
//! it is handed out, so one the database or a proxy closed while it sat idle is replaced, never
//! given to a request; each is closed when it comes back after its lifetime
//! ([`MAX_LIFETIME`] by default: a failed-over database, rotated credentials and server-side
//! memory are picked up), and r2d2's reaper closes idle ones past it or [`IDLE_TIMEOUT`]
//! unused; one that is broken (a transaction left open, the socket closed) is dropped instead
//! of returned.

use super::{Conn, DatabaseUrl};
use crate::error::{Result, ServiceError};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

/// How long one connection is used before it is closed and replaced.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// How long an unused connection stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct Pool {
    url: DatabaseUrl,
    inner: r2d2::Pool<Connector>,
}

/// Opens, validates and judges connections for r2d2.
#[derive(Debug)]
struct Connector {
    url: DatabaseUrl,
    lifetime: Duration,
}

/// A connection and when it was opened.
struct Aged {
    conn: Box<dyn Conn>,
    opened: std::time::Instant,
}

impl r2d2::ManageConnection for Connector {
    type Connection = Aged;
    type Error = ServiceError;

    fn connect(&self) -> Result<Aged> {
        Ok(Aged {
            conn: self.url.connect()?,
            opened: std::time::Instant::now(),
        })
    }

    fn is_valid(&self, aged: &mut Aged) -> Result<()> {
        aged.conn.batch("SELECT 1")
    }

    fn has_broken(&self, aged: &mut Aged) -> bool {
        aged.conn.is_broken() || aged.opened.elapsed() >= self.lifetime
    }
}

/// r2d2 reports a failed connection attempt here; the request that waits for it gets
/// `unavailable` with the same cause in the log.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<ServiceError> for LogErrors {
    fn handle_error(&self, error: ServiceError) {
        tracing::warn!("database connection failed: {error}");
    }
}

impl Pool {
    /// A pool of at most `max` connections, opened on demand, each used for [`MAX_LIFETIME`].
    pub fn new(url: DatabaseUrl, max: usize) -> Arc<Pool> {
        Pool::with_lifetime(url, max, MAX_LIFETIME)
    }

    /// A pool whose connections are each used for `lifetime`.
    pub fn with_lifetime(url: DatabaseUrl, max: usize, lifetime: Duration) -> Arc<Pool> {
        let max = u32::try_from(max.max(1)).unwrap_or(u32::MAX);
        let inner = r2d2::Pool::builder()
            .max_size(max)
            .min_idle(Some(0))
            .test_on_check_out(true)
            .max_lifetime(Some(lifetime))
            .idle_timeout(Some(IDLE_TIMEOUT))
            .connection_timeout(Duration::from_secs(10))
            .error_handler(Box::new(LogErrors))
            .build_unchecked(Connector {
                url: url.clone(),
                lifetime,
            });
        Arc::new(Pool { url, inner })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A connection, waiting up to `wait` for one to come free (or to be opened).
    pub fn get_timeout(self: &Arc<Self>, wait: Duration) -> Result<Pooled> {
        self.inner
            .get_timeout(wait)
            .map(Pooled)
            .map_err(|e| ServiceError {
                internal: Some(format!("no database connection within {wait:?}: {e}")),
                ..ServiceError::unavailable("all database connections are busy")
            })
    }

    pub fn get(self: &Arc<Self>) -> Result<Pooled> {
        self.get_timeout(Duration::from_secs(10))
    }

    /// Connections open now, and how many of them are idle.
    pub fn size(&self) -> (u32, u32) {
        let s = self.inner.state();
        (s.connections, s.idle_connections)
    }
}

/// A connection on loan from the pool.
pub struct Pooled(r2d2::PooledConnection<Connector>);

impl Deref for Pooled {
    type Target = dyn Conn;
    fn deref(&self) -> &(dyn Conn + 'static) {
        &*self.0.conn
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut (dyn Conn + 'static) {
        &mut *self.0.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_connection_is_not_handed_out_again() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("pool.db"));
        let pool = Pool::new(url, 2);
        {
            let mut conn = pool.get().unwrap();
            conn.begin().unwrap();
            // Dropped inside a transaction: broken, closed rather than returned.
        }
        let mut conn = pool.get().unwrap();
        assert!(!conn.is_broken());
        conn.begin().unwrap();
        conn.rollback().unwrap();
        drop(conn);
        assert_eq!(pool.size(), (1, 1));
    }

    #[test]
    fn a_connection_past_its_lifetime_is_closed_when_it_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("pool.db"));
        let pool = Pool::with_lifetime(url, 2, Duration::from_millis(100));
        drop(pool.get().unwrap());
        assert_eq!(pool.size(), (1, 1), "a young connection is kept");
        let conn = pool.get().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        drop(conn);
        assert_eq!(pool.size(), (0, 0), "an old one is closed");
    }

    #[test]
    fn a_full_pool_answers_unavailable_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new(DatabaseUrl::Sqlite(dir.path().join("pool.db")), 1);
        let held = pool.get().unwrap();
        let started = std::time::Instant::now();
        let err = pool.get_timeout(Duration::from_millis(200)).err().unwrap();
        assert_eq!(err.code, crate::ErrorCode::Unavailable);
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        pool.get_timeout(Duration::from_secs(2)).unwrap();
    }
}
