//! The local access log: every opening of a case or a person, every search (with its
//! criterion) and every export is recorded in the encrypted store; sync uploads the entries.

use super::Store;
use crate::error::{Error, Result};
use feltkontor_wire::{AccessAction, CaseId, DeviceId, PersonId, RowId, StaffId};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    pub id: RowId,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub worker_id: StaffId,
    pub device_id: DeviceId,
    pub action: AccessAction,
    pub case_id: Option<CaseId>,
    pub person_id: Option<PersonId>,
    /// The search criterion, for searches.
    pub criterion: Option<String>,
}

impl AccessEntry {
    /// The entry as it is uploaded to the central service (a criterion cut to the length the
    /// service accepts).
    pub fn to_record(&self) -> feltkontor_wire::sync::AccessRecord {
        feltkontor_wire::sync::AccessRecord {
            id: self.id.0,
            at_ms: (self.at.unix_timestamp_nanos() / 1_000_000) as i64,
            worker: self.worker_id.0,
            device: self.device_id.0,
            action: self.action,
            case_id: self.case_id.map(|c| c.0),
            person_id: self.person_id.map(|p| p.0),
            criterion: self.criterion.as_ref().map(|c| {
                c.chars()
                    .take(feltkontor_wire::sync::MAX_CRITERION_CHARS)
                    .collect()
            }),
        }
    }
}

pub(crate) fn insert(conn: &Connection, e: &AccessEntry) -> Result<()> {
    let at =
        e.at.format(&time::format_description::well_known::Rfc3339)
            .map_err(|x| Error::Corrupt(x.to_string()))?;
    conn.prepare_cached(
        "INSERT INTO access_log (id, at, worker_id, device_id, action, case_id, person_id, criterion)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        e.id.to_string(),
        at,
        e.worker_id.to_string(),
        e.device_id.to_string(),
        e.action.as_str(),
        e.case_id.map(|c| c.to_string()),
        e.person_id.map(|p| p.to_string()),
        e.criterion,
    ])?;
    Ok(())
}

impl Store {
    pub(crate) fn access_entry(&self, action: AccessAction) -> AccessEntry {
        AccessEntry {
            id: RowId::new(),
            at: crate::domain::normalize_timestamp(self.clock().now()),
            worker_id: self.worker_id(),
            device_id: self.device_id(),
            action,
            case_id: None,
            person_id: None,
            criterion: None,
        }
    }

    /// The newest access-log entries first.
    pub fn access_log(&self, limit: u32) -> Result<Vec<AccessEntry>> {
        self.access_entries(
            "SELECT id, at, worker_id, device_id, action, case_id, person_id, criterion
             FROM access_log ORDER BY at DESC, id DESC LIMIT ?1",
            limit,
        )
    }

    /// Entries not yet uploaded to the central service, oldest first.
    pub fn pending_access(&self, limit: u32) -> Result<Vec<AccessEntry>> {
        self.access_entries(
            "SELECT id, at, worker_id, device_id, action, case_id, person_id, criterion
             FROM access_log WHERE uploaded = 0 ORDER BY at, id LIMIT ?1",
            limit,
        )
    }

    /// How many entries wait for upload.
    pub fn pending_access_count(&self) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM access_log WHERE uploaded = 0",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Marks entries the central service has recorded, in one transaction.
    pub fn mark_access_uploaded(&mut self, ids: &[RowId]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached("UPDATE access_log SET uploaded = 1 WHERE id = ?1")?;
            for id in ids {
                stmt.execute([id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn access_entries(&self, sql: &str, limit: u32) -> Result<Vec<AccessEntry>> {
        let mut stmt = self.conn().prepare_cached(sql)?;
        let rows = stmt.query_map([limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, Option<String>>(7)?,
            ))
        })?;
        let bad = |what: &str| Error::Corrupt(format!("access log {what}"));
        let mut out = Vec::new();
        for row in rows {
            let (id, at, worker, device, action, case, person, criterion) = row?;
            out.push(AccessEntry {
                id: id.parse().map_err(|_| bad("id"))?,
                at: OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| bad("time"))?,
                worker_id: worker.parse().map_err(|_| bad("worker"))?,
                device_id: device.parse().map_err(|_| bad("device"))?,
                action: action.parse().map_err(|_| bad("action"))?,
                case_id: case
                    .map(|c| c.parse())
                    .transpose()
                    .map_err(|_| bad("case"))?,
                person_id: person
                    .map(|p| p.parse())
                    .transpose()
                    .map_err(|_| bad("person"))?,
                criterion,
            });
        }
        Ok(out)
    }
}
