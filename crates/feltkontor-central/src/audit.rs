//! The audit log: every read, search, write and export of case data, and every security event,
//! appended in the same transaction as the use it records. Rows are never updated or deleted
//! (the schema refuses it); each row's hash covers its content and the previous row's hash, so
//! a changed, removed or inserted row breaks the chain from there on ([`verify`]).

use crate::db::Conn;
use crate::error::Result;
use crate::{now_ms, params};
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub staff_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    /// What was done: `read_case`, `list_cases`, `search`, `write`, `export`, `enroll`, …
    pub action: &'static str,
    pub case_id: Option<Uuid>,
    pub person_id: Option<Uuid>,
    /// The criterion or object, in words (a search's query, what was written).
    pub detail: String,
    /// `ok`, `denied`, `limited` (saw only that the case exists), `failed`.
    pub result: &'static str,
}

impl AuditEvent {
    pub fn security(
        staff: Option<Uuid>,
        device: Option<Uuid>,
        action: &'static str,
        detail: &str,
    ) -> Self {
        AuditEvent {
            staff_id: staff,
            device_id: device,
            action,
            case_id: None,
            person_id: None,
            detail: detail.into(),
            result: "failed",
        }
    }
}

/// One stored row.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AuditRow {
    pub seq: i64,
    pub at_ms: i64,
    pub staff_id: Option<Uuid>,
    pub device_id: Option<Uuid>,
    pub action: String,
    pub case_id: Option<Uuid>,
    pub person_id: Option<Uuid>,
    pub detail: String,
    pub result: String,
}

fn row_hash(prev: &str, r: &AuditRow) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(serde_json::to_vec(r).expect("audit rows serialise"));
    hex::encode(h.finalize())
}

/// Appends `ev` inside the caller's transaction.
pub fn append(conn: &mut dyn Conn, ev: &AuditEvent) -> Result<i64> {
    append_all(conn, std::slice::from_ref(ev))
}

/// Appends `events` inside the caller's transaction; returns the last sequence number. The head
/// row is taken with an UPDATE, so concurrent appenders (other requests, other server
/// instances) queue on it and the chain stays linear.
pub fn append_all(conn: &mut dyn Conn, events: &[AuditEvent]) -> Result<i64> {
    let n = events.len() as i64;
    let head = conn
        .query_one(
            "UPDATE audit_head SET seq = seq + $1 WHERE singleton = 1 RETURNING seq, hash",
            params![n],
        )?
        .ok_or_else(|| crate::error::ServiceError::internal("audit head missing"))?;
    let (last, mut prev) = (head.int(0)?, head.text(1)?);
    let at_ms = now_ms();
    for (i, ev) in events.iter().enumerate() {
        let row = AuditRow {
            seq: last - n + 1 + i as i64,
            at_ms,
            staff_id: ev.staff_id,
            device_id: ev.device_id,
            action: ev.action.to_owned(),
            case_id: ev.case_id,
            person_id: ev.person_id,
            detail: ev.detail.clone(),
            result: ev.result.to_owned(),
        };
        let hash = row_hash(&prev, &row);
        conn.execute(
            "INSERT INTO audit_log (seq, at, staff_id, device_id, action, case_id, person_id, detail, result, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            params![row.seq, row.at_ms, row.staff_id, row.device_id, row.action.as_str(), row.case_id, row.person_id, row.detail.as_str(), row.result.as_str(), prev, hash.as_str()],
        )?;
        prev = hash;
    }
    conn.execute(
        "UPDATE audit_head SET hash = $1 WHERE singleton = 1",
        params![prev],
    )?;
    Ok(last)
}

/// Group commit for the audit rows of reads. A read runs in a read-only transaction; its audit
/// rows go to this writer, which appends everything queued in one transaction, and the read's
/// answer is released only once its rows are committed. Many concurrent reads share one commit
/// (and one turn on the chain's head) instead of queueing one by one.
pub struct AuditWriter {
    jobs: std::sync::mpsc::Sender<Job>,
}

struct Job {
    events: Vec<AuditEvent>,
    done: std::sync::mpsc::SyncSender<Result<()>>,
}

/// Rows per commit at most.
const BATCH: usize = 1_000;

impl AuditWriter {
    pub fn start(pool: std::sync::Arc<crate::db::Pool>) -> AuditWriter {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    let mut rows = jobs[0].events.len();
                    while rows < BATCH {
                        match rx.try_recv() {
                            Ok(j) => {
                                rows += j.events.len();
                                jobs.push(j);
                            }
                            Err(_) => break,
                        }
                    }
                    let result = write_batch(&pool, &jobs);
                    if let Err(e) = &result {
                        tracing::error!(error = %e, rows, "audit rows could not be written; the reads are refused");
                    }
                    for j in jobs {
                        let _ = j.done.send(result.clone());
                    }
                }
            })
            .expect("the audit writer thread starts");
        AuditWriter { jobs: tx }
    }

    /// Appends `events` durably, or fails (and the caller must not release what they record).
    pub fn record(&self, events: Vec<AuditEvent>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let unavailable =
            || crate::error::ServiceError::unavailable("the audit log cannot be written right now");
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        self.jobs
            .send(Job { events, done })
            .map_err(|_| unavailable())?;
        wait.recv().map_err(|_| unavailable())?
    }
}

