//! A case's change history: one row per change the service applied to a record of the case,
//! written in the change's transaction (who, from which device, when, which record, which
//! fields). Read by the case's participants through [`crate::visibility::history_fields`].

use crate::db::Conn;
use crate::error::Result;
use crate::params;
use feltkontor_wire::ChangeEntry;
use feltkontor_wire::EntityKind;
use uuid::Uuid;

/// The most entries one page of history holds.
pub const PAGE: i64 = 200;

#[derive(Debug, Clone)]
pub struct Row {
    pub seq: i64,
    pub at_ms: i64,
    pub staff_id: Uuid,
    pub device_id: Uuid,
    pub entity: EntityKind,
    pub entity_id: Uuid,
    pub fields: Vec<String>,
}

/// Records that `staff` on `device` applied `change` to a record of `case`, changing `fields`.
pub fn record(
    conn: &mut dyn Conn,
    (staff, device): (Uuid, Uuid),
    change: &ChangeEntry,
    fields: &[String],
    case: Uuid,
    at_ms: i64,
) -> Result<()> {
    let fields = serde_json::to_string(fields).unwrap_or_else(|_| "[]".into());
    conn.execute(
        "INSERT INTO case_history (case_id, at, staff_id, device_id, entity, entity_id, fields)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        params![
            case,
            at_ms,
            staff,
            device,
            change.entity.as_str(),
            change.entity_id,
            fields.as_str()
        ],
    )?;
    Ok(())
}

/// Up to `limit` rows of `case`'s history older than `before` (all when `None`), newest first.
pub fn page(conn: &mut dyn Conn, case: Uuid, before: Option<i64>, limit: i64) -> Result<Vec<Row>> {
    let rows = conn.query(
        "SELECT seq, at, staff_id, device_id, entity, entity_id, fields FROM case_history
         WHERE case_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
        params![case, before.unwrap_or(i64::MAX), limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let bad = || crate::error::ServiceError::internal("a case history row is unreadable");
        out.push(Row {
            seq: r.int(0)?,
            at_ms: r.int(1)?,
            staff_id: r.text(2)?.parse().map_err(|_| bad())?,
            device_id: r.text(3)?.parse().map_err(|_| bad())?,
            entity: EntityKind::parse(&r.text(4)?).ok_or_else(bad)?,
            entity_id: r.text(5)?.parse().map_err(|_| bad())?,
            fields: serde_json::from_str(&r.text(6)?).map_err(|_| bad())?,
        });
    }
    Ok(out)
}
