//! A small blocking connection pool: connections are opened on demand up to a limit and
//! handed back on drop; a broken connection is dropped instead.

use super::{Conn, DatabaseUrl};
use crate::error::{Result, ServiceError};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub struct Pool {
    url: DatabaseUrl,
    max: usize,
    state: Mutex<State>,
    returned: Condvar,
}

struct State {
    idle: Vec<Box<dyn Conn>>,
    open: usize,
}

impl Pool {
    pub fn new(url: DatabaseUrl, max: usize) -> Arc<Pool> {
        Arc::new(Pool {
            url,
            max: max.max(1),
            state: Mutex::new(State {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A connection, waiting up to `wait` for one to come free.
    pub fn get_timeout(self: &Arc<Self>, wait: Duration) -> Result<Pooled> {
        let deadline = std::time::Instant::now() + wait;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(Pooled {
                    conn: Some(conn),
                    pool: self.clone(),
                });
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return match self.url.connect() {
                    Ok(conn) => Ok(Pooled {
                        conn: Some(conn),
                        pool: self.clone(),
                    }),
                    Err(e) => {
                        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                        state.open -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(ServiceError::unavailable(
                    "all database connections are busy",
                ));
            }
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn get(self: &Arc<Self>) -> Result<Pooled> {
        self.get_timeout(Duration::from_secs(10))
    }
}

/// A connection on loan from the pool.
pub struct Pooled {
    conn: Option<Box<dyn Conn>>,
    pool: Arc<Pool>,
}

impl Deref for Pooled {
    type Target = dyn Conn;
    fn deref(&self) -> &(dyn Conn + 'static) {
        self.conn.as_deref().expect("present until drop")
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut (dyn Conn + 'static) {
        self.conn.as_deref_mut().expect("present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let mut state = self.pool.state.lock().unwrap_or_else(|p| p.into_inner());
        if conn.is_broken() {
            state.open -= 1;
        } else {
            state.idle.push(conn);
        }
        self.pool.returned.notify_one();
    }
}