fn write_batch(pool: &std::sync::Arc<crate::db::Pool>, jobs: &[Job]) -> Result<()> {
    let mut conn = pool.get()?;
    crate::db::transaction(&mut *conn, None, |conn| {
        let events: Vec<AuditEvent> = jobs.iter().flat_map(|j| j.events.iter().cloned()).collect();
        append_all(conn, &events)?;
        // Devices' last contact, kept here so that reads stay read-only.
        let now = now_ms();
        let devices: std::collections::BTreeSet<Uuid> =
            events.iter().filter_map(|e| e.device_id).collect();
        for d in devices {
            conn.execute(
                "UPDATE devices SET last_seen_at = $1 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $3)",
                params![now, d, now - 60_000],
            )?;
        }
        Ok(())
    })
}

const COLUMNS: &str =
    "seq, at, staff_id, device_id, action, case_id, person_id, detail, result, prev_hash, hash";

fn read(r: &crate::db::Row) -> Result<(AuditRow, String, String)> {
    let opt_uuid =
        |i: usize| -> Result<Option<Uuid>> { Ok(r.opt_text(i)?.and_then(|s| s.parse().ok())) };
    Ok((
        AuditRow {
            seq: r.int(0)?,
            at_ms: r.int(1)?,
            staff_id: opt_uuid(2)?,
            device_id: opt_uuid(3)?,
            action: r.text(4)?,
            case_id: opt_uuid(5)?,
            person_id: opt_uuid(6)?,
            detail: r.text(7)?,
            result: r.text(8)?,
        },
        r.text(9)?,
        r.text(10)?,
    ))
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub rows: i64,
    /// The first row whose hash or link does not match, if any.
    pub first_broken: Option<i64>,
}

/// Walks the whole chain in pages and checks each row's link and hash, and that the head
/// matches the last row.
pub fn verify(conn: &mut dyn Conn) -> Result<ChainReport> {
    let mut prev = "0".repeat(64);
    let mut expected_seq = 1;
    let mut rows = 0;
    loop {
        let page = conn.query(
            &format!("SELECT {COLUMNS} FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 5000"),
            params![expected_seq],
        )?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let (row, prev_hash, hash) = read(r)?;
            if row.seq != expected_seq || prev_hash != prev || row_hash(&prev, &row) != hash {
                return Ok(ChainReport {
                    rows,
                    first_broken: Some(expected_seq.min(row.seq)),
                });
            }
            prev = hash;
            expected_seq += 1;
            rows += 1;
        }
    }
    let head = conn.query_one(
        "SELECT seq, hash FROM audit_head WHERE singleton = 1",
        params![],
    )?;
    if let Some(h) = head {
        if h.int(0)? != rows || h.text(1)? != prev {
            return Ok(ChainReport {
                rows,
                first_broken: Some(rows + 1),
            });
        }
    }
    Ok(ChainReport {
        rows,
        first_broken: None,
    })
}

/// Every row about one case.
pub fn for_case(conn: &mut dyn Conn, case: Uuid) -> Result<Vec<AuditRow>> {
    conn.query(
        &format!("SELECT {COLUMNS} FROM audit_log WHERE case_id = $1 ORDER BY seq"),
        params![case],
    )?
    .iter()
    .map(|r| read(r).map(|x| x.0))
    .collect()
}

/// Every row about one person: every use of the person's own record, and every use of their
/// case (read on the service, downloaded to a device, opened, searched or exported on a
/// laptop, changed), since the case holds what is known about them. An attempt that was
/// refused showed nothing and is not a use (it stays in the log, for security).
pub fn for_person(conn: &mut dyn Conn, person: Uuid) -> Result<Vec<AuditRow>> {
    let case: Option<Uuid> = conn
        .query_one(
            "SELECT case_id FROM record_ids WHERE id = $1 AND entity = 'person'",
            params![person],
        )?
        .and_then(|r| r.opt_text(0).ok().flatten())
        .and_then(|s| s.parse().ok());
    conn.query(
        &format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE person_id = $1 OR (case_id = $2 AND result IN ('ok', 'limited')) ORDER BY seq"
        ),
        params![person, case],
    )?
    .iter()
    .map(|r| read(r).map(|x| x.0))
    .collect()
}

/// In words, for the citizen's copy: what the use was for.
pub fn purpose(action: &str) -> &'static str {
    match action {
        "read_case" => "Sagens overblik blev åbnet",
        "list_cases" => "Sagslisten blev vist",
        "search" => "Søgning i sagens oplysninger",
        "write" => "Oplysninger blev ændret",
        "export" => "Oplysninger blev udleveret",
        "enroll" => "En enhed blev tilsluttet",
        "sync_read" => "Sagens oplysninger blev hentet til en medarbejders computer",
        "sync_write" => "Oplysninger blev ændret fra en medarbejders computer",
        "sync_verify" => "En medarbejders computer kontrollerede sin kopi",
        "device_open_case" => "Sagen blev åbnet på en medarbejders computer",
        "device_open_person" => "Oplysninger om en person blev åbnet på en medarbejders computer",
        "device_search" => "Søgning på en medarbejders computer",
        "device_export" => "Oplysninger blev udleveret fra en medarbejders computer",
        "conflict" => "To samtidige ændringer blev gemt til afgørelse",
        "privileged_change" => "Tovholder, deltagere eller adressebeskyttelse blev ændret",
        "quarantine_read" => "Et tilbageholdt notat blev vist for tovholderen",
        "quarantine_accept" => "Et tilbageholdt notat blev taget med i sagen",
        "quarantine_keep_out" => "Et tilbageholdt notat blev holdt uden for sagen",
        "security" => "Et forsøg blev afvist af sikkerhedshensyn",
        _ => "Anden brug",
    }
}
