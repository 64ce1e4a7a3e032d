//! The service's copy of every synced entity: one row per record, the entity's JSON form with
//! the clock of each field, merged field by field (last writer wins by hybrid logical clock).
//! The projections that authorization needs (`case_index`, `members_index`,
//! `participant_index`) are rewritten in the same transaction as the record.

use crate::db::Conn;
use crate::error::{Result, ServiceError};
use crate::params;
use feltkontor_wire::{ChangeEntry, DeviceId, EntityKind, FieldChange, Hlc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

/// The service's own clock identity, for records it writes itself (admin commands).
pub const SERVER_DEVICE: DeviceId =
    DeviceId(Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001));

/// A stored record.
#[derive(Debug, Clone)]
pub struct Stored {
    pub entity: EntityKind,
    pub id: Uuid,
    pub case_id: Option<Uuid>,
    pub data: Map<String, Value>,
    pub archived: bool,
}

/// The case a record belongs to; `None` for reference data (teams, staff, memberships).
pub(crate) fn case_of(
    entity: EntityKind,
    id: Uuid,
    data: &Map<String, Value>,
) -> Result<Option<Uuid>> {
    match entity {
        EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember => Ok(None),
        EntityKind::Case => Ok(Some(id)),
        _ => data
            .get("case_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                ServiceError::invalid("case_id", format!("a {} needs its case", entity.as_str()))
            }),
    }
}

type FieldClocks = BTreeMap<String, Hlc>;

fn parse_clocks(s: &str) -> Result<FieldClocks> {
    serde_json::from_str(s).map_err(|e| ServiceError::internal(format!("field_hlc: {e}")))
}

/// Merges one change-log entry. Each field is taken if its clock is newer than the stored
/// field's; `archived: true` is a tombstone like any other field. Returns whether anything
/// changed.
pub fn apply(conn: &mut dyn Conn, entry: &ChangeEntry) -> Result<bool> {
    apply_detecting(conn, entry).map(|(changed, _, _)| changed)
}

/// A field two devices wrote without seeing each other's write.
#[derive(Debug, Clone)]
pub struct Concurrent {
    pub field: String,
    /// The value and clock the service held.
    pub held: Value,
    pub held_hlc: Hlc,
    /// The value and clock that arrived.
    pub incoming: Value,
    pub incoming_hlc: Hlc,
}

/// A change-log entry merged with the stored record, not yet written.
#[derive(Debug, Clone)]
pub struct Merge {
    pub entity: EntityKind,
    pub id: Uuid,
    /// The stored record before the merge (live or archived), with its `id`.
    pub before: Option<Stored>,
    /// The record as it stands after the merge, with its `id`.
    pub data: Map<String, Value>,
    pub clocks: BTreeMap<String, Hlc>,
    pub archived: bool,
    /// Whether any field was taken.
    pub changed: bool,
    /// Every field whose incoming write was concurrent with the stored one (its `base` is not
    /// the stored clock) and carried another value.
    pub concurrent: Vec<Concurrent>,
}

impl Merge {
    /// The record as its writer wrote it: the stored record with every field of the entry,
    /// whatever the clocks (what the writer saw and meant).
    pub fn as_written(&self, entry: &ChangeEntry) -> (Map<String, Value>, bool) {
        let mut data = self
            .before
            .as_ref()
            .map(|b| b.data.clone())
            .unwrap_or_default();
        let mut archived = self.before.as_ref().is_some_and(|b| b.archived);
        for (field, change) in &entry.fields {
            if field == "archived" {
                archived = change.value.as_bool().unwrap_or(false);
            } else {
                data.insert(field.clone(), change.value.clone());
            }
        }
        data.insert("id".into(), Value::String(entry.entity_id.to_string()));
        (data, archived)
    }
}

