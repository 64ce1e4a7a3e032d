//! Sync on the service: applying a device's pushed change log exactly once, and answering a
//! pull with what the worker may see, bucket by bucket.
//!
//! Push: entries are numbered 1, 2, 3, … per device; `device_sync.pushed_seq` says how far the
//! device's log is done. A retried request re-sends entries the service already has: they are
//! skipped. An entry after a gap refuses the whole request (nothing changes). Each new entry is
//! checked (the worker's scope, signed notes, the record's own validation) and applied inside a
//! savepoint: a refused entry is rolled back alone, recorded in `push_rejections`, and does
//! not block the entries after it. Applied and refused entries are audited in the same
//! transaction.
//!
//! Pull: buckets are `team` (reference data) and `case:<id>` for every case the worker has
//! full access to. Records come in the service's sequence order per bucket, after the device's
//! cursor; a colleague's draft, a note for another discipline and a protected address for a
//! non-participant are never sent.

use crate::audit::AuditEvent;
use crate::authz::{self, Actor, CaseAccess};
use crate::db::Conn;
use crate::error::{ErrorCode, Result, ServiceError};
use crate::params;
use crate::records::{self, Stored};
use feltkontor_core::domain::{rules, *};
use feltkontor_wire::sync::{
    case_bucket, record_digest, AccessUpload, AccessUploadResponse, BucketPage, PullRequest,
    PullResponse, PushRequest, PushResponse, QuarantineDecision, QuarantineList,
    QuarantineResolved, QuarantinedNote, RejectedChange, SyncRecord, VerifyRequest, VerifyResponse,
    MAX_ACCESS_ENTRIES, MAX_CLOCK_SKEW_MS, MAX_CRITERION_CHARS, MAX_PULL_RECORDS, MAX_PUSH_ENTRIES,
    TEAM_BUCKET,
};
use feltkontor_wire::{
    AccessAction, CaseId, ChangeEntry, EntityKind, Hlc, NoteStatus, Profession, RowId, StaffId,
};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Checks a push request's shape before anything is read: bounded, from this device, numbered
/// without gaps, clocks from this device and not from the future.
fn check_request(actor: &Actor, req: &PushRequest, now_ms: i64) -> Result<Vec<ChangeEntry>> {
    if req.entries.is_empty() {
        return Err(ServiceError::invalid(
            "entries",
            "A push needs at least one change.",
        ));
    }
    if req.entries.len() > MAX_PUSH_ENTRIES {
        return Err(ServiceError::invalid(
            "entries",
            format!("At most {MAX_PUSH_ENTRIES} changes per push."),
        ));
    }
    let mut entries = req.entries.clone();
    entries.sort_by_key(|e| e.seq);
    entries.dedup();
    for pair in entries.windows(2) {
        if pair[0].seq == pair[1].seq {
            return Err(ServiceError::invalid(
                "entries",
                format!("Two different changes carry number {}.", pair[0].seq),
            ));
        }
        if pair[1].seq != pair[0].seq + 1 {
            return Err(gap(pair[0].seq + 1));
        }
    }
    let horizon = now_ms.max(0) as u64 + MAX_CLOCK_SKEW_MS;
    for e in &entries {
        if e.device.0 != actor.device_id {
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "A device pushes only its own changes.",
            ));
        }
        if e.seq == 0 {
            return Err(ServiceError::invalid("seq", "Changes are numbered from 1."));
        }
        if e.fields.is_empty() {
            return Err(ServiceError::invalid(
                "fields",
                format!("Change {} changes nothing.", e.seq),
            ));
        }
        for change in e.fields.values() {
            if change.hlc.device != e.device {
                return Err(ServiceError::invalid(
                    "hlc",
                    format!("Change {} carries another device's clock.", e.seq),
                ));
            }
            if change.hlc.wall_ms > horizon {
                let minutes = (change.hlc.wall_ms - now_ms.max(0) as u64) / 60_000;
                return Err(ServiceError::new(
                    ErrorCode::ClockSkew,
                    format!(
                        "The device's clock is about {minutes} minutes ahead of the service's. Set the computer's clock; nothing was lost."
                    ),
                ));
            }
        }
    }
    Ok(entries)
}

fn gap(expected: u64) -> ServiceError {
    ServiceError::new(
        ErrorCode::SequenceGap,
        format!("Changes are missing: send again from change {expected}."),
    )
}

