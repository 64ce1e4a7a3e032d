//! The device's side of sync: the queue of changes to push, the service's acknowledgements,
//! and applying pulled records field by field (the newer clock wins per field), bucket by
//! bucket, with the cursors in the same transaction.

use super::record::{index_new, reindex, row_fields, select_sql, sql_once, to_sql, Record};
use super::Store;
use crate::domain::*;
use crate::error::{Error, Result};
use feltkontor_wire::sync::{PullResponse, PushResponse, RejectedChange, SyncRecord, TEAM_BUCKET};
use feltkontor_wire::{CaseId, ChangeEntry, EntityKind, Hlc, RowId};
use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// Runs `$body` with `$t` bound to the record type of `$kind`.
macro_rules! with_record {
    ($kind:expr, $t:ident => $body:expr) => {
        match $kind {
            EntityKind::Team => {
                type $t = Team;
                $body
            }
            EntityKind::Staff => {
                type $t = Staff;
                $body
            }
            EntityKind::TeamMember => {
                type $t = TeamMember;
                $body
            }
            EntityKind::Case => {
                type $t = Case;
                $body
            }
            EntityKind::Participant => {
                type $t = Participant;
                $body
            }
            EntityKind::Handover => {
                type $t = Handover;
                $body
            }
            EntityKind::Person => {
                type $t = Person;
                $body
            }
            EntityKind::Phone => {
                type $t = Phone;
                $body
            }
            EntityKind::Relation => {
                type $t = Relation;
                $body
            }
            EntityKind::Note => {
                type $t = CaseNote;
                $body
            }
            EntityKind::Consent => {
                type $t = Consent;
                $body
            }
            EntityKind::Agreement => {
                type $t = Agreement;
                $body
            }
            EntityKind::Conflict => {
                type $t = Conflict;
                $body
            }
            EntityKind::Appointment => {
                type $t = Appointment;
                $body
            }
        }
    };
}

/// Tables of case data other than `cases` itself: each has a `case_id` column.
const CASE_TABLES: &[&str] = &[
    "participants",
    "handovers",
    "persons",
    "phones",
    "relations",
    "notes",
    "consents",
    "agreements",
    "conflicts",
    "appointments",
];

/// What one pulled page did on this device.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PullApplied {
    /// Records that changed at least one field here.
    pub changed: usize,
    /// Buckets (cases) deleted from this device because the worker may no longer see them.
    pub dropped_buckets: Vec<String>,
    /// Buckets deleted because the worker's view of them changed: pull again (their records
    /// in this page were not applied).
    pub reset_buckets: Vec<String>,
}

/// A pulled page, checked and turned into rows before it reaches the store: every record read
/// as its type (what cannot be read is not stored), its columns as SQL values in the table's
/// order, its clocks as the text stored with it. This is the CPU work of a page that needs no
/// database, so the app does it on the task that reads the stream while the store applies the
/// page before.
#[derive(Debug)]
pub struct CheckedPage {
    /// The page without its records: buckets with their names, cursors and checksums.
    head: PullResponse,
    /// The records of each bucket of `head`, in the service's order.
    records: Vec<Vec<CheckedRecord>>,
}

#[derive(Debug)]
struct CheckedRecord {
    entity: EntityKind,
    id: Uuid,
    /// The table's columns (`id` first), then `archived` and `field_hlc`.
    values: Vec<SqlValue>,
    /// The service's clock per field; a field withheld from this worker has the lowest clock.
    field_hlc: BTreeMap<String, Hlc>,
    redacted: Vec<String>,
}

impl CheckedPage {
    /// Checks every record of `page` (see the type); the first that cannot be read is the error.
    pub fn check(mut page: PullResponse) -> Result<Self> {
        let mut records = Vec::with_capacity(page.buckets.len());
        for bucket in &mut page.buckets {
            let recs = std::mem::take(&mut bucket.records);
            let mut checked = Vec::with_capacity(recs.len());
            for rec in recs {
                checked.push(with_record!(rec.entity, T => check_record::<T>(rec))?);
            }
            records.push(checked);
        }
        Ok(CheckedPage {
            head: page,
            records,
        })
    }