/// Merges one change-log entry with the stored record, in memory: each field is taken if its
/// clock is newer than the stored field's; `archived: true` is a tombstone like any other field.
pub fn merge(conn: &mut dyn Conn, entry: &ChangeEntry) -> Result<Merge> {
    let entity = entry.entity;
    let existing = conn.query_one(
        "SELECT data, field_hlc, archived FROM records WHERE entity = $1 AND id = $2",
        params![entity.as_str(), entry.entity_id],
    )?;
    let (mut data, mut clocks, mut archived) = match &existing {
        Some(r) => (
            serde_json::from_str::<Map<String, Value>>(&r.text(0)?)
                .map_err(|e| ServiceError::internal(format!("record data: {e}")))?,
            parse_clocks(&r.text(1)?)?,
            r.int(2)? != 0,
        ),
        None => (Map::new(), FieldClocks::new(), false),
    };
    let before = match &existing {
        Some(_) => {
            let mut d = data.clone();
            d.insert("id".into(), Value::String(entry.entity_id.to_string()));
            Some(Stored {
                entity,
                id: entry.entity_id,
                case_id: case_of(entity, entry.entity_id, &d).ok().flatten(),
                data: d,
                archived,
            })
        }
        None => None,
    };
    let mut changed = false;
    let mut concurrent = Vec::new();
    for (field, FieldChange { value, hlc, base }) in &entry.fields {
        let current = clocks.get(field).or_else(|| clocks.get("*")).copied();
        if let (Some(_), Some(held_hlc), Some(base)) = (&existing, current, base) {
            let held = data.get(field).cloned().unwrap_or(Value::Null);
            if held_hlc != *base && held != *value && field != "archived" {
                concurrent.push(Concurrent {
                    field: field.clone(),
                    held,
                    held_hlc,
                    incoming: value.clone(),
                    incoming_hlc: *hlc,
                });
            }
        }
        if existing.is_some() && current.is_some_and(|c| *hlc <= c) {
            continue;
        }
        changed = true;
        if field == "archived" {
            archived = value.as_bool().unwrap_or(false);
        } else {
            data.insert(field.clone(), value.clone());
        }
        clocks.insert(field.clone(), *hlc);
    }
    data.insert("id".into(), Value::String(entry.entity_id.to_string()));
    Ok(Merge {
        entity,
        id: entry.entity_id,
        before,
        data,
        clocks,
        archived,
        changed,
        concurrent,
    })
}

/// Writes a merged record (when it changed) and its projections; returns it as it stands.
pub fn store(conn: &mut dyn Conn, m: Merge) -> Result<Stored> {
    let Merge {
        entity,
        id,
        before,
        data,
        mut clocks,
        archived,
        changed,
        ..
    } = m;
    let case_id = case_of(entity, id, &data)?;
    if changed {
        compact(&mut clocks);
        // On PostgreSQL, row-level security checks the record against the projections: a new
        // case must be in `case_index` before its record goes in, and an existing record is
        // written while the projections still show the scope the write was checked against
        // (a coordinator outside the team hands the case over, and then no longer sees it).
        let new = before.is_none();
        if new {
            project(conn, entity, id, &data, archived)?;
            let author = match entity {
                EntityKind::Note => data.get("author_id").and_then(Value::as_str),
                _ => None,
            };
            conn.execute(
                "INSERT INTO record_ids (id, entity, case_id, author_id) VALUES ($1, $2, $3, $4)",
                params![id, entity.as_str(), case_id, author],
            )?;
        }
        // The record's number in its bucket; a record that moved (never, ids keep their case)
        // leaves its old bucket one record lighter.
        let moved = before
            .as_ref()
            .map(|b| b.case_id)
            .filter(|old| *old != case_id);
        if let Some(old) = moved {
            conn.execute(
                "UPDATE bucket_heads SET records = records - 1 WHERE bucket = $1",
                params![bucket_key(old)],
            )?;
        }
        let seq = next_seq(conn, case_id, new || moved.is_some())?;
        conn.execute(
            "INSERT INTO records (entity, id, case_id, data, field_hlc, archived, seq) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (entity, id) DO UPDATE SET case_id = excluded.case_id, data = excluded.data,
               field_hlc = excluded.field_hlc, archived = excluded.archived, seq = excluded.seq",
            params![
                entity.as_str(),
                id,
                case_id,
                Value::Object(data.clone()).to_string(),
                serde_json::to_string(&clocks).expect("clocks serialise"),
                archived,
                seq
            ],
        )?;
        if !new {
            project(conn, entity, id, &data, archived)?;
        }
    }
    Ok(Stored {
        entity,
        id,
        case_id,
        data,
        archived,
    })
}