/// Applies a push for `actor` inside the caller's transaction.
pub fn push(
    conn: &mut dyn Conn,
    actor: &Actor,
    req: &PushRequest,
    now_ms: i64,
) -> Result<PushResponse> {
    let entries = check_request(actor, req, now_ms)?;
    let done = conn
        .query_one(
            "SELECT pushed_seq FROM device_sync WHERE device_id = $1",
            params![actor.device_id],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0) as u64;
    let duplicates = entries.iter().filter(|e| e.seq <= done).count() as u32;
    let fresh: Vec<&ChangeEntry> = entries.iter().filter(|e| e.seq > done).collect();
    if let Some(first) = fresh.first() {
        if first.seq != done + 1 {
            return Err(gap(done + 1));
        }
    }
    let mut applied = 0;
    // A re-delivered change the service refused before is reported as refused again: the
    // device may never have heard the first answer.
    let mut rejected = match entries.first() {
        Some(first) if duplicates > 0 => earlier_rejections(conn, actor, first.seq, done)?,
        _ => Vec::new(),
    };
    let mut events = Vec::new();
    for e in &fresh {
        conn.batch("SAVEPOINT change")?;
        match apply_one(conn, actor, e, now_ms) {
            Ok((case_id, conflicts)) => {
                conn.batch("RELEASE SAVEPOINT change")?;
                applied += 1;
                events.push(event(actor, e, case_id, "ok", describe(e)));
                for field in conflicts {
                    let mut ev = event(
                        actor,
                        e,
                        case_id,
                        "ok",
                        format!(
                            "{} {} field {field}: concurrent writes kept as a conflict",
                            e.entity.as_str(),
                            e.entity_id
                        ),
                    );
                    ev.action = "conflict";
                    events.push(ev);
                }
            }
            Err(err) if permanent(&err) => {
                conn.batch("ROLLBACK TO SAVEPOINT change")?;
                conn.batch("RELEASE SAVEPOINT change")?;
                let code = match &err.internal {
                    Some(c) if c == "signed_note_changed" => "signed_note_changed".to_owned(),
                    _ => err.code.as_str().to_owned(),
                };
                conn.execute(
                    "INSERT INTO push_rejections (device_id, seq, entity, entity_id, code, reason, at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    params![actor.device_id, e.seq as i64, e.entity.as_str(), e.entity_id, code.as_str(), err.detail.as_str(), now_ms],
                )?;
                if e.entity == EntityKind::Note && code == "forbidden" {
                    quarantine(conn, actor, e, now_ms)?;
                }
                let mut ev = event(
                    actor,
                    e,
                    None,
                    "denied",
                    format!("{}: {}", describe(e), err.detail),
                );
                if code == "signed_note_changed" {
                    ev.action = "security";
                }
                events.push(ev);
                rejected.push(RejectedChange {
                    seq: e.seq,
                    entity: e.entity,
                    entity_id: e.entity_id,
                    code,
                    reason: err.detail,
                });
            }
            Err(err) => return Err(err),
        }
    }
    let acked = fresh.last().map_or(done, |e| e.seq);
    if acked > done {
        conn.execute(
            "INSERT INTO device_sync (device_id, pushed_seq) VALUES ($1, $2)
             ON CONFLICT (device_id) DO UPDATE SET pushed_seq = excluded.pushed_seq",
            params![actor.device_id, acked as i64],
        )?;
    }
    crate::audit::append_all(conn, &events)?;
    Ok(PushResponse {
        acked_seq: acked,
        applied,
        duplicates,
        rejected,
    })
}

/// Records a device's uploaded access-log entries in the audit log, each once (by its id), in
/// the caller's transaction. The entries must be this worker's on this device; a criterion is
/// bounded; a time too far in the future is refused like a change's clock.
pub fn upload_access(
    conn: &mut dyn Conn,
    actor: &Actor,
    req: &AccessUpload,
    now_ms: i64,
) -> Result<AccessUploadResponse> {
    if req.entries.len() > MAX_ACCESS_ENTRIES {
        return Err(ServiceError::invalid(
            "entries",
            format!("At most {MAX_ACCESS_ENTRIES} access-log entries per upload."),
        ));
    }
    let horizon = now_ms.saturating_add(MAX_CLOCK_SKEW_MS as i64);
    for e in &req.entries {
        if e.worker != actor.staff_id || e.device != actor.device_id {
            return Err(ServiceError::new(
                ErrorCode::Forbidden,
                "A device uploads only its own worker's access log.",
            ));
        }
        if e.at_ms > horizon {
            return Err(ServiceError::new(
                ErrorCode::ClockSkew,
                "An access-log entry is stamped in the future: set the computer's clock; nothing was lost.",
            ));
        }
        if e.at_ms < 0 {
            return Err(ServiceError::invalid(
                "at_ms",
                "An access-log entry needs its time.",
            ));
        }
        let criterion_len = e.criterion.as_deref().map_or(0, |c| c.chars().count());
        if criterion_len > MAX_CRITERION_CHARS {
            return Err(ServiceError::invalid(
                "criterion",
                format!("A search criterion has at most {MAX_CRITERION_CHARS} characters."),
            ));
        }
    }
    let mut events = Vec::new();
    let mut duplicates = 0;
    for e in &req.entries {
        let fresh = conn.execute(
            "INSERT INTO device_access (id, device_id, at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
            params![e.id, actor.device_id, now_ms],
        )?;
        if fresh == 0 {
            duplicates += 1;
            continue;
        }
        let when = crate::rfc3339_ms(e.at_ms);
        let detail = match e.criterion.as_deref() {
            Some(c) => format!("on the device at {when}, entry {}: {c}", e.id),
            None => format!("on the device at {when}, entry {}", e.id),
        };
        events.push(AuditEvent {
            staff_id: Some(actor.staff_id),
            device_id: Some(actor.device_id),
            action: match e.action {
                AccessAction::OpenCase => "device_open_case",
                AccessAction::OpenPerson => "device_open_person",
                AccessAction::Search => "device_search",
                AccessAction::Export => "device_export",
            },
            case_id: e.case_id,
            person_id: e.person_id,
            detail,
            result: "ok",
        });
    }
    if !events.is_empty() {
        crate::audit::append_all(conn, &events)?;
    }
    Ok(AccessUploadResponse {
        recorded: events.len() as u32,
        duplicates,
    })
}