    /// The page without its records: what the cursors, the checksums and the reset buckets
    /// are read from (each bucket's `records` is empty; see [`Self::len`]).
    pub fn head(&self) -> &PullResponse {
        &self.head
    }

    /// How many records the page holds.
    pub fn len(&self) -> usize {
        self.records.iter().map(Vec::len).sum()
    }

    /// Whether the page holds no records.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checks one pulled record as a `T` and turns it into the table's row.
fn check_record<T: Record>(mut rec: SyncRecord) -> Result<CheckedRecord> {
    let bad = |what: String| Error::SyncData(format!("{} {}: {what}", T::TABLE, rec.id));
    if rec.field_hlc.is_empty() {
        return Err(bad("no clocks".into()));
    }
    // The record's fields, moved (not copied) into the table's columns; a field withheld from
    // this worker is empty. Fields the table does not know are left out.
    let mut fields = std::mem::take(&mut rec.data);
    for col in T::COLUMNS.iter().copied().filter(|c| *c != "id") {
        if rec.redacted.iter().any(|r| r == col) {
            fields.insert(col.to_owned(), Value::Null);
        } else if !fields.contains_key(col) {
            return Err(bad(format!("field {col} is missing")));
        }
    }
    fields.insert("id".to_owned(), Value::String(rec.id.to_string()));
    // The same validation as the record's own type: what cannot be read is not stored.
    let fields = Value::Object(fields);
    T::deserialize(&fields).map_err(|e| bad(e.to_string()))?;
    let Value::Object(mut fields) = fields else {
        unreachable!("built as an object above")
    };
    // A field withheld from this worker is emptied here, with the lowest clock, so nothing of
    // an earlier view stays and the real value wins again if the worker may see it later.
    for col in &rec.redacted {
        rec.field_hlc.insert(col.clone(), withheld_clock());
    }
    let mut values = Vec::with_capacity(T::COLUMNS.len() + 2);
    for col in T::COLUMNS {
        let v = fields.remove(*col).unwrap_or(Value::Null);
        values.push(match v {
            Value::Null => SqlValue::Null,
            v if T::JSON_COLUMNS.contains(col) => SqlValue::Text(v.to_string()),
            Value::String(text) => SqlValue::Text(text),
            v => to_sql(&v),
        });
    }
    values.push(SqlValue::Integer(i64::from(rec.archived)));
    values.push(SqlValue::Text(
        serde_json::to_string(&rec.field_hlc).map_err(|e| bad(e.to_string()))?,
    ));
    Ok(CheckedRecord {
        entity: rec.entity,
        id: rec.id,
        values,
        field_hlc: rec.field_hlc,
        redacted: rec.redacted,
    })
}

impl Store {
    /// The changes not yet acknowledged by the service, oldest first.
    pub fn pending_push(&self, limit: u32) -> Result<Vec<ChangeEntry>> {
        self.log_entries("pushed = 0", limit)
    }