/// Who created a note (from the register of ids: known even when the note's case is out of the
/// asking worker's sight).
pub fn note_author(conn: &mut dyn Conn, note: Uuid) -> Result<Option<Uuid>> {
    Ok(conn
        .query_one(
            "SELECT author_id FROM record_ids WHERE id = $1 AND entity = 'note'",
            params![note],
        )?
        .and_then(|r| r.opt_text(0).ok().flatten())
        .and_then(|s| s.parse().ok()))
}

/// Where an id was first used: its kind and case. An id never moves to another kind or case.
pub fn id_use(conn: &mut dyn Conn, id: Uuid) -> Result<Option<(String, Option<Uuid>)>> {
    conn.query_one(
        "SELECT entity, case_id FROM record_ids WHERE id = $1",
        params![id],
    )?
    .map(|r| Ok((r.text(0)?, r.opt_text(1)?.and_then(|s| s.parse().ok()))))
    .transpose()
}

/// [`merge`] and [`store`]: the merge's conflicts and the record as it now stands (the writer
/// may no longer be allowed to read it back).
pub fn apply_detecting(
    conn: &mut dyn Conn,
    entry: &ChangeEntry,
) -> Result<(bool, Vec<Concurrent>, Stored)> {
    let m = merge(conn, entry)?;
    let changed = m.changed;
    let concurrent = m.concurrent.clone();
    let stored = store(conn, m)?;
    Ok((changed, concurrent, stored))
}

/// A record whose every field has its own clock stores the most common clock once, as "*".
/// Once "*" exists it stands for the fields not listed and is never moved: moving it would
/// change the clock of fields no write touched.
fn compact(clocks: &mut FieldClocks) {
    if clocks.contains_key("*") {
        return;
    }
    let mut counts: BTreeMap<Hlc, usize> = BTreeMap::new();
    for v in clocks.values() {
        *counts.entry(*v).or_default() += 1;
    }
    let Some((&common, _)) = counts.iter().max_by_key(|(h, n)| (**n, **h)) else {
        return;
    };
    clocks.retain(|_, v| *v != common);
    clocks.insert("*".into(), common);
}

/// A bucket's key in `bucket_heads`: the case id, or '' for the team's reference data.
pub fn bucket_key(case: Option<Uuid>) -> String {
    case.map(|c| c.to_string()).unwrap_or_default()
}

/// The next sequence number in the record's bucket: its head raised (one row per bucket, so
/// writers of different cases never wait for each other; writers of one case take turns, which
/// keeps every bucket's numbers in commit order, as a device's cursor needs). `added`: the
/// write adds a record to the bucket.
fn next_seq(conn: &mut dyn Conn, case: Option<Uuid>, added: bool) -> Result<i64> {
    conn.query_one(
        "INSERT INTO bucket_heads (bucket, seq, records) VALUES ($1, 1, $2)
         ON CONFLICT (bucket) DO UPDATE SET seq = bucket_heads.seq + 1,
           records = bucket_heads.records + excluded.records
         RETURNING seq",
        params![bucket_key(case), i64::from(added)],
    )?
    .ok_or_else(|| ServiceError::internal("bucket head missing"))?
    .int(0)
}

fn text_field(data: &Map<String, Value>, f: &str) -> Result<String> {
    data.get(f)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ServiceError::invalid(f, format!("{f} is required")))
}