/// Keeps a refused note change whole: documentation a worker wrote is never discarded because
/// their access ended while they were offline.
fn quarantine(conn: &mut dyn Conn, actor: &Actor, e: &ChangeEntry, now_ms: i64) -> Result<()> {
    let case_id = match e.fields.get("case_id").and_then(|f| f.value.as_str()) {
        Some(c) => Some(c.to_owned()),
        // A change to a note the service holds: the note's case.
        None => records::get_any(conn, e.entity, e.entity_id)?
            .and_then(|s| s.case_id)
            .map(|c| c.to_string()),
    };
    let entry = serde_json::to_string(e)
        .map_err(|err| ServiceError::internal(format!("quarantine entry: {err}")))?;
    conn.execute(
        "INSERT INTO quarantine (device_id, seq, staff_id, case_id, note_id, entry, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, seq) DO NOTHING",
        params![
            actor.device_id,
            e.seq as i64,
            actor.staff_id,
            case_id,
            e.entity_id,
            entry,
            now_ms
        ],
    )?;
    Ok(())
}

/// One refused note change waiting in quarantine.
struct Waiting {
    device_id: Uuid,
    staff_id: Uuid,
    case_id: Option<Uuid>,
    entry: ChangeEntry,
    at: i64,
}

fn waiting(conn: &mut dyn Conn, note: Option<Uuid>) -> Result<Vec<Waiting>> {
    let sql = "SELECT device_id, staff_id, case_id, entry, at FROM quarantine
               WHERE resolved_at IS NULL AND ($1 = '' OR note_id = $1) ORDER BY note_id, seq";
    let filter = note.map(|n| n.to_string()).unwrap_or_default();
    conn.query(sql, params![filter])?
        .iter()
        .map(|r| {
            let entry: ChangeEntry = serde_json::from_str(&r.text(3)?)
                .map_err(|e| ServiceError::internal(format!("quarantined entry: {e}")))?;
            let case_id = match r.opt_text(2)? {
                Some(c) => Some(
                    c.parse()
                        .map_err(|_| ServiceError::internal("quarantined case id"))?,
                ),
                None => None,
            };
            Ok(Waiting {
                device_id: r.uuid(0)?,
                staff_id: r.uuid(1)?,
                case_id,
                entry,
                at: r.int(4)?,
            })
        })
        .collect()
}

/// The case of a waiting note: as quarantined, else the note's own case on the service.
fn waiting_case(conn: &mut dyn Conn, w: &[Waiting]) -> Result<Option<Uuid>> {
    if let Some(c) = w.iter().find_map(|w| w.case_id) {
        return Ok(Some(c));
    }
    match w.first() {
        Some(first) => Ok(
            records::get_any(conn, EntityKind::Note, first.entry.entity_id)?
                .and_then(|s| s.case_id),
        ),
        None => Ok(None),
    }
}

/// The case's coordinator, or a leader on the case's team, decides on its quarantined notes.
fn may_resolve(conn: &mut dyn Conn, actor: &Actor, case: Uuid) -> Result<bool> {
    Ok(match authz::scope(conn, actor, case)? {
        Some(s) => s.coordinator || (s.team_member && actor.profession == Profession::Leader),
        None => false,
    })
}

