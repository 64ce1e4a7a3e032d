//! How entities map to rows, and the [`Writer`] that writes a row and its change-log entry in
//! the same transaction.
//!
//! An entity's serde form *is* its row: each serialised field is a column of the same name.
//! That single mapping is used for the row, for the field-level change-log entry and (later)
//! for applying changes received by sync, so the three cannot drift apart.

use crate::clock::Clock;
use crate::domain::*;
use crate::error::{Error, Result};
use feltkontor_wire::{DeviceId, EntityKind, Hlc, OpId};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, OptionalExtension, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use uuid::Uuid;

pub trait Record: Serialize + DeserializeOwned {
    const KIND: EntityKind;
    const TABLE: &'static str;
    /// Every serialised field, in column order; `id` first.
    const COLUMNS: &'static [&'static str];
    /// Columns stored as 0/1 that are booleans in the entity.
    const BOOL_COLUMNS: &'static [&'static str] = &[];
    /// Columns stored as JSON text (sets).
    const JSON_COLUMNS: &'static [&'static str] = &[];
    /// The search index kept for this table, if any.
    const FTS: Option<FtsIndex> = None;
    fn uuid(&self) -> Uuid;
}

/// SQL text built once per table and purpose: the statements run for every record of a
/// pull are not formatted again each time. (A bounded set: tables × purposes.)
pub(crate) fn sql_once(
    table: &'static str,
    purpose: &'static str,
    build: impl FnOnce() -> String,
) -> &'static str {
    type Cache =
        std::sync::Mutex<std::collections::HashMap<(&'static str, &'static str), &'static str>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let mut map = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry((table, purpose))
        .or_insert_with(|| Box::leak(build().into_boxed_str()))
}

/// A full-text index kept in step with its table: `(columns, insert-select expressions)`.
pub struct FtsIndex {
    pub table: &'static str,
    pub columns: &'static str,
    pub exprs: &'static str,
}

macro_rules! record {
    ($ty:ty, $kind:ident, $table:literal $(, bools = [$($b:literal),*])? $(, json = [$($j:literal),*])? $(, fts = $fts:expr)?) => {
        impl Record for $ty {
            const KIND: EntityKind = EntityKind::$kind;
            const TABLE: &'static str = $table;
            // The domain's list of the kind's fields: the row, the change log and the
            // service's check of a change's fields cannot drift apart.
            const COLUMNS: &'static [&'static str] =
                crate::domain::write::fields_of(EntityKind::$kind);
            $(const BOOL_COLUMNS: &'static [&'static str] = &[$($b),*];)?
            $(const JSON_COLUMNS: &'static [&'static str] = &[$($j),*];)?
            $(const FTS: Option<FtsIndex> = Some($fts);)?
            fn uuid(&self) -> Uuid {
                self.id.0
            }
        }
    };
}

record!(Team, Team, "teams");
record!(Staff, Staff, "staff");
record!(TeamMember, TeamMember, "team_members");
record!(Case, Case, "cases");
record!(Participant, Participant, "participants");
record!(Handover, Handover, "handovers");
record!(
    Person,
    Person,
    "persons",
    bools = [
        "custody",
        "protected_address",
        "interpreter_needed",
        "do_not_contact"
    ],
    fts = FtsIndex {
        table: "persons_fts",
        columns: "name, relation, address",
        exprs: "fold_da(name), fold_da(relation_label_da(relation)),
                CASE WHEN protected_address THEN '' ELSE fold_da(COALESCE(address, '')) END"
    }
);
record!(Phone, Phone, "phones");
record!(Relation, Relation, "relations");
record!(
    CaseNote,
    Note,
    "notes",
    bools = ["statutory"],
    fts = FtsIndex {
        table: "notes_fts",
        columns: "body, child_words, family_perspective",
        exprs: "fold_da(body), fold_da(child_words), fold_da(family_perspective)"
    }
);
record!(Consent, Consent, "consents", json = ["sectors"]);
record!(Agreement, Agreement, "agreements");

record!(Conflict, Conflict, "conflicts");
record!(
    Appointment,
    Appointment,
    "appointments",
    bools = ["cancelled"],
    json = ["invited_persons", "invited_staff"]
);

pub(crate) fn select_sql<T: Record>() -> String {
    format!("SELECT {} FROM {}", T::COLUMNS.join(", "), T::TABLE)
}