pub(crate) fn project(
    conn: &mut dyn Conn,
    entity: EntityKind,
    id: Uuid,
    data: &Map<String, Value>,
    archived: bool,
) -> Result<()> {
    match entity {
        EntityKind::Case if archived => {
            conn.execute("DELETE FROM case_index WHERE case_id = $1", params![id])?;
        }
        EntityKind::Case => {
            let values = params![
                id,
                text_field(data, "team_id")?,
                text_field(data, "coordinator_id")?,
                text_field(data, "status")?
            ];
            // Not `INSERT … ON CONFLICT DO UPDATE`: on PostgreSQL that needs the new row to pass
            // the SELECT policy, which looks the case up in this very table, so a worker could
            // never open a new case from a device.
            let updated = conn.execute(
                "UPDATE case_index SET team_id = $2, coordinator_id = $3, status = $4
                 WHERE case_id = $1",
                values,
            )?;
            if updated == 0 {
                // Already there but hidden by row-level security: a case outside the worker's
                // scope, refused as such (on SQLite the scope check before refuses it).
                conn.execute(
                    "INSERT INTO case_index (case_id, team_id, coordinator_id, status)
                     VALUES ($1, $2, $3, $4)",
                    values,
                )
                .map_err(|e| match e.code {
                    crate::ErrorCode::Conflict => ServiceError::new(
                        crate::ErrorCode::Forbidden,
                        "The change concerns data outside the worker's cases.",
                    ),
                    _ => e,
                })?;
            }
        }
        EntityKind::TeamMember if archived => {
            conn.execute(
                "DELETE FROM members_index WHERE member_id = $1",
                params![id],
            )?;
        }
        EntityKind::TeamMember => {
            conn.execute(
                "INSERT INTO members_index (member_id, team_id, staff_id) VALUES ($1, $2, $3)
                 ON CONFLICT (member_id) DO UPDATE SET team_id = excluded.team_id, staff_id = excluded.staff_id",
                params![id, text_field(data, "team_id")?, text_field(data, "staff_id")?],
            )?;
        }
        EntityKind::Participant if archived => {
            conn.execute(
                "DELETE FROM participant_index WHERE participant_id = $1",
                params![id],
            )?;
        }
        EntityKind::Participant => {
            let legal_basis = data
                .get("legal_basis")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.trim().is_empty());
            conn.execute(
                "INSERT INTO participant_index (participant_id, case_id, staff_id, legal_basis) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (participant_id) DO UPDATE SET case_id = excluded.case_id,
                   staff_id = excluded.staff_id, legal_basis = excluded.legal_basis",
                params![id, text_field(data, "case_id")?, text_field(data, "staff_id")?, legal_basis],
            )?;
        }
        _ => {}
    }
    Ok(())
}

/// Writes a whole record as the service (admin commands): every field with one new clock.
pub fn put<T: serde::Serialize>(
    conn: &mut dyn Conn,
    entity: EntityKind,
    id: Uuid,
    value: &T,
) -> Result<()> {
    let Value::Object(map) =
        serde_json::to_value(value).map_err(|e| ServiceError::internal(e.to_string()))?
    else {
        return Err(ServiceError::internal("a record serialises to an object"));
    };
    write_as_service(conn, entity, id, map)
}

/// Archives a record as the service.
pub fn archive(conn: &mut dyn Conn, entity: EntityKind, id: Uuid) -> Result<()> {
    let fields = Map::from_iter([("archived".to_owned(), Value::Bool(true))]);
    write_as_service(conn, entity, id, fields)
}

/// Applies `fields` as one change of the service's own, stamped with one new clock.
fn write_as_service(
    conn: &mut dyn Conn,
    entity: EntityKind,
    id: Uuid,
    fields: Map<String, Value>,
) -> Result<()> {
    let hlc = server_hlc()?;
    let fields = fields
        .into_iter()
        .map(|(k, value)| {
            let change = FieldChange {
                value,
                hlc,
                base: None,
            };
            (k, change)
        })
        .collect();
    apply(
        conn,
        &ChangeEntry {
            op_id: feltkontor_wire::OpId::new(),
            seq: 0,
            device: SERVER_DEVICE,
            entity,
            entity_id: id,
            fields,
        },
    )?;
    Ok(())
}

/// A clock for the service's own writes: after every clock it has stored.
fn server_hlc() -> Result<Hlc> {
    let now = crate::now_ms() as u64;
    // Millisecond wall clock; the counter part keeps this process's writes in the same
    // millisecond ordered.
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    Ok(Hlc {
        wall_ms: now,
        counter: COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        device: SERVER_DEVICE,
    })
}