fn name_of(conn: &mut dyn Conn, entity: EntityKind, id: Uuid, field: &str) -> Result<String> {
    Ok(records::get_any(conn, entity, id)?
        .and_then(|s| s.data.get(field).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default())
}

/// The quarantined notes `actor` decides on, each with its changes merged; an audit row per
/// note shown.
pub fn quarantined(
    conn: &mut dyn Conn,
    actor: &Actor,
    audit: &mut Vec<AuditEvent>,
) -> Result<QuarantineList> {
    let mut notes = Vec::new();
    for (note_id, case_id, group) in decided_by(conn, actor)? {
        let mut fields = serde_json::Map::new();
        for w in &group {
            for (k, f) in &w.entry.fields {
                fields.insert(k.clone(), f.value.clone());
            }
        }
        let author_id = group[0].staff_id;
        audit.push(AuditEvent {
            staff_id: Some(actor.staff_id),
            device_id: Some(actor.device_id),
            action: "quarantine_read",
            case_id: Some(case_id),
            person_id: None,
            detail: format!("note {note_id} by {author_id}, waiting for a decision"),
            result: "ok",
        });
        notes.push(QuarantinedNote {
            note_id,
            case_id,
            child_name: name_of(conn, EntityKind::Case, case_id, "child_name")?,
            author_id,
            author_name: name_of(conn, EntityKind::Staff, author_id, "name")?,
            received_at_ms: group.iter().map(|w| w.at).min().unwrap_or_default(),
            fields,
            changes: group.len() as u32,
        });
    }
    notes.sort_by_key(|n| n.received_at_ms);
    Ok(QuarantineList { notes })
}

/// How many quarantined notes wait for `actor`'s decision (no note is read: no audit row).
pub fn quarantined_count(conn: &mut dyn Conn, actor: &Actor) -> Result<u32> {
    Ok(u32::try_from(decided_by(conn, actor)?.len()).unwrap_or(u32::MAX))
}

/// The waiting notes `actor` decides on, each with its case and its changes (oldest first),
/// in the order of their ids.
fn decided_by(conn: &mut dyn Conn, actor: &Actor) -> Result<Vec<(Uuid, Uuid, Vec<Waiting>)>> {
    let mut by_note: BTreeMap<Uuid, Vec<Waiting>> = BTreeMap::new();
    for w in waiting(conn, None)? {
        by_note.entry(w.entry.entity_id).or_default().push(w);
    }
    let mut decides: BTreeMap<Uuid, bool> = BTreeMap::new();
    let mut out = Vec::new();
    for (note_id, group) in by_note {
        let Some(case_id) = waiting_case(conn, &group)? else {
            continue;
        };
        let allowed = match decides.get(&case_id) {
            Some(a) => *a,
            None => {
                let a = may_resolve(conn, actor, case_id)?;
                decides.insert(case_id, a);
                a
            }
        };
        if allowed {
            out.push((note_id, case_id, group));
        }
    }
    Ok(out)
}

/// Decides on a quarantined note inside the caller's transaction. Accepting applies its
/// changes, oldest first, as its author's (the same checks as a push, but the author's lost
/// access no longer counts: the coordinator or leader vouches for it); a signed note is sealed
/// as usual. Either way the changes stay in `quarantine`, marked with the decision.
pub fn resolve_quarantined(
    conn: &mut dyn Conn,
    actor: &Actor,
    decision: &QuarantineDecision,
    now_ms: i64,
) -> Result<QuarantineResolved> {
    let group = waiting(conn, Some(decision.note_id))?;
    let not_waiting = || {
        ServiceError::new(
            ErrorCode::NotFound,
            "No note with this id waits for a decision of yours.",
        )
    };
    let Some(case_id) = waiting_case(conn, &group)? else {
        return Err(not_waiting());
    };
    if !may_resolve(conn, actor, case_id)? {
        return Err(not_waiting());
    }
    let mut events = Vec::new();
    if decision.accept {
        for w in &group {
            let e = &w.entry;
            let stored = records::get_any(conn, e.entity, e.entity_id)?;
            let claimed = e
                .fields
                .get("case_id")
                .and_then(|f| f.value.as_str())
                .and_then(|c| c.parse::<Uuid>().ok());
            if stored.as_ref().and_then(|s| s.case_id).or(claimed) != Some(case_id) {
                return Err(ServiceError::invalid(
                    "note_id",
                    "The note belongs to another case.",
                ));
            }
            check_note(conn, w.staff_id, stored.as_ref(), e)?;
            let (_, concurrent, merged) = records::apply_detecting(conn, e)?;
            validate(&merged)?;
            seal_signed(conn, &merged, now_ms)?;
            for c in concurrent {
                record_conflict(conn, e, case_id, c, now_ms)?;
            }
            events.push(AuditEvent {
                staff_id: Some(w.staff_id),
                device_id: Some(w.device_id),
                action: "sync_write",
                case_id: Some(case_id),
                person_id: None,
                detail: format!(
                    "{} (from quarantine, accepted by {})",
                    describe(e),
                    actor.staff_id
                ),
                result: "ok",
            });
        }
    }
    let verdict = if decision.accept {
        "accepted"
    } else {
        "kept_out"
    };
    conn.execute(
        "UPDATE quarantine SET resolved_at = $1, resolved_by = $2, decision = $3
         WHERE note_id = $4 AND resolved_at IS NULL",
        params![now_ms, actor.staff_id, verdict, decision.note_id],
    )?;
    events.push(AuditEvent {
        staff_id: Some(actor.staff_id),
        device_id: Some(actor.device_id),
        action: if decision.accept {
            "quarantine_accept"
        } else {
            "quarantine_keep_out"
        },
        case_id: Some(case_id),
        person_id: None,
        detail: format!(
            "note {} by {}: {} change(s) {verdict}",
            decision.note_id,
            group[0].staff_id,
            group.len()
        ),
        result: "ok",
    });
    crate::audit::append_all(conn, &events)?;
    Ok(QuarantineResolved {
        note_id: decision.note_id,
        accepted: decision.accept,
        changes: group.len() as u32,
    })
}

fn earlier_rejections(
    conn: &mut dyn Conn,
    actor: &Actor,
    from: u64,
    to: u64,
) -> Result<Vec<RejectedChange>> {
    let rows = conn.query(
        "SELECT seq, entity, entity_id, code, reason FROM push_rejections
         WHERE device_id = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
        params![actor.device_id, from as i64, to as i64],
    )?;
    rows.iter()
        .map(|r| {
            let entity = r.text(1)?;
            Ok(RejectedChange {
                seq: r.int(0)? as u64,
                entity: EntityKind::parse(&entity)
                    .ok_or_else(|| ServiceError::internal(format!("entity {entity}")))?,
                entity_id: r.uuid(2)?,
                code: r.text(3)?,
                reason: r.text(4)?,
            })
        })
        .collect()
}

/// Refusals that are final for this change (the worker is told); anything else (the database
/// busy or gone) fails the whole request so the device retries it.
fn permanent(e: &ServiceError) -> bool {
    matches!(
        e.code,
        ErrorCode::InvalidInput | ErrorCode::Forbidden | ErrorCode::NotFound | ErrorCode::Conflict
    )
}

fn describe(e: &ChangeEntry) -> String {
    let fields: Vec<&str> = e.fields.keys().map(String::as_str).collect();
    format!(
        "{} {} ({})",
        e.entity.as_str(),
        e.entity_id,
        fields.join(", ")
    )
}

fn event(
    actor: &Actor,
    e: &ChangeEntry,
    case_id: Option<Uuid>,
    result: &'static str,
    detail: String,
) -> AuditEvent {
    AuditEvent {
        staff_id: Some(actor.staff_id),
        device_id: Some(actor.device_id),
        action: "sync_write",
        case_id,
        person_id: (e.entity == EntityKind::Person).then_some(e.entity_id),
        detail,
        result,
    }
}

const OUT_OF_SCOPE: &str =
    "The change concerns a case outside the worker's cases, or a record the service does not know.";

fn forbidden(detail: &str) -> ServiceError {
    ServiceError::new(ErrorCode::Forbidden, detail)
}

/// Checks and applies one change; returns its case and the fields that became conflicts.
fn apply_one(
    conn: &mut dyn Conn,
    actor: &Actor,
    e: &ChangeEntry,
    now_ms: i64,
) -> Result<(Option<Uuid>, Vec<String>)> {
    let stored = records::get_any(conn, e.entity, e.entity_id)?;
    let claimed_case = e
        .fields
        .get("case_id")
        .map(|f| {
            f.value
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| ServiceError::invalid("case_id", "case_id is not an id"))
        })
        .transpose()?;
    let case_id = match e.entity {
        EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember => {
            return Err(forbidden(
                "Teams, staff and memberships are managed centrally, not from a device.",
            ))
        }
        EntityKind::Case => e.entity_id,
        _ => match (stored.as_ref().and_then(|s| s.case_id), claimed_case) {
            (Some(s), Some(c)) if s != c => {
                return Err(ServiceError::invalid(
                    "case_id",
                    "A record cannot move to another case.",
                ))
            }
            (Some(s), _) => s,
            (None, Some(c)) => c,
            // Unknown, or (under PostgreSQL's row-level security) in a case the worker cannot
            // see: the two are not told apart.
            (None, None) => return Err(forbidden(OUT_OF_SCOPE)),
        },
    };
    check_scope(conn, actor, e, case_id, now_ms)?;
    if e.entity == EntityKind::Note {
        check_note(conn, actor.staff_id, stored.as_ref(), e)?;
    }
    let (_, concurrent, merged) = records::apply_detecting(conn, e)?;
    validate(&merged)?;
    if e.entity == EntityKind::Note {
        seal_signed(conn, &merged, now_ms)?;
    }
    let mut fields = Vec::new();
    for c in concurrent {
        fields.push(c.field.clone());
        record_conflict(conn, e, case_id, c, now_ms)?;
    }
    Ok((Some(case_id), fields))
}