/// The columns of `T`, qualified with its table name, for joins.
pub(crate) fn qualified_columns<T: Record>() -> String {
    T::COLUMNS
        .iter()
        .map(|c| format!("{}.{c}", T::TABLE))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Decodes one row selected with [`select_sql`] into `T`.
pub(crate) fn from_row<T: Record>(row: &rusqlite::Row<'_>) -> rusqlite::Result<T> {
    let map = row_fields::<T>(row)?;
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn row_fields<T: Record>(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<Map<String, Value>> {
    let mut map = Map::new();
    for (i, col) in T::COLUMNS.iter().enumerate() {
        let v: SqlValue = row.get(i)?;
        let json = match v {
            SqlValue::Null => Value::Null,
            SqlValue::Integer(n) if T::BOOL_COLUMNS.contains(col) => Value::Bool(n != 0),
            SqlValue::Integer(n) => Value::from(n),
            SqlValue::Real(f) => Value::from(f),
            SqlValue::Text(s) if T::JSON_COLUMNS.contains(col) => serde_json::from_str(&s)
                .map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        i,
                        rusqlite::types::Type::Text,
                        Box::new(e),
                    )
                })?,
            SqlValue::Text(s) => Value::String(s),
            SqlValue::Blob(_) => Value::Null,
        };
        map.insert((*col).to_owned(), json);
    }
    Ok(map)
}

/// Rewrites `id`'s entry in `T`'s search index (none when archived or gone).
pub(crate) fn reindex<T: Record>(conn: &rusqlite::Connection, id: Uuid) -> Result<()> {
    if let Some(fts) = T::FTS {
        conn.prepare_cached(sql_once(T::TABLE, "unindex", || {
            format!(
                "DELETE FROM {} WHERE rowid = (SELECT rid FROM {} WHERE id = ?1)",
                fts.table,
                T::TABLE
            )
        }))?
        .execute([id.to_string()])?;
    }
    index_new::<T>(conn, id)
}

/// The search entry of a record just inserted (it has none to replace). A row above the
/// table's search backlog (see `search_backlog`) is left for the catch-up.
pub(crate) fn index_new<T: Record>(conn: &rusqlite::Connection, id: Uuid) -> Result<()> {
    if let Some(fts) = T::FTS {
        let indexed = conn.prepare_cached(sql_once(T::TABLE, "index", || {
            format!(
                "INSERT INTO {fts_table} (rowid, {cols}) SELECT rid, {exprs} FROM {table}
                 WHERE id = ?1 AND archived = 0
                   AND rid <= COALESCE((SELECT indexed_upto FROM search_backlog WHERE tbl = '{table}'),
                                       9223372036854775807)",
                fts_table = fts.table,
                cols = fts.columns,
                exprs = fts.exprs,
                table = T::TABLE
            )
        }))?
        .execute([id.to_string()])?;
        // Its words join the search vocabulary (`search.rs`).
        if indexed > 0 {
            super::search::add_to_vocabulary(conn, &fts, T::TABLE, id)?;
        }
    }
    Ok(())
}

pub(crate) fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => n
            .as_i64()
            .map(SqlValue::Integer)
            .unwrap_or_else(|| SqlValue::Real(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

fn to_fields<T: Record>(entity: &T) -> Result<Map<String, Value>> {
    match serde_json::to_value(entity).map_err(|e| Error::Corrupt(e.to_string()))? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::Corrupt(format!(
            "{} did not serialise to an object",
            T::TABLE
        ))),
    }
}

/// Writes entities and their change-log entries inside one transaction. Obtained from
/// [`crate::Store::write`]; nothing is visible to anyone until the closure returns `Ok`.
pub struct Writer<'a> {
    pub(crate) tx: Transaction<'a>,
    pub(crate) device: DeviceId,
    pub(crate) worker: feltkontor_wire::StaffId,
    pub(crate) next_seq: u64,
    pub(crate) hlc: Hlc,
    pub(crate) clock: &'a dyn Clock,
}

