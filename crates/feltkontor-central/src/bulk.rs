//! Loading a large data set straight into the service's tables: the scale benchmark's
//! municipality (`make bench-scale`: a million notes in minutes, not one push per record).
//!
//! As the tables' owner and outside every rule: what goes in must already be valid (the demo
//! generator's records, each made through the same domain types a device writes). Each batch
//! is one transaction of multi-row statements; each bucket's head is counted as its records go
//! in, the projections (cases, memberships, participants) are written as a push writes them,
//! and signed notes are sealed as a push seals them, so the service cannot tell a loaded
//! record from a pushed one. The audit log notes the load once. Not while the service
//! serves: the loader counts each bucket's head itself from where it started.

use crate::audit;
use crate::db::{transaction, Conn, Value as Sql};
use crate::error::{Result, ServiceError};
use crate::params;
use crate::records::{self, SERVER_DEVICE};
use feltkontor_domain::{rules, CaseNote};
use feltkontor_wire::{EntityKind, Hlc, NoteStatus};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// Rows per multi-row statement and per transaction.
const BATCH: usize = 500;

struct Row {
    entity: EntityKind,
    id: Uuid,
    case: Option<Uuid>,
    data: Map<String, Value>,
}

/// Buffers records and writes them in batches; [`Loader::finish`] writes the last.
pub struct Loader {
    rows: Vec<Row>,
    heads: HashMap<String, (i64, i64)>,
    clocks: String,
    now_ms: i64,
    loaded: u64,
}

impl Loader {
    /// A loader continuing the buckets already in the database; every record it writes has
    /// one clock, `now_ms` on the service's device.
    pub fn new(conn: &mut dyn Conn, now_ms: i64) -> Result<Loader> {
        let mut heads = HashMap::new();
        for r in conn.query("SELECT bucket, seq, records FROM bucket_heads", params![])? {
            heads.insert(r.text(0)?, (r.int(1)?, r.int(2)?));
        }
        let hlc = Hlc {
            wall_ms: now_ms.max(0) as u64,
            counter: 0,
            device: SERVER_DEVICE,
        };
        let clocks = serde_json::to_string(&BTreeMap::from([("*".to_owned(), hlc)]))
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        Ok(Loader {
            rows: Vec::with_capacity(BATCH),
            heads,
            clocks,
            now_ms,
            loaded: 0,
        })
    }

    /// Adds a new record (`data` its fields, `id` among them or not); the same record added
    /// again straight after replaces it.
    pub fn add(
        &mut self,
        conn: &mut dyn Conn,
        entity: EntityKind,
        id: Uuid,
        mut data: Map<String, Value>,
    ) -> Result<()> {
        data.insert("id".into(), Value::String(id.to_string()));
        // The same record again at once (a consent given and then withdrawn): the later
        // version stands. A batch is written only when a different record follows, so the
        // two never fall into different batches.
        if let Some(last) = self.rows.last_mut() {
            if last.entity == entity && last.id == id {
                last.data = data;
                return Ok(());
            }
        }
        if self.rows.len() >= BATCH {
            self.flush(conn)?;
        }
        let case = records::case_of(entity, id, &data)?;
        self.rows.push(Row {
            entity,
            id,
            case,
            data,
        });
        Ok(())
    }

    /// Writes what is buffered and notes the load in the audit log; returns how many records
    /// were loaded.
    pub fn finish(mut self, conn: &mut dyn Conn) -> Result<u64> {
        self.flush(conn)?;
        let loaded = self.loaded;
        transaction(conn, None, |conn| {
            crate::live::notify(conn, &crate::live::Touched::everyone())?;
            audit::append(
                conn,
                &crate::admin::admin_event("bulk_load", format!("{loaded} records loaded")),
            )
        })?;
        Ok(loaded)
    }

    fn flush(&mut self, conn: &mut dyn Conn) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut heads = self.heads.clone();
        let clocks = self.clocks.clone();
        let now_ms = self.now_ms;
        transaction(conn, None, |conn| {
            let mut record_values: Vec<Sql> = Vec::with_capacity(rows.len() * 7);
            let mut id_values: Vec<Sql> = Vec::with_capacity(rows.len() * 4);
            let mut sealed: Vec<Sql> = Vec::new();
            let mut touched: Vec<String> = Vec::new();
            for row in &rows {
                if matches!(
                    row.entity,
                    EntityKind::Case | EntityKind::TeamMember | EntityKind::Participant
                ) {
                    records::project(conn, row.entity, row.id, &row.data, false)?;
                }
                let bucket = records::bucket_key(row.case);
                let head = heads.entry(bucket.clone()).or_insert((0, 0));
                head.0 += 1;
                head.1 += 1;
                touched.push(bucket);
                let author = match row.entity {
                    EntityKind::Note => row.data.get("author_id").and_then(Value::as_str),
                    _ => None,
                };
                if row.entity == EntityKind::Note {
                    let note: CaseNote = serde_json::from_value(Value::Object(row.data.clone()))
                        .map_err(|e| ServiceError::invalid("note", e.to_string()))?;
                    if note.status == NoteStatus::Signed {
                        let hash = rules::content_hash(&note);
                        if note.content_hash.as_deref() != Some(hash.as_str()) {
                            return Err(ServiceError::invalid(
                                "note",
                                "a signed note's content does not match its signature",
                            ));
                        }
                        sealed.extend([row.id.into(), hash.into(), now_ms.into()]);
                    }
                }
                record_values.extend([
                    row.entity.as_str().into(),
                    row.id.into(),
                    row.case.into(),
                    Value::Object(row.data.clone()).to_string().into(),
                    clocks.clone().into(),
                    false.into(),
                    head.0.into(),
                ]);
                id_values.extend([
                    row.id.into(),
                    row.entity.as_str().into(),
                    row.case.into(),
                    author.map(str::to_owned).into(),
                ]);
            }
            insert(
                conn,
                "records (entity, id, case_id, data, field_hlc, archived, seq)",
                7,
                &record_values,
            )?;
            insert(
                conn,
                "record_ids (id, entity, case_id, author_id)",
                4,
                &id_values,
            )?;
            insert(
                conn,
                "signed_notes (note_id, content_hash, signed_at)",
                3,
                &sealed,
            )?;
            touched.sort();
            touched.dedup();
            for bucket in touched {
                let (seq, count) = heads[&bucket];
                conn.execute(
                    "INSERT INTO bucket_heads (bucket, seq, records) VALUES ($1, $2, $3)
                     ON CONFLICT (bucket) DO UPDATE SET seq = excluded.seq, records = excluded.records",
                    params![bucket, seq, count],
                )?;
            }
            Ok(())
        })?;
        self.heads = heads;
        self.loaded += rows.len() as u64;
        Ok(())
    }
}

/// One multi-row `INSERT INTO {into} VALUES (…), (…)` of `values`, `width` to a row.
fn insert(conn: &mut dyn Conn, into: &str, width: usize, values: &[Sql]) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let rows = values.len() / width;
    let mut sql = format!("INSERT INTO {into} VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", r * width + c + 1));
        }
        sql.push(')');
    }
    conn.execute(&sql, values)?;
    Ok(())
}