/// Keeps the losing value of a concurrent write as a conflict of the case: the newer clock's
/// value is the field's; the other waits for a person to choose.
fn record_conflict(
    conn: &mut dyn Conn,
    e: &ChangeEntry,
    case_id: Uuid,
    c: records::Concurrent,
    now_ms: i64,
) -> Result<()> {
    let staff_of = |conn: &mut dyn Conn, hlc: Hlc| -> Result<Option<StaffId>> {
        Ok(conn
            .query_one(
                "SELECT staff_id FROM devices WHERE id = $1",
                params![hlc.device.0],
            )?
            .map(|r| r.uuid(0))
            .transpose()?
            .map(StaffId))
    };
    let ((kept, kept_hlc), (other, other_hlc)) = if c.incoming_hlc > c.held_hlc {
        ((c.incoming, c.incoming_hlc), (c.held, c.held_hlc))
    } else {
        ((c.held, c.held_hlc), (c.incoming, c.incoming_hlc))
    };
    let conflict = Conflict {
        id: RowId::new(),
        case_id: CaseId(case_id),
        entity: e.entity,
        entity_id: e.entity_id,
        field: c.field,
        kept_value: kept.to_string(),
        kept_hlc,
        kept_by: staff_of(conn, kept_hlc)?,
        other_value: other.to_string(),
        other_hlc,
        other_by: staff_of(conn, other_hlc)?,
        detected_at: time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        resolved_at: None,
        resolved_by: None,
    };
    records::put(conn, EntityKind::Conflict, conflict.id.0, &conflict)
}

/// The worker may write to a case they have full access to, or open a new case in one of
/// their teams with themselves as coordinator.
fn check_scope(
    conn: &mut dyn Conn,
    actor: &Actor,
    e: &ChangeEntry,
    case_id: Uuid,
    now_ms: i64,
) -> Result<()> {
    let known = conn
        .query_one(
            "SELECT 1 FROM case_index WHERE case_id = $1",
            params![case_id],
        )?
        .is_some();
    if !known {
        if e.entity != EntityKind::Case {
            // Unknown, or (under PostgreSQL's row-level security) outside the worker's scope:
            // the two are not told apart, on either engine.
            return Err(forbidden(OUT_OF_SCOPE));
        }
        // A change to a case this worker cannot see (on PostgreSQL row-level security hides
        // it from `case_index` too) carries no team: out of scope, as on SQLite, never
        // mistaken for an incomplete new case.
        let Some(team) = e.fields.get("team_id").and_then(|f| f.value.as_str()) else {
            return Err(forbidden(OUT_OF_SCOPE));
        };
        let member = conn
            .query_one(
                "SELECT 1 FROM members_index WHERE team_id = $1 AND staff_id = $2",
                params![team, actor.staff_id],
            )?
            .is_some();
        let coordinator = e
            .fields
            .get("coordinator_id")
            .and_then(|f| f.value.as_str());
        if !member || coordinator != Some(actor.staff_id.to_string().as_str()) {
            return Err(forbidden(
                "A new case is opened in one of the worker's own teams, with the worker as coordinator.",
            ));
        }
        return Ok(());
    }
    let Some(scope) = authz::scope(conn, actor, case_id)? else {
        return Err(forbidden(OUT_OF_SCOPE));
    };
    let consents: Vec<Consent> =
        typed(&records::of_case_kind(conn, case_id, EntityKind::Consent)?)?;
    let today = date_of(now_ms);
    match authz::access(actor, &scope, &consents, today) {
        CaseAccess::Full { .. } => Ok(()),
        CaseAccess::Limited => Err(forbidden(
            "No valid consent covers the worker's sector for this case.",
        )),
    }
}

