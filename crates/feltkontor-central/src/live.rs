//! Live updates across instances: what a write touched, told to every instance.
//!
//! A push (or an accepted quarantined note, or an admin change) knows which buckets it wrote:
//! the cases, and whether the team's reference data changed; and whose scope it may have
//! widened (a participant added, a case's coordinator). On PostgreSQL the write's own
//! transaction sends it with `NOTIFY` ([`notify`]: delivered at commit, dropped on rollback) and
//! every instance hears it on one listening connection ([`listen`]); on SQLite (one instance)
//! the server hands it to its own waiting devices. A waiting device is woken only when a change
//! touched a case in its worker's scope, the worker's own scope, or the reference data.

use crate::db::{Conn, Engine};
use crate::error::{Result, ServiceError};
use crate::params;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use uuid::Uuid;

/// The channel every instance listens on.
pub const CHANNEL: &str = "feltkontor_changes";
/// PostgreSQL refuses a payload of 8,000 bytes or more; a larger change wakes everyone.
const MAX_PAYLOAD: usize = 7_000;

/// What a write touched.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touched {
    /// Cases whose bucket changed.
    #[serde(rename = "c", default, skip_serializing_if = "BTreeSet::is_empty")]
    pub cases: BTreeSet<Uuid>,
    /// Staff whose scope may have changed (a participant, a case's coordinator).
    #[serde(rename = "s", default, skip_serializing_if = "BTreeSet::is_empty")]
    pub staff: BTreeSet<Uuid>,
    /// The team's reference data changed, or too much to list: every device is woken.
    #[serde(rename = "a", default, skip_serializing_if = "std::ops::Not::not")]
    pub everyone: bool,
}

impl Touched {
    pub fn everyone() -> Touched {
        Touched {
            everyone: true,
            ..Default::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cases.is_empty() && self.staff.is_empty() && !self.everyone
    }

    pub fn add(&mut self, other: &Touched) {
        self.cases.extend(other.cases.iter().copied());
        self.staff.extend(other.staff.iter().copied());
        self.everyone |= other.everyone;
    }

    /// Whether a worker with these cases in scope should hear of it.
    pub fn concerns(&self, staff: Uuid, scope: &std::collections::HashSet<Uuid>) -> bool {
        self.everyone || self.staff.contains(&staff) || self.cases.iter().any(|c| scope.contains(c))
    }

    /// `self` in parts of at most 100 ids each.
    pub fn parts(&self) -> Vec<Touched> {
        if self.everyone {
            return vec![Touched::everyone()];
        }
        let ids: Vec<(bool, Uuid)> = self
            .cases
            .iter()
            .map(|c| (true, *c))
            .chain(self.staff.iter().map(|s| (false, *s)))
            .collect();
        ids.chunks(100)
            .map(|chunk| Touched {
                cases: chunk
                    .iter()
                    .filter(|(c, _)| *c)
                    .map(|(_, id)| *id)
                    .collect(),
                staff: chunk
                    .iter()
                    .filter(|(c, _)| !*c)
                    .map(|(_, id)| *id)
                    .collect(),
                everyone: false,
            })
            .collect()
    }

    /// The payload of a notification: JSON, or "everyone" when too long to send.
    pub fn payload(&self) -> String {
        let text = serde_json::to_string(self).unwrap_or_default();
        if text.len() > MAX_PAYLOAD || text.is_empty() {
            serde_json::to_string(&Touched::everyone()).unwrap_or_default()
        } else {
            text
        }
    }

    /// A notification's payload; one that cannot be read wakes everyone (it is ours, so a
    /// reading error means a newer instance wrote it).
    pub fn from_payload(payload: &str) -> Touched {
        serde_json::from_str(payload).unwrap_or_else(|_| Touched::everyone())
    }
}

/// Tells every instance, at the commit of the caller's transaction (PostgreSQL). On SQLite it
/// does nothing: the one instance hands `touched` to its devices itself.
pub fn notify(conn: &mut dyn Conn, touched: &Touched) -> Result<()> {
    if touched.is_empty() || conn.engine() != Engine::Postgres {
        return Ok(());
    }
    // In parts that fit a notification: a push that touched many cases wakes the devices of
    // those cases, not every device.
    for part in touched.parts() {
        conn.execute("SELECT pg_notify($1, $2)", params![CHANNEL, part.payload()])?;
    }
    Ok(())
}

/// Listens on PostgreSQL at `url` and hands every notification to `heard` until the
/// connection fails (then returns the error; the caller connects again, and should wake every
/// device, since notifications sent meanwhile are lost).
/// `listening` is called once the connection listens (from then on nothing is missed).
pub fn listen(url: &str, listening: impl FnOnce(), mut heard: impl FnMut(Touched)) -> Result<()> {
    let mut conn = crate::db::postgres::PgConn::open_listening(url)?;
    conn.listen(CHANNEL, listening, &mut |payload| {
        heard(Touched::from_payload(payload))
    })
    .map_err(|e| ServiceError::unavailable_because(format!("listening for changes: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_change_is_told_in_parts_never_as_everyone() {
        let t = Touched {
            cases: (0..250).map(|_| Uuid::now_v7()).collect(),
            staff: (0..3).map(|_| Uuid::now_v7()).collect(),
            everyone: false,
        };
        let parts = t.parts();
        assert_eq!(parts.len(), 3);
        let mut back = Touched::default();
        for p in &parts {
            assert!(p.payload().len() < MAX_PAYLOAD);
            let read = Touched::from_payload(&p.payload());
            assert!(!read.everyone);
            back.add(&read);
        }
        assert_eq!(back, t);
        assert_eq!(Touched::from_payload("not json"), Touched::everyone());
    }
}