    /// How many changes wait to be pushed.
    pub fn pending_count(&self) -> Result<u64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM change_log WHERE pushed = 0",
            [],
            |r| r.get(0),
        )?)
    }

    /// Records the service's acknowledgement: everything up to `acked_seq` is pushed, and the
    /// changes it refused for good are kept for the worker to see (the values stay in the
    /// change log). A refused change is undone on the device: the record is forgotten here and
    /// its bucket pulled again from the start, so the device holds the service's version, not
    /// one nobody else will ever see.
    pub fn ack_push(&mut self, resp: &PushResponse) -> Result<()> {
        let now = self.clock().now();
        let at = now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE change_log SET pushed = 1 WHERE pushed = 0 AND seq <= ?1",
            [resp.acked_seq],
        )?;
        for r in &resp.rejected {
            tx.execute(
                "INSERT OR REPLACE INTO sync_rejected (seq, entity, entity_id, code, reason, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    r.seq,
                    r.entity.as_str(),
                    r.entity_id.to_string(),
                    r.code,
                    r.reason,
                    at
                ],
            )?;
            let bucket = with_record!(r.entity, T => forget::<T>(&tx, r.entity_id))?;
            tx.execute(
                "UPDATE sync_buckets SET cursor = 0 WHERE bucket = ?1",
                [bucket],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Changes the service refused for good, newest first.
    pub fn rejected_changes(&self) -> Result<Vec<RejectedChange>> {
        let mut stmt = self.conn().prepare(
            "SELECT seq, entity, entity_id, code, reason FROM sync_rejected ORDER BY seq DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, u64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, entity, id, code, reason) = row?;
            out.push(RejectedChange {
                seq,
                entity: EntityKind::parse(&entity)
                    .ok_or_else(|| Error::Corrupt(format!("rejected entity {entity}")))?,
                entity_id: id
                    .parse()
                    .map_err(|_| Error::Corrupt("rejected entity id".into()))?,
                code,
                reason,
            });
        }
        Ok(out)
    }

    /// Conflicts nobody has resolved yet, newest first; of one case, or of all.
    pub fn open_conflicts(&self, case: Option<CaseId>) -> Result<Vec<Conflict>> {
        let sql = format!(
            "{} WHERE resolved_at IS NULL AND archived = 0 AND (?1 IS NULL OR case_id = ?1) ORDER BY detected_at DESC",
            select_sql::<Conflict>()
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map([case.map(|c| c.0.to_string())], |r| {
            super::record::from_row::<Conflict>(r)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Resolves a conflict with the value a person chose (either side's, or a merged value;
    /// JSON as the record serialises the field): the record's field gets the value, a normal
    /// change that syncs, and the conflict is marked resolved by the worker.
    pub fn resolve_conflict(&mut self, id: RowId, value: &Value) -> Result<Conflict> {
        self.write(|w| {
            let mut c: Conflict = w.require(id.0)?;
            with_record!(c.entity, T => w.set_field::<T>(c.entity_id, &c.field, value))?;
            c.resolved_at = Some(w.now());
            c.resolved_by = Some(w.worker());
            w.put(&c)?;
            Ok(c)
        })
    }

    /// Every live record on this device, field by field: what convergence checks compare
    /// with the service's answer for the worker.
    pub fn live_records(&self) -> Result<BTreeMap<(EntityKind, Uuid), Map<String, Value>>> {
        let mut out = BTreeMap::new();
        for kind in EntityKind::ALL {
            with_record!(*kind, T => {
                let sql = format!("{} WHERE archived = 0", select_sql::<T>());
                let mut stmt = self.conn().prepare(&sql)?;
                let rows = stmt.query_map([], row_fields::<T>)?;
                for row in rows {
                    let mut fields = row?;
                    let id: Uuid = fields
                        .get("id")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| Error::Corrupt(format!("{} id", T::TABLE)))?;
                    fields.remove("id");
                    out.insert((*kind, id), fields);
                }
            })
        }
        Ok(out)
    }

    /// The checksum of what this device holds of `bucket`: the sum of
    /// [`feltkontor_wire::sync::record_digest`] over its live records, as the service computes
    /// it for the worker.
    pub fn bucket_checksum(&self, bucket: &str) -> Result<u64> {
        let case = bucket_case(bucket);
        if case.is_none() && bucket != TEAM_BUCKET {
            return Err(Error::SyncData(format!("unknown bucket {bucket}")));
        }
        let mut sum = 0u64;
        for kind in EntityKind::ALL {
            let team_kind = matches!(
                kind,
                EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember
            );
            let filter = match (case.is_some(), team_kind, kind) {
                (false, true, _) => "",
                (true, false, EntityKind::Case) => " AND id = ?1",
                (true, false, _) => " AND case_id = ?1",
                _ => continue,
            };
            let args: Vec<String> = case.iter().map(Uuid::to_string).collect();
            with_record!(*kind, T => {
                let sql = format!("{} WHERE archived = 0{filter}", select_sql::<T>());
                let mut stmt = self.conn().prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_fields::<T>)?;
                for row in rows {
                    let mut fields = row?;
                    let id: Uuid = fields
                        .remove("id")
                        .as_ref()
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| Error::Corrupt(format!("{} id", T::TABLE)))?;
                    sum = sum.wrapping_add(feltkontor_wire::sync::record_digest(*kind, id, &fields));
                }
            })
        }
        Ok(sum)
    }

    /// Deletes what this device holds of `bucket` and its cursor, so the next pull brings it
    /// again from the start (its checksum did not match the service's).
    pub fn reset_bucket(&mut self, bucket: &str) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        match bucket_case(bucket) {
            Some(case) => drop_case(&tx, case)?,
            None if bucket == TEAM_BUCKET => {
                for kind in [EntityKind::Team, EntityKind::Staff, EntityKind::TeamMember] {
                    with_record!(kind, T => {
                        tx.execute(&format!("DELETE FROM {}", T::TABLE), [])?;
                    })
                }
            }
            None => return Err(Error::SyncData(format!("unknown bucket {bucket}"))),
        }
        tx.execute("DELETE FROM sync_buckets WHERE bucket = ?1", [bucket])?;
        tx.commit()?;
        Ok(())
    }

    /// The cursor of every bucket this device holds.
    pub fn sync_cursors(&self) -> Result<BTreeMap<String, u64>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT bucket, cursor FROM sync_buckets")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u64>(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The cursor of one bucket (`None`: not held).
    pub fn sync_cursor(&self, bucket: &str) -> Result<Option<u64>> {
        Ok(self
            .conn()
            .prepare_cached("SELECT cursor FROM sync_buckets WHERE bucket = ?1")?
            .query_row([bucket], |r| r.get(0))
            .optional()?)
    }

    /// Applies one pulled page, checked ([`CheckedPage::check`]), in one transaction: records
    /// merged field by field, each bucket's cursor, and the deletion of buckets the worker may
    /// no longer see. Either all of it is applied or none of it.
    pub fn apply_checked(&mut self, page: &CheckedPage) -> Result<PullApplied> {
        // A pulled page is a copy of the service's data: if power fails right after, the
        // page and its cursors (one transaction) may be lost together and are pulled again,
        // never half. So its commit does not wait for the disk (WAL `synchronous=NORMAL`: the
        // store stays consistent); the worker's own saves keep `FULL`, and the next of them
        // makes the pulled pages durable too. Nor does a large page (a first sync) copy the
        // log into the database after it (see [`LARGE_PULL_PRAGMAS`]).
        let large = page.len() >= super::search::DEFER_INDEXING_AT;
        self.conn.execute_batch(if large {
            LARGE_PULL_PRAGMAS
        } else {
            PULL_PRAGMAS
        })?;
        self.wal_behind |= large;
        let result = self.apply_checked_page(page, large);
        self.conn.execute_batch(SAVE_PRAGMAS)?;
        result
    }

    /// After a round of pulled pages: when large pages left the write-ahead log uncopied,
    /// copies it into the database file as far as no reader needs it (a passive checkpoint,
    /// never waiting). Otherwise nothing (the log is copied as after any save).
    pub fn checkpoint(&mut self) -> Result<()> {
        if std::mem::take(&mut self.wal_behind) {
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    fn apply_checked_page(&mut self, checked: &CheckedPage, large: bool) -> Result<PullApplied> {
        let page = &checked.head;
        let now_ms = self.clock().now_ms();
        let now_text = crate::domain::normalize_timestamp(self.clock().now())
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut applied = PullApplied::default();
        let mut newest: Option<Hlc> = None;
        // A large page is stored first and indexed for search afterwards, in one pass.
        if large {
            super::search::defer_indexing(&tx)?;
        }
        // Per indexed table, up to which row the search index is complete (see `search_backlog`).
        let backlog: BTreeMap<String, i64> = tx
            .prepare_cached("SELECT tbl, indexed_upto FROM search_backlog")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        // A bucket held for another view (e.g. as a participant, who sees protected addresses)
        // is deleted first and pulled again from the start under the new view.
        let held_views: BTreeMap<String, Option<String>> = tx
            .prepare_cached("SELECT bucket, view FROM sync_buckets")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (bucket, view) in &page.views {
            match held_views.get(bucket) {
                Some(Some(old)) if old != view => {
                    if let Some(case) = bucket_case(bucket) {
                        drop_case(&tx, case)?;
                    }
                    tx.execute("DELETE FROM sync_buckets WHERE bucket = ?1", [bucket])?;
                    applied.reset_buckets.push(bucket.clone());
                }
                Some(None) => {
                    tx.execute(
                        "UPDATE sync_buckets SET view = ?2 WHERE bucket = ?1",
                        params![bucket, view],
                    )?;
                }
                _ => {}
            }
        }
        // A bucket whose cursor is older than the service's horizon may hold records deleted
        // there since: deleted here too and pulled again from the start.
        for bucket in &page.reset {
            let Some(case) = bucket_case(bucket) else {
                return Err(Error::SyncData(format!("reset of bucket {bucket}")));
            };
            drop_case(&tx, case)?;
            tx.execute("DELETE FROM sync_buckets WHERE bucket = ?1", [bucket])?;
            if !applied.reset_buckets.contains(bucket) {
                applied.reset_buckets.push(bucket.clone());
            }
        }
        for (bucket, records) in page.buckets.iter().zip(&checked.records) {
            if applied.reset_buckets.contains(&bucket.bucket) {
                continue;
            }
            if bucket.bucket != TEAM_BUCKET && bucket_case(&bucket.bucket).is_none() {
                return Err(Error::SyncData(format!("unknown bucket {}", bucket.bucket)));
            }
            let held_before = tx
                .prepare_cached("SELECT EXISTS (SELECT 1 FROM sync_buckets WHERE bucket = ?1)")?
                .query_row([&bucket.bucket], |r| r.get::<_, bool>(0))?;
            let mut changed_here = false;
            for rec in records {
                if let Some(max) = rec.field_hlc.values().max() {
                    newest = newest.max(Some(*max));
                }
                if with_record!(rec.entity, T => merge::<T>(&tx, rec, &backlog))? {
                    applied.changed += 1;
                    changed_here = true;
                }
            }
            // A change to a case this device held already: "nyt siden sidst" in the case list.
            if let (true, true, Some(case)) =
                (held_before, changed_here, bucket_case(&bucket.bucket))
            {
                tx.prepare_cached(
                    "INSERT INTO case_remote_change (case_id, at) VALUES (?1, ?2)
                     ON CONFLICT (case_id) DO UPDATE SET at = excluded.at",
                )?
                .execute(params![case.to_string(), now_text])?;
            }
            tx.prepare_cached(
                "INSERT INTO sync_buckets (bucket, cursor, view) VALUES (?1, ?2, ?3)
                 ON CONFLICT (bucket) DO UPDATE SET cursor = excluded.cursor,
                   view = COALESCE(excluded.view, sync_buckets.view)",
            )?
            .execute(params![
                bucket.bucket,
                bucket.cursor,
                page.views.get(&bucket.bucket)
            ])?;
        }
        let visible: BTreeSet<&str> = page.visible.iter().map(String::as_str).collect();
        let held: Vec<String> = tx
            .prepare_cached("SELECT bucket FROM sync_buckets")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for bucket in held {
            if visible.contains(bucket.as_str()) {
                continue;
            }
            if let Some(case) = bucket_case(&bucket) {
                drop_case(&tx, case)?;
            }
            tx.execute("DELETE FROM sync_buckets WHERE bucket = ?1", [&bucket])?;
            applied.dropped_buckets.push(bucket);
        }
        // Later local writes are stamped after everything seen from the service.
        if let Some(remote) = newest {
            let current: String = tx.query_row(
                "SELECT hlc FROM device_state WHERE singleton = 1",
                [],
                |r| r.get(0),
            )?;
            let current: Hlc = current
                .parse()
                .map_err(|e: feltkontor_wire::HlcParseError| Error::Corrupt(e.to_string()))?;
            if remote > current {
                tx.execute(
                    "UPDATE device_state SET hlc = ?1 WHERE singleton = 1",
                    [current.observe(remote, now_ms).to_string()],
                )?;
            }
        }
        tx.commit()?;
        Ok(applied)
    }
}

const PULL_PRAGMAS: &str = "PRAGMA synchronous = NORMAL;";
/// While large pulled pages are applied, the write-ahead log is copied into the database file
/// only when it has grown to 16,384 pages (64 MiB), not after every commit of 1,000 pages or
/// more as for saves: a first sync copies each database page once at its end
/// ([`Store::checkpoint`]) instead of again after every page.
const LARGE_PULL_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 16384;";
const SAVE_PRAGMAS: &str = "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 1000;";

/// The clock of a field withheld from this worker: lower than any real one.
fn withheld_clock() -> Hlc {
    Hlc::zero(feltkontor_wire::DeviceId(Uuid::nil()))
}

fn bucket_case(bucket: &str) -> Option<Uuid> {
    bucket.strip_prefix("case:").and_then(|s| s.parse().ok())
}

fn parse_clocks(text: &str) -> Result<BTreeMap<String, Hlc>> {
    let raw: BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|e| Error::Corrupt(format!("field_hlc: {e}")))?;
    raw.into_iter()
        .map(|(k, v)| {
            v.parse()
                .map(|h| (k, h))
                .map_err(|e: feltkontor_wire::HlcParseError| Error::Corrupt(e.to_string()))
        })
        .collect()
}

fn clock_of(clocks: &BTreeMap<String, Hlc>, field: &str) -> Option<Hlc> {
    clocks.get(field).or_else(|| clocks.get("*")).copied()
}

/// Merges one pulled record into its table; returns whether anything changed.
fn merge<T: Record>(
    conn: &Connection,
    rec: &CheckedRecord,
    backlog: &BTreeMap<String, i64>,
) -> Result<bool> {
    if rec.entity != T::KIND {
        return Err(Error::SyncData("entity kind mismatch".into()));
    }
    let bad = |what: String| Error::SyncData(format!("{} {}: {what}", T::TABLE, rec.id));
    // Most pulled records are new here (always on a first sync): insert unless the row exists,
    // and merge field by field only when it does.
    let inserted = conn
        .prepare_cached(sql_once(T::TABLE, "pull_insert", || {
            let marks = (1..=T::COLUMNS.len() + 2)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "INSERT INTO {} ({}, archived, field_hlc) VALUES ({marks}) ON CONFLICT (id) DO NOTHING",
                T::TABLE,
                T::COLUMNS.join(", ")
            )
        }))?
        .execute(rusqlite::params_from_iter(&rec.values))?;
    if inserted == 1 {
        // A new record has no search entry to replace; above the search backlog it is left
        // for the catch-up (without asking the database again for every row).
        let rid = conn.last_insert_rowid();
        if backlog.get(T::TABLE).is_none_or(|upto| rid <= *upto) {
            index_new::<T>(conn, rec.id)?;
        }
        return Ok(true);
    }
    let local: Option<String> = conn
        .prepare_cached(sql_once(T::TABLE, "field_hlc", || {
            format!("SELECT field_hlc FROM {} WHERE id = ?1", T::TABLE)
        }))?
        .query_row([rec.id.to_string()], |r| r.get(0))
        .optional()?;
    let Some(local) = local else {
        return Err(bad("record vanished while merging".into()));
    };
    let local = parse_clocks(&local)?;
    let mut sets = Vec::new();
    let mut values: Vec<ToSqlOutput<'_>> = Vec::new();
    let mut clocks = Map::new();
    let fields = T::COLUMNS
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, c)| *c != "id");
    for (i, col) in fields.chain(std::iter::once((T::COLUMNS.len(), "archived"))) {
        if rec.redacted.iter().any(|r| r == col) {
            values.push(ToSqlOutput::Owned(SqlValue::Null));
            sets.push(format!("{col} = ?{}", values.len()));
            clocks.insert(col.to_owned(), Value::String(withheld_clock().to_string()));
            continue;
        }
        let (Some(theirs), ours) = (clock_of(&rec.field_hlc, col), clock_of(&local, col)) else {
            continue;
        };
        if ours.is_some_and(|o| theirs <= o) {
            continue;
        }
        values.push(ToSqlOutput::Borrowed(ValueRef::from(&rec.values[i])));
        sets.push(format!("{col} = ?{}", values.len()));
        clocks.insert(col.to_owned(), Value::String(theirs.to_string()));
    }
    if sets.is_empty() {
        return Ok(false);
    }
    values.push(ToSqlOutput::Owned(SqlValue::Text(
        Value::Object(clocks).to_string(),
    )));
    let n = values.len();
    values.push(ToSqlOutput::Owned(SqlValue::Text(rec.id.to_string())));
    conn.prepare_cached(&format!(
        "UPDATE {} SET {}, field_hlc = json_patch(field_hlc, ?{n}) WHERE id = ?{}",
        T::TABLE,
        sets.join(", "),
        n + 1
    ))?
    .execute(rusqlite::params_from_iter(values))?;
    reindex::<T>(conn, rec.id)?;
    Ok(true)
}