/// A signed note never changes; a note is signed by its author with the hash of its content.
fn check_note(
    conn: &mut dyn Conn,
    author_id: Uuid,
    stored: Option<&Stored>,
    e: &ChangeEntry,
) -> Result<()> {
    let sealed = conn
        .query_one(
            "SELECT content_hash FROM signed_notes WHERE note_id = $1",
            params![e.entity_id],
        )?
        .is_some();
    let signed_before = stored
        .and_then(|s| s.data.get("status"))
        .and_then(Value::as_str)
        == Some(NoteStatus::Signed.as_str());
    if sealed || signed_before {
        let mut err = ServiceError::new(
            ErrorCode::Conflict,
            "The note is signed and cannot be changed; write an addendum instead.",
        );
        err.internal = Some("signed_note_changed".into());
        return Err(err);
    }
    let author = stored
        .and_then(|s| s.data.get("author_id"))
        .or_else(|| e.fields.get("author_id").map(|f| &f.value))
        .and_then(Value::as_str);
    if author != Some(author_id.to_string().as_str()) {
        return Err(forbidden("Only a note's author writes and signs it."));
    }
    Ok(())
}

/// When a note has just become signed: its hash must match its content, and is kept.
fn seal_signed(conn: &mut dyn Conn, note: &Stored, now_ms: i64) -> Result<()> {
    let n: CaseNote = records::decode(note)?;
    if n.status != NoteStatus::Signed || note.archived {
        return Ok(());
    }
    let hash = rules::content_hash(&n);
    if n.content_hash.as_deref() != Some(hash.as_str()) {
        let mut err = ServiceError::new(
            ErrorCode::Conflict,
            "The signed note's content does not match its signature.",
        );
        err.internal = Some("signed_note_changed".into());
        return Err(err);
    }
    conn.execute(
        "INSERT INTO signed_notes (note_id, content_hash, signed_at) VALUES ($1, $2, $3)",
        params![n.id.0, hash.as_str(), now_ms],
    )?;
    Ok(())
}

/// The merged record must read as its type: what cannot be read is never stored.
fn validate(s: &Stored) -> Result<()> {
    // serde's message can quote a value: it stays out of the answer, the rejection list and
    // the audit log.
    let bad = |_: serde_json::Error| {
        ServiceError::invalid(
            "fields",
            format!(
                "The {} is incomplete or has a field of the wrong kind.",
                s.entity.as_str()
            ),
        )
    };
    let v = Value::Object(s.data.clone());
    match s.entity {
        EntityKind::Team => serde_json::from_value::<Team>(v).map(drop),
        EntityKind::Staff => serde_json::from_value::<Staff>(v).map(drop),
        EntityKind::TeamMember => serde_json::from_value::<TeamMember>(v).map(drop),
        EntityKind::Case => serde_json::from_value::<Case>(v).map(drop),
        EntityKind::Participant => serde_json::from_value::<Participant>(v).map(drop),
        EntityKind::Handover => serde_json::from_value::<Handover>(v).map(drop),
        EntityKind::Person => serde_json::from_value::<Person>(v).map(drop),
        EntityKind::Phone => serde_json::from_value::<Phone>(v).map(drop),
        EntityKind::Relation => serde_json::from_value::<Relation>(v).map(drop),
        EntityKind::Note => serde_json::from_value::<CaseNote>(v).map(drop),
        EntityKind::Consent => serde_json::from_value::<Consent>(v).map(drop),
        EntityKind::Agreement => serde_json::from_value::<Agreement>(v).map(drop),
        EntityKind::Conflict => serde_json::from_value::<Conflict>(v).map(drop),
    }
    .map_err(bad)
}

fn typed<T: serde::de::DeserializeOwned>(rows: &[Stored]) -> Result<Vec<T>> {
    rows.iter().map(records::decode).collect()
}