impl<'a> Writer<'a> {
    pub(crate) fn begin(
        tx: Transaction<'a>,
        clock: &'a dyn Clock,
        worker: feltkontor_wire::StaffId,
    ) -> Result<Self> {
        let (device, next_seq, hlc): (String, u64, String) = tx.query_row(
            "SELECT device_id, next_seq, hlc FROM device_state WHERE singleton = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let device: DeviceId = device
            .parse()
            .map_err(|_| Error::Corrupt("device id".into()))?;
        let hlc: Hlc = hlc
            .parse()
            .map_err(|e: feltkontor_wire::HlcParseError| Error::Corrupt(e.to_string()))?;
        Ok(Writer {
            tx,
            device,
            worker,
            next_seq,
            hlc,
            clock,
        })
    }

    pub(crate) fn finish(self) -> Result<()> {
        self.tx.execute(
            "UPDATE device_state SET next_seq = ?1, hlc = ?2 WHERE singleton = 1",
            params![self.next_seq, self.hlc.to_string()],
        )?;
        self.tx.commit()?;
        Ok(())
    }

    pub fn now(&self) -> time::OffsetDateTime {
        normalize_timestamp(self.clock.now())
    }

    pub fn worker(&self) -> feltkontor_wire::StaffId {
        self.worker
    }

    /// Loads a live (not archived) entity.
    pub fn get<T: Record>(&self, id: Uuid) -> Result<Option<T>> {
        let sql = format!("{} WHERE id = ?1 AND archived = 0", select_sql::<T>());
        Ok(self
            .tx
            .prepare_cached(&sql)?
            .query_row([id.to_string()], from_row::<T>)
            .optional()?)
    }

    pub fn require<T: Record>(&self, id: Uuid) -> Result<T> {
        self.get(id)?.ok_or_else(|| Error::not_found(T::TABLE, id))
    }

    fn stored_fields<T: Record>(&self, id: Uuid) -> Result<Option<Map<String, Value>>> {
        let sql = format!("{} WHERE id = ?1", select_sql::<T>());
        Ok(self
            .tx
            .prepare_cached(&sql)?
            .query_row([id.to_string()], row_fields::<T>)
            .optional()?)
    }

    /// Inserts or updates `entity`, logging exactly the fields that changed. A write that
    /// changes nothing writes nothing and logs nothing; returns whether anything changed.
    pub fn put<T: Record>(&mut self, entity: &T) -> Result<bool> {
        let id = entity.uuid();
        let new = to_fields(entity)?;
        let old = self.stored_fields::<T>(id)?;
        let mut changed: BTreeMap<String, Value> = new
            .iter()
            .filter(|(k, v)| old.as_ref().is_none_or(|o| o.get(*k) != Some(*v)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        changed.remove("id");
        if old.is_some() && changed.is_empty() {
            return Ok(false);
        }
        let base = match old {
            Some(_) => self.field_clocks::<T>(id, changed.keys())?,
            None => BTreeMap::new(),
        };
        let hlc = self.tick();
        if old.is_none() {
            // Every field of a new row was set by this write: one `*` entry says so.
            let clocks = serde_json::json!({ "*": hlc.to_string() });
            let cols = T::COLUMNS.join(", ");
            let marks = (1..=T::COLUMNS.len() + 1)
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO {} ({cols}, field_hlc) VALUES ({marks})",
                T::TABLE
            );
            let mut values: Vec<SqlValue> = T::COLUMNS.iter().map(|c| to_sql(&new[*c])).collect();
            values.push(SqlValue::Text(clocks.to_string()));
            self.tx
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(values))?;
        } else {
            let clocks: Map<String, Value> = changed
                .keys()
                .map(|k| (k.clone(), Value::String(hlc.to_string())))
                .collect();
            let sets = changed
                .keys()
                .enumerate()
                .map(|(i, k)| format!("{k} = ?{}", i + 1))
                .collect::<Vec<_>>()
                .join(", ");
            let n = changed.len();
            let sql = format!(
                "UPDATE {} SET {sets}, field_hlc = json_patch(field_hlc, ?{}) WHERE id = ?{}",
                T::TABLE,
                n + 1,
                n + 2
            );
            let mut values: Vec<SqlValue> = changed.values().map(to_sql).collect();
            values.push(SqlValue::Text(Value::Object(clocks).to_string()));
            values.push(SqlValue::Text(id.to_string()));
            self.tx
                .prepare_cached(&sql)?
                .execute(rusqlite::params_from_iter(values))?;
        }
        self.reindex::<T>(id)?;
        self.log(T::KIND, id, changed, hlc, base)?;
        Ok(true)
    }

    /// Sets one field of a stored record to `value` (JSON, as the record serialises it),
    /// checked by the record's own type, and logs it like any change.
    pub(crate) fn set_field<T: Record>(
        &mut self,
        id: Uuid,
        field: &str,
        value: &Value,
    ) -> Result<()> {
        if field == "id" || field == "case_id" || !T::COLUMNS.contains(&field) {
            return Err(Error::Corrupt(format!(
                "{} has no field {field} to set",
                T::TABLE
            )));
        }
        let mut fields = self
            .stored_fields::<T>(id)?
            .ok_or_else(|| Error::not_found(T::TABLE, id))?;
        fields.insert(field.to_owned(), value.clone());
        let entity: T = serde_json::from_value(Value::Object(fields))
            .map_err(|e| Error::Corrupt(format!("{field}: {e}")))?;
        self.put(&entity)?;
        Ok(())
    }

    /// The clocks `fields` of `id` have now (a field without its own clock has the row's `*`).
    fn field_clocks<'k, T: Record>(
        &self,
        id: Uuid,
        fields: impl Iterator<Item = &'k String>,
    ) -> Result<BTreeMap<String, String>> {
        let text: String = self
            .tx
            .prepare_cached(&format!("SELECT field_hlc FROM {} WHERE id = ?1", T::TABLE))?
            .query_row([id.to_string()], |r| r.get(0))?;
        let clocks: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| Error::Corrupt(format!("field_hlc: {e}")))?;
        Ok(fields
            .filter_map(|f| {
                clocks
                    .get(f)
                    .or_else(|| clocks.get("*"))
                    .map(|c| (f.clone(), c.clone()))
            })
            .collect())
    }

    /// Archives (tombstones) an entity: it disappears from every query and the change log
    /// carries `archived = true`. Returns whether it was live.
    pub fn archive<T: Record>(&mut self, id: Uuid) -> Result<bool> {
        let hlc = self.tick();
        let clocks = serde_json::json!({ "archived": hlc.to_string() }).to_string();
        let n = self.tx.prepare_cached(&format!(
            "UPDATE {} SET archived = 1, field_hlc = json_patch(field_hlc, ?1) WHERE id = ?2 AND archived = 0",
            T::TABLE
        ))?
        .execute(params![clocks, id.to_string()])?;
        if n == 0 {
            return Ok(false);
        }
        self.reindex::<T>(id)?;
        self.log(
            T::KIND,
            id,
            BTreeMap::from([("archived".to_owned(), Value::Bool(true))]),
            hlc,
            BTreeMap::new(),
        )?;
        Ok(true)
    }

    fn reindex<T: Record>(&self, id: Uuid) -> Result<()> {
        reindex::<T>(&self.tx, id)
    }

    fn tick(&mut self) -> Hlc {
        self.hlc = self.hlc.tick(self.clock.now_ms());
        self.hlc
    }

    /// Appends the change-log entry of one mutation: its changed fields' new values, stamped
    /// with the mutation's timestamp (read back per field by `Store::change_log`).
    fn log(
        &mut self,
        entity: EntityKind,
        entity_id: Uuid,
        changed: BTreeMap<String, Value>,
        hlc: Hlc,
        base: BTreeMap<String, String>,
    ) -> Result<()> {
        let fields = Value::Object(changed.into_iter().collect()).to_string();
        let base = (!base.is_empty())
            .then(|| serde_json::to_string(&base).map_err(|e| Error::Corrupt(e.to_string())))
            .transpose()?;
        self.tx
            .prepare_cached(
                "INSERT INTO change_log (seq, op_id, device_id, entity, entity_id, hlc, fields, base)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                self.next_seq,
                OpId::new().to_string(),
                self.device.to_string(),
                entity.as_str(),
                entity_id.to_string(),
                hlc.to_string(),
                fields,
                base
            ])?;
        self.next_seq += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns_match_serde<T: Record>(sample: T) {
        let fields = to_fields(&sample).unwrap();
        let mut keys: Vec<_> = fields.keys().map(String::as_str).collect();
        let mut cols = T::COLUMNS.to_vec();
        keys.sort_unstable();
        cols.sort_unstable();
        assert_eq!(keys, cols, "{}", T::TABLE);
    }

    #[test]
    fn every_record_maps_each_serialised_field_to_a_column() {
        let s = crate::testing::Sample::new();
        columns_match_serde(s.team.clone());
        columns_match_serde(s.staff.clone());
        columns_match_serde(TeamMember {
            id: Default::default(),
            team_id: s.team.id,
            staff_id: s.staff.id,
        });
        columns_match_serde(s.case.clone());
        columns_match_serde(s.person.clone());
        columns_match_serde(s.note.clone());
        columns_match_serde(s.consent.clone());
        columns_match_serde(s.agreement.clone());
        columns_match_serde(s.participant.clone());
        columns_match_serde(s.phone.clone());
        columns_match_serde(s.relation.clone());
        columns_match_serde(s.handover.clone());
    }
}