/// Deletes one record from this device (with its search entry); returns the bucket that holds
/// it (its case's, or the team bucket), to be pulled again.
fn forget<T: Record>(conn: &Connection, id: Uuid) -> Result<String> {
    let case: Option<Option<String>> = if T::KIND == EntityKind::Case {
        Some(Some(id.to_string()))
    } else if T::COLUMNS.contains(&"case_id") {
        conn.query_row(
            &format!("SELECT case_id FROM {} WHERE id = ?1", T::TABLE),
            [id.to_string()],
            |r| r.get(0),
        )
        .optional()?
    } else {
        None
    };
    if let Some(fts) = T::FTS {
        conn.execute(
            &format!(
                "DELETE FROM {} WHERE rowid = (SELECT rid FROM {} WHERE id = ?1)",
                fts.table,
                T::TABLE
            ),
            [id.to_string()],
        )?;
    }
    conn.execute(
        &format!("DELETE FROM {} WHERE id = ?1", T::TABLE),
        [id.to_string()],
    )?;
    Ok(match case.flatten() {
        Some(case) => format!("case:{case}"),
        None => TEAM_BUCKET.to_owned(),
    })
}

/// Deletes every row of a case from this device, with its search entries and the pushed
/// change-log entries that carried its content.
fn drop_case(conn: &Connection, case: Uuid) -> Result<()> {
    let id = case.to_string();
    let mut ids: Vec<String> = vec![id.clone()];
    for table in CASE_TABLES {
        let mut stmt = conn.prepare(&format!("SELECT id FROM {table} WHERE case_id = ?1"))?;
        let found = stmt.query_map([&id], |r| r.get::<_, String>(0))?;
        ids.extend(found.collect::<rusqlite::Result<Vec<_>>>()?);
    }
    conn.execute(
        "DELETE FROM notes_fts WHERE rowid IN (SELECT rid FROM notes WHERE case_id = ?1)",
        [&id],
    )?;
    conn.execute(
        "DELETE FROM persons_fts WHERE rowid IN (SELECT rid FROM persons WHERE case_id = ?1)",
        [&id],
    )?;
    for table in CASE_TABLES {
        conn.execute(&format!("DELETE FROM {table} WHERE case_id = ?1"), [&id])?;
    }
    conn.execute("DELETE FROM cases WHERE id = ?1", [&id])?;
    let mut del = conn.prepare("DELETE FROM change_log WHERE pushed = 1 AND entity_id = ?1")?;
    for i in &ids {
        del.execute([i])?;
    }
    conn.execute(
        "DELETE FROM access_log WHERE case_id = ?1 AND uploaded = 1",
        [&id],
    )?;
    Ok(())
}