fn date_of(now_ms: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

/// The buckets the worker may see now, with the access each case gives.
fn visible_cases(
    conn: &mut dyn Conn,
    actor: &Actor,
    now_ms: i64,
) -> Result<Vec<(Uuid, CaseAccess)>> {
    let today = date_of(now_ms);
    let mut out = Vec::new();
    for case_id in authz::cases_in_scope(conn, actor.staff_id)? {
        let Some(scope) = authz::scope(conn, actor, case_id)? else {
            continue;
        };
        let consents: Vec<Consent> =
            typed(&records::of_case_kind(conn, case_id, EntityKind::Consent)?)?;
        let access = authz::access(actor, &scope, &consents, today);
        if matches!(access, CaseAccess::Full { .. }) {
            out.push((case_id, access));
        }
    }
    out.sort_by_key(|(c, _)| *c);
    Ok(out)
}

/// The buckets a worker may see, in the order pages bring them: the team's reference data,
/// then each visible case (with the worker's access to it).
fn bucket_plan(cases: &[(Uuid, CaseAccess)]) -> Vec<(String, Option<(Uuid, CaseAccess)>)> {
    let mut plan = vec![(TEAM_BUCKET.to_owned(), None)];
    plan.extend(cases.iter().map(|(c, a)| (case_bucket(*c), Some((*c, *a)))));
    plan
}

/// Answers a pull for `actor` inside the caller's read transaction.
pub fn pull(
    conn: &mut dyn Conn,
    actor: &Actor,
    req: &PullRequest,
    now_ms: i64,
) -> Result<PullResponse> {
    if req.cursors.len() > 100_000 {
        return Err(ServiceError::invalid("cursors", "Too many buckets."));
    }
    let mut budget = req.limit.clamp(1, MAX_PULL_RECORDS) as i64;
    let cases = visible_cases(conn, actor, now_ms)?;
    let professions = professions(conn)?;
    let mut visible = vec![TEAM_BUCKET.to_owned()];
    visible.extend(cases.iter().map(|(c, _)| case_bucket(*c)));
    let mut buckets = Vec::new();
    let mut more = false;
    let plan = bucket_plan(&cases);
    let horizons = horizons(conn)?;
    let mut reset = Vec::new();
    // Where the page stopped: the plan's index and the cursor reached there.
    let mut stopped: Option<(usize, u64)> = None;
    for (i, (bucket, case)) in plan.iter().cloned().enumerate() {
        let cursor = req.cursors.get(&bucket).copied().unwrap_or(0);
        let horizon = case
            .and_then(|(c, _)| horizons.get(&c).copied())
            .unwrap_or(0);
        if cursor > 0 && cursor < horizon {
            // Deleted records after this cursor were purged: the device may hold some of
            // them. It deletes this bucket alone and asks for it again from the start.
            reset.push(bucket);
            continue;
        }
        if budget == 0 {
            more = true;
            stopped = Some((i, cursor));
            break;
        }
        // A bucket pulled from before its horizon comes at least up to the horizon in one
        // page, so the cursor it leaves is never mistaken for a stale one.
        let take = match case {
            Some((c, _)) if cursor < horizon => budget.max(
                conn.query_one(
                    "SELECT COUNT(*) FROM records WHERE case_id = $1 AND seq > $2 AND seq <= $3",
                    params![c, cursor as i64, horizon as i64],
                )?
                .map(|r| r.int(0))
                .transpose()?
                .unwrap_or(0),
            ),
            _ => budget,
        };
        let rows = match case {
            None => conn.query(
                "SELECT entity, id, case_id, data, archived, field_hlc, seq FROM records
                 WHERE case_id IS NULL AND seq > $1 ORDER BY seq LIMIT $2",
                params![cursor as i64, take + 1],
            )?,
            Some((c, _)) => conn.query(
                "SELECT entity, id, case_id, data, archived, field_hlc, seq FROM records
                 WHERE case_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                params![c, cursor as i64, take + 1],
            )?,
        };
        if rows.is_empty() {
            continue;
        }
        let full = rows.len() as i64 > take;
        let mut records = Vec::new();
        let mut last = cursor;
        for row in rows.iter().take(take as usize) {
            let stored = records::read_row(row)?;
            last = row.int(6)? as u64;
            let clocks: BTreeMap<String, Hlc> = serde_json::from_str(&row.text(5)?)
                .map_err(|e| ServiceError::internal(format!("field_hlc: {e}")))?;
            if let Some(rec) =
                visible_record(actor, case.map(|c| c.1), &professions, stored, clocks)
            {
                records.push(rec);
            }
        }
        // Every record up to the horizon is in this page (see `take`); the purged ones after
        // the last are gone, so the cursor may move past them.
        if cursor < horizon {
            last = last.max(horizon);
        }
        budget = (budget - rows.len().min(take as usize) as i64).max(0);
        if full {
            more = true;
        }
        // The page reaches the end of a bucket the device held before: the bucket's checksum
        // as the worker sees it now. (A bucket sent whole from the start is exactly the page.)
        let checksum = if full || cursor == 0 {
            None
        } else {
            Some(bucket_checksum(conn, actor, case, &professions)?)
        };
        buckets.push(BucketPage {
            bucket,
            records,
            cursor: last,
            checksum,
        });
        if full {
            stopped = Some((i, last));
            break;
        }
    }
    let remaining = match stopped {
        Some((at, cursor)) => Some(remaining_after(conn, &plan, &req.cursors, at, cursor)?),
        None => None,
    };
    let views = cases
        .iter()
        .map(|(c, a)| (case_bucket(*c), view_of(*a)))
        .collect();
    // The last page tells the worker how many quarantined notes wait for them.
    let quarantined = if more {
        None
    } else {
        Some(quarantined_count(conn, actor)?)
    };
    Ok(PullResponse {
        buckets,
        visible,
        views,
        more,
        remaining,
        reset,
        quarantined,
    })
}

/// Answers a device's verification for `actor` inside the caller's read transaction: the
/// checksum of each bucket it holds (cursor above 0, not older than the bucket's horizon) that
/// the worker may see and that has no record after the device's cursor.
pub fn verify(
    conn: &mut dyn Conn,
    actor: &Actor,
    req: &VerifyRequest,
    now_ms: i64,
) -> Result<VerifyResponse> {
    if req.cursors.len() > 100_000 {
        return Err(ServiceError::invalid("cursors", "Too many buckets."));
    }
    let cases = visible_cases(conn, actor, now_ms)?;
    let professions = professions(conn)?;
    let horizons = horizons(conn)?;
    let mut checksums = BTreeMap::new();
    for (bucket, case) in bucket_plan(&cases) {
        let cursor = req.cursors.get(&bucket).copied().unwrap_or(0);
        let horizon = case
            .and_then(|(c, _)| horizons.get(&c).copied())
            .unwrap_or(0);
        if cursor == 0 || cursor < horizon {
            continue;
        }
        let newer = match case {
            None => conn.query_one(
                "SELECT 1 FROM records WHERE case_id IS NULL AND seq > $1 LIMIT 1",
                params![cursor as i64],
            )?,
            Some((c, _)) => conn.query_one(
                "SELECT 1 FROM records WHERE case_id = $1 AND seq > $2 LIMIT 1",
                params![c, cursor as i64],
            )?,
        };
        if newer.is_none() {
            let sum = bucket_checksum(conn, actor, case, &professions)?;
            checksums.insert(bucket, sum);
        }
    }
    Ok(VerifyResponse { checksums })
}

/// The sum of [`record_digest`] over the live records of `records`.
fn checksum_of<'a>(records: impl IntoIterator<Item = &'a SyncRecord>) -> u64 {
    records
        .into_iter()
        .filter(|r| !r.archived)
        .map(|r| {
            let mut data = r.data.clone();
            for f in &r.redacted {
                data.insert(f.clone(), Value::Null);
            }
            record_digest(r.entity, r.id, &data)
        })
        .fold(0u64, u64::wrapping_add)
}