/// Decodes a row selected as `entity, id, case_id, data, archived, …`.
pub fn read_row(r: &crate::db::Row) -> Result<Stored> {
    read(r)
}

fn read(r: &crate::db::Row) -> Result<Stored> {
    let entity = r.text(0)?;
    Ok(Stored {
        entity: EntityKind::parse(&entity)
            .ok_or_else(|| ServiceError::internal(format!("unknown entity {entity}")))?,
        id: r.uuid(1)?,
        case_id: r.opt_text(2)?.and_then(|s| s.parse().ok()),
        data: serde_json::from_str(&r.text(3)?)
            .map_err(|e| ServiceError::internal(format!("record data: {e}")))?,
        archived: r.int(4)? != 0,
    })
}

/// One live (not archived) record.
pub fn get(conn: &mut dyn Conn, entity: EntityKind, id: Uuid) -> Result<Option<Stored>> {
    conn.query_one(
        "SELECT entity, id, case_id, data, archived FROM records WHERE entity = $1 AND id = $2 AND archived = 0",
        params![entity.as_str(), id],
    )?
    .map(|r| read(&r))
    .transpose()
}

/// A record, live or archived.
pub fn get_any(conn: &mut dyn Conn, entity: EntityKind, id: Uuid) -> Result<Option<Stored>> {
    conn.query_one(
        "SELECT entity, id, case_id, data, archived FROM records WHERE entity = $1 AND id = $2",
        params![entity.as_str(), id],
    )?
    .map(|r| read(&r))
    .transpose()
}

/// Typed form of a live record.
pub fn get_as<T: serde::de::DeserializeOwned>(
    conn: &mut dyn Conn,
    entity: EntityKind,
    id: Uuid,
) -> Result<Option<T>> {
    get(conn, entity, id)?.map(|s| decode(&s)).transpose()
}

pub fn decode<T: serde::de::DeserializeOwned>(s: &Stored) -> Result<T> {
    serde_json::from_value(Value::Object(s.data.clone()))
        .map_err(|e| ServiceError::internal(format!("{} {}: {e}", s.entity.as_str(), s.id)))
}

/// The records matching `filter` whose `column` is one of `ids`, asked in batches of 500
/// (both engines' limits on parameters stay far away).
pub fn where_in(
    conn: &mut dyn Conn,
    filter: &str,
    column: &str,
    ids: &[Uuid],
) -> Result<Vec<Stored>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        let marks = (1..=chunk.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let values: Vec<crate::db::Value> = chunk.iter().map(|c| (*c).into()).collect();
        for row in conn.query(
            &format!(
                "SELECT entity, id, case_id, data, archived FROM records
                 WHERE {filter} AND {column} IN ({marks})"
            ),
            &values,
        )? {
            out.push(read_row(&row)?);
        }
    }
    Ok(out)
}

/// Every live record of a case.
pub fn of_case(conn: &mut dyn Conn, case: Uuid) -> Result<Vec<Stored>> {
    conn.query(
        "SELECT entity, id, case_id, data, archived FROM records WHERE case_id = $1 AND archived = 0",
        params![case],
    )?
    .iter()
    .map(read)
    .collect()
}

/// Every live record of one kind of reference data.
pub fn all_of(conn: &mut dyn Conn, entity: EntityKind) -> Result<Vec<Stored>> {
    conn.query(
        "SELECT entity, id, case_id, data, archived FROM records WHERE entity = $1 AND case_id IS NULL AND archived = 0",
        params![entity.as_str()],
    )?
    .iter()
    .map(read)
    .collect()
}

/// Every live record of one kind in a case.
pub fn of_case_kind(conn: &mut dyn Conn, case: Uuid, entity: EntityKind) -> Result<Vec<Stored>> {
    conn.query(
        "SELECT entity, id, case_id, data, archived FROM records WHERE case_id = $1 AND entity = $2 AND archived = 0",
        params![case, entity.as_str()],
    )?
    .iter()
    .map(read)
    .collect()
}