/// The checksum of a whole bucket as `actor` may see it now.
fn bucket_checksum(
    conn: &mut dyn Conn,
    actor: &Actor,
    case: Option<(Uuid, CaseAccess)>,
    professions: &BTreeMap<Uuid, Profession>,
) -> Result<u64> {
    let rows = match case {
        None => conn.query(
            "SELECT entity, id, case_id, data, archived, field_hlc, seq FROM records
             WHERE case_id IS NULL AND archived = 0",
            params![],
        )?,
        Some((c, _)) => conn.query(
            "SELECT entity, id, case_id, data, archived, field_hlc, seq FROM records
             WHERE case_id = $1 AND archived = 0",
            params![c],
        )?,
    };
    let mut visible = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored = records::read_row(row)?;
        // The clocks do not count towards the checksum.
        if let Some(rec) = visible_record(
            actor,
            case.map(|c| c.1),
            professions,
            stored,
            BTreeMap::new(),
        ) {
            visible.push(rec);
        }
    }
    Ok(checksum_of(&visible))
}

/// Each case's horizon: the newest purged record's sequence number.
fn horizons(conn: &mut dyn Conn) -> Result<BTreeMap<Uuid, u64>> {
    conn.query("SELECT case_id, seq FROM case_horizon", params![])?
        .iter()
        .map(|r| Ok((r.uuid(0)?, r.int(1)? as u64)))
        .collect()
}

/// How many records lie after a page that stopped in `plan[at]` at `cursor`: the rest of that
/// bucket and every bucket after it, from the device's cursors. One index range count each.
fn remaining_after(
    conn: &mut dyn Conn,
    plan: &[(String, Option<(Uuid, CaseAccess)>)],
    cursors: &BTreeMap<String, u64>,
    at: usize,
    cursor: u64,
) -> Result<u64> {
    let mut total = 0;
    for (i, (bucket, case)) in plan.iter().enumerate().skip(at) {
        let from = if i == at {
            cursor
        } else {
            cursors.get(bucket).copied().unwrap_or(0)
        };
        let row = match case {
            None => conn.query_one(
                "SELECT COUNT(*) FROM records WHERE case_id IS NULL AND seq > $1",
                params![from as i64],
            )?,
            Some((c, _)) => conn.query_one(
                "SELECT COUNT(*) FROM records WHERE case_id = $1 AND seq > $2",
                params![*c, from as i64],
            )?,
        };
        total += row.map(|r| r.int(0)).transpose()?.unwrap_or(0) as u64;
    }
    Ok(total)
}

/// What decides which records and fields of a case the worker receives (the protected address
/// and some notes depend on it): the same view, the same cut.
fn view_of(access: CaseAccess) -> String {
    match access {
        CaseAccess::Full {
            participant,
            team_member,
        } => format!("full;participant={participant};team={team_member}"),
        CaseAccess::Limited => "limited".to_owned(),
    }
}

fn professions(conn: &mut dyn Conn) -> Result<BTreeMap<Uuid, Profession>> {
    Ok(records::all_of(conn, EntityKind::Staff)?
        .iter()
        .filter_map(|s| records::decode::<Staff>(s).ok())
        .map(|s| (s.id.0, s.profession))
        .collect())
}

/// The record as `actor` may see it, or `None` when they may not see it at all.
fn visible_record(
    actor: &Actor,
    access: Option<CaseAccess>,
    professions: &BTreeMap<Uuid, Profession>,
    mut stored: Stored,
    mut clocks: BTreeMap<String, Hlc>,
) -> Option<SyncRecord> {
    let mut redacted = Vec::new();
    if let Some(access) = access {
        match stored.entity {
            EntityKind::Note => {
                // Only the fields that decide who may read it: a note is not copied whole
                // (stored notes were validated when pushed).
                fn field<T: serde::de::DeserializeOwned>(s: &Stored, name: &str) -> Option<T> {
                    serde_json::from_value(s.data.get(name)?.clone()).ok()
                }
                let status: NoteStatus = field(&stored, "status")?;
                let author_id: StaffId = field(&stored, "author_id")?;
                let audience: feltkontor_wire::Audience = field(&stored, "audience")?;
                if status == NoteStatus::Draft && author_id.0 != actor.staff_id {
                    return None;
                }
                let author = professions.get(&author_id.0).copied();
                if !authz::may_read_note(actor, access, audience, author) {
                    return None;
                }
            }
            EntityKind::Person => {
                let protected = stored
                    .data
                    .get("protected_address")
                    .and_then(Value::as_bool)
                    == Some(true);
                if protected && !authz::may_see_protected_address(access) {
                    stored.data.remove("address");
                    clocks.remove("address");
                    redacted.push("address".to_owned());
                }
            }
            _ => {}
        }
    }
    stored.data.remove("id");
    Some(SyncRecord {
        entity: stored.entity,
        id: stored.id,
        data: stored.data,
        field_hlc: clocks,
        archived: stored.archived,
        redacted,
    })
}
