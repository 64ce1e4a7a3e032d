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
use crate::visibility::{self, Viewer};
use feltkontor_domain::{rules, *};
use feltkontor_wire::sync::{
    case_bucket, record_digest, AccessUpload, AccessUploadResponse, BucketPage, PullRequest,
    PullResponse, PushRequest, PushResponse, QuarantineDecision, QuarantineList,
    QuarantineResolved, QuarantinedNote, RejectedChange, SyncRecord, VerifyRequest, VerifyResponse,
    MAX_ACCESS_ENTRIES, MAX_CLOCK_SKEW_MS, MAX_CRITERION_CHARS, MAX_HLC_COUNTER, MAX_PULL_RECORDS,
    MAX_PUSH_ENTRIES, TEAM_BUCKET,
};
use feltkontor_wire::{
    AccessAction, CaseId, ChangeEntry, EntityKind, Hlc, NoteStatus, Profession, RowId, StaffId,
};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// Checks a push request's shape before anything is read: bounded, from this device, numbered
/// without gaps, clocks from this device and not from the future. An empty push is an answer
/// of how far the service has the device's log.
fn check_request(actor: &Actor, req: &PushRequest, now_ms: i64) -> Result<Vec<ChangeEntry>> {
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

/// The shape of one change, checked before anything is read; a refusal is for this change
/// alone (it does not block the queue): every field one its kind has, clocks in range.
fn check_entry(e: &ChangeEntry, now_ms: i64) -> Result<()> {
    let horizon = now_ms.max(0) as u64 + MAX_CLOCK_SKEW_MS;
    if let Some(f) = e
        .fields
        .keys()
        .find(|f| !feltkontor_domain::write::is_field(e.entity, f))
    {
        return Err(ServiceError::invalid(
            "fields",
            format!(
                "The {} has no field {:?}: this version of the service does not know it.",
                e.entity.as_str(),
                printable(f)
            ),
        ));
    }
    if e.fields
        .get("archived")
        .is_some_and(|f| !f.value.is_boolean())
    {
        return Err(ServiceError::invalid(
            "archived",
            "A record is deleted with archived: true (or restored with false), nothing else.",
        ));
    }
    for change in e.fields.values() {
        // The base is only compared (a clock the device holds, whatever it is); the write's own
        // clock must be in range.
        if change.hlc.counter > MAX_HLC_COUNTER {
            return Err(ServiceError::invalid(
                "hlc",
                "The change carries a clock counter out of range.",
            ));
        }
        if change.base.is_some_and(|b| b.wall_ms > horizon) {
            return Err(ServiceError::invalid(
                "base",
                "The change names a base clock from the future.",
            ));
        }
    }
    Ok(())
}

/// A name sent by a device, fit for a message and the audit log: no control characters, at
/// most 64 characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
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
    touched: &mut crate::live::Touched,
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
            Ok(Applied {
                case_id,
                changed,
                conflicts,
                privileged,
                widens,
                wrote,
            }) => {
                conn.batch("RELEASE SAVEPOINT change")?;
                applied += 1;
                if e.entity == EntityKind::Consent && !changed.is_empty() {
                    if let Some(case) = case_id {
                        bump_case_scope(conn, case)?;
                    }
                }
                // Every change that wrote something, even no new value (a clock moved, the
                // record was written and its bucket's head with it): kept plans look again.
                if wrote {
                    match case_id {
                        Some(c) => {
                            touched.cases.insert(c);
                        }
                        None => touched.everyone = true,
                    }
                    touched.staff.extend(widens);
                }
                if let Some(case) = case_id.filter(|_| !changed.is_empty()) {
                    crate::history::record(
                        conn,
                        (actor.staff_id, actor.device_id),
                        e,
                        &changed,
                        case,
                        now_ms,
                    )?;
                }
                events.push(event(actor, e, case_id, "ok", describe(e)));
                if let Some(what) = privileged {
                    let mut ev = event(actor, e, case_id, "ok", format!("{what}: {}", describe(e)));
                    ev.action = "privileged_change";
                    events.push(ev);
                }
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
                // The refusal names the case it was aimed at (a claimed id outside the worker's
                // scope too: the audit log shows who tried what, where).
                let mut aimed = target_case(conn, e).map(|(_, c)| c).unwrap_or(None);
                if aimed.is_none() && e.entity == EntityKind::Note {
                    // A later change of a note this device's earlier change left in quarantine
                    // (a draft, then signed): the same case.
                    aimed = conn
                        .query_one(
                            "SELECT case_id FROM quarantine WHERE device_id = $1 AND note_id = $2 LIMIT 1",
                            params![actor.device_id, e.entity_id],
                        )?
                        .and_then(|r| r.opt_text(0).ok().flatten())
                        .and_then(|c| c.parse().ok());
                }
                // Out of the worker's reach (lost access while offline) or a case closed
                // meanwhile: documentation is never discarded for that.
                let lost_access = (err.code == ErrorCode::Forbidden && err.internal.is_none())
                    || err.internal.as_deref() == Some("case_closed");
                let mut quarantined = false;
                if e.entity == EntityKind::Note && lost_access {
                    if let Some(case) = aimed {
                        quarantined = quarantine(conn, actor, e, case, now_ms, &mut events)?;
                        if quarantined {
                            // The coordinator's device hears that a note waits for them.
                            touched.cases.insert(case);
                        }
                    }
                }
                let mut ev = event(
                    actor,
                    e,
                    aimed,
                    "denied",
                    format!(
                        "{}: {}{}",
                        describe(e),
                        err.detail,
                        if quarantined {
                            " (kept in quarantine)"
                        } else {
                            ""
                        }
                    ),
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
    if !events.is_empty() {
        crate::audit::append_all(conn, &events)?;
    }
    Ok(PushResponse {
        acked_seq: acked,
        applied,
        duplicates,
        rejected,
    })
}

/// Records a device's uploaded access-log entries in the audit log, each once (by its id), in
/// the caller's transaction. No entry blocks the others or the device's next upload: an entry
/// of another worker or device, or about a case or person the worker never had in sight, is
/// refused for good (audited as a security event, listed in `refused`); a time in the future
/// or before 1970 is recorded as the device gave it, marked; a criterion is kept to
/// [`MAX_CRITERION_CHARS`] printable characters.
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
    let mut events = Vec::new();
    let mut duplicates = 0;
    let mut refused = Vec::new();
    let mut recorded = 0;
    let mut sight: BTreeMap<Uuid, bool> = BTreeMap::new();
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
        let person_case = match e.person_id {
            Some(p) => Some(
                records::get_any(conn, EntityKind::Person, p)?
                    .and_then(|s| s.case_id)
                    .filter(|c| e.case_id.is_none_or(|given| given == *c)),
            ),
            None => None,
        };
        let mut cases: Vec<Option<Uuid>> = Vec::new();
        if let Some(c) = e.case_id {
            cases.push(Some(c));
        }
        if let Some(pc) = person_case {
            cases.push(pc);
        }
        let mut in_sight = true;
        for c in cases {
            in_sight &= match c {
                None => false,
                Some(c) => match sight.get(&c) {
                    Some(v) => *v,
                    None => {
                        // Full access now, or the service once gave the worker the case's
                        // content: a worker who sees only that a case exists opened nothing
                        // of it.
                        let v = matches!(
                            case_access(conn, actor, c, now_ms)?,
                            Some(CaseAccess::Full { .. })
                        ) || once_had_access(conn, actor.staff_id, c)?;
                        sight.insert(c, v);
                        v
                    }
                },
            };
        }
        let own = e.worker == actor.staff_id && e.device == actor.device_id;
        if !own || !in_sight {
            refused.push(e.id);
            events.push(AuditEvent {
                staff_id: Some(actor.staff_id),
                device_id: Some(actor.device_id),
                action: "security",
                case_id: e.case_id.or(person_case.flatten()),
                person_id: None,
                detail: format!(
                    "access-log entry {} refused: {}",
                    e.id,
                    if own {
                        "a case or person the worker never had in sight"
                    } else {
                        "another worker's or device's entry"
                    }
                ),
                result: "denied",
            });
            continue;
        }
        let when = if e.at_ms < 0 {
            "an unknown time".to_owned()
        } else if e.at_ms > horizon {
            format!(
                "{} (the device's clock was ahead)",
                crate::rfc3339_ms(e.at_ms)
            )
        } else {
            crate::rfc3339_ms(e.at_ms)
        };
        let detail = match e.criterion.as_deref() {
            Some(c) => {
                // A criterion that may hold a CPR number (an old app, or a modified one) is
                // kept with its digits masked: the number never reaches the audit log.
                let c: String = feltkontor_domain::text::mask_cpr_like(c)
                    .chars()
                    .map(|ch| if ch.is_control() { '\u{fffd}' } else { ch })
                    .take(MAX_CRITERION_CHARS)
                    .collect();
                format!("on the device at {when}, entry {}: {c}", e.id)
            }
            None => format!("on the device at {when}, entry {}", e.id),
        };
        recorded += 1;
        events.push(AuditEvent {
            staff_id: Some(actor.staff_id),
            device_id: Some(actor.device_id),
            action: match e.action {
                AccessAction::OpenCase => "device_open_case",
                AccessAction::OpenPerson => "device_open_person",
                AccessAction::Search => "device_search",
                AccessAction::Export => "device_export",
            },
            case_id: e.case_id.or(person_case.flatten()),
            person_id: e.person_id,
            detail,
            result: "ok",
        });
    }
    if !events.is_empty() {
        crate::audit::append_all(conn, &events)?;
    }
    Ok(AccessUploadResponse {
        recorded,
        duplicates,
        refused,
    })
}

/// Most refused note changes one device may have waiting in quarantine: a device past it is
/// misbehaving, and its further refusals are recorded (audited, listed to the device) but not
/// kept.
pub const MAX_QUARANTINED_PER_DEVICE: i64 = 1_000;

/// Whether the worker ever had the case in sight: the audit log holds a use of it by them.
pub fn once_had_access(conn: &mut dyn Conn, staff: Uuid, case: Uuid) -> Result<bool> {
    // Only what the service itself recorded: the case's records sent to the worker's device,
    // its overview in full, or a write it applied. Uses a device reported are its word, not
    // evidence.
    Ok(conn
        .query_one(
            "SELECT 1 FROM audit_log WHERE staff_id = $1 AND case_id = $2 AND result = 'ok'
             AND action IN ('sync_read', 'read_case', 'sync_write') LIMIT 1",
            params![staff, case],
        )?
        .is_some())
}

/// Keeps a refused note change whole: documentation a worker wrote is never discarded because
/// their access ended while they were offline. Only for the case the change was refused for,
/// only when the author once had that case in sight, and at most
/// [`MAX_QUARANTINED_PER_DEVICE`] waiting per device. Returns whether it was kept.
fn quarantine(
    conn: &mut dyn Conn,
    actor: &Actor,
    e: &ChangeEntry,
    case: Uuid,
    now_ms: i64,
    events: &mut Vec<AuditEvent>,
) -> Result<bool> {
    if !once_had_access(conn, actor.staff_id, case)? {
        return Ok(false);
    }
    // Only the author's own writing: a change of a colleague's note is refused, not kept.
    match records::note_author(conn, e.entity_id)? {
        Some(author) if author != actor.staff_id => return Ok(false),
        None if e
            .fields
            .get("author_id")
            .and_then(|f| f.value.as_str())
            .is_some_and(|a| a != actor.staff_id.to_string()) =>
        {
            return Ok(false)
        }
        _ => {}
    }
    let waiting = conn
        .query_one(
            "SELECT COUNT(*) FROM quarantine WHERE device_id = $1 AND resolved_at IS NULL",
            params![actor.device_id],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    if waiting >= MAX_QUARANTINED_PER_DEVICE {
        events.push(AuditEvent {
            staff_id: Some(actor.staff_id),
            device_id: Some(actor.device_id),
            action: "security",
            case_id: Some(case),
            person_id: None,
            detail: format!(
                "note {}: not kept in quarantine, the device has {waiting} notes waiting",
                e.entity_id
            ),
            result: "denied",
        });
        return Ok(false);
    }
    let entry = serde_json::to_string(e)
        .map_err(|err| ServiceError::internal(format!("quarantine entry: {err}")))?;
    conn.execute(
        "INSERT INTO quarantine (device_id, seq, staff_id, case_id, note_id, entry, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device_id, seq) DO NOTHING",
        params![
            actor.device_id,
            e.seq as i64,
            actor.staff_id,
            case,
            e.entity_id,
            entry,
            now_ms
        ],
    )?;
    Ok(true)
}

/// One refused note change waiting in quarantine.
struct Waiting {
    device_id: Uuid,
    staff_id: Uuid,
    case_id: Uuid,
    entry: ChangeEntry,
    at: i64,
}

/// The cases whose quarantined notes `actor` decides on: as coordinator, or as a leader on the
/// case's team.
const DECIDES_ON: &str = "SELECT ci.case_id FROM case_index ci WHERE ci.coordinator_id = $1
     UNION SELECT ci.case_id FROM case_index ci JOIN members_index m ON m.team_id = ci.team_id
           WHERE m.staff_id = $1 AND $2 = 1";

fn waiting(conn: &mut dyn Conn, actor: &Actor, note: Option<Uuid>) -> Result<Vec<Waiting>> {
    let sql = format!(
        "SELECT device_id, staff_id, case_id, entry, at FROM quarantine
         WHERE resolved_at IS NULL AND case_id IN ({DECIDES_ON}) AND ($3 = '' OR note_id = $3)
         ORDER BY note_id, seq"
    );
    let filter = note.map(|n| n.to_string()).unwrap_or_default();
    let leader = i64::from(actor.profession == Profession::Leader);
    conn.query(&sql, params![actor.staff_id, leader, filter])?
        .iter()
        .map(|r| {
            let entry: ChangeEntry = serde_json::from_str(&r.text(3)?)
                .map_err(|e| ServiceError::internal(format!("quarantined entry: {e}")))?;
            Ok(Waiting {
                device_id: r.uuid(0)?,
                staff_id: r.uuid(1)?,
                case_id: r.uuid(2)?,
                entry,
                at: r.int(4)?,
            })
        })
        .collect()
}

fn name_of(conn: &mut dyn Conn, entity: EntityKind, id: Uuid, field: &str) -> Result<String> {
    Ok(records::get_any(conn, entity, id)?
        .and_then(|s| s.data.get(field).and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default())
}

/// The quarantined notes `actor` decides on, each with its changes merged; an audit row per
/// note shown. A note's text is shown as the note visibility rules allow: a note for one
/// discipline only to that discipline's participants (its kind, time and author to every
/// decider). A colleague's draft is shown to the decider: the quarantine is the decision on
/// what its author, who lost access, wrote.
pub fn quarantined(
    conn: &mut dyn Conn,
    actor: &Actor,
    now_ms: i64,
    audit: &mut Vec<AuditEvent>,
) -> Result<QuarantineList> {
    let mut notes = Vec::new();
    let professions = professions(conn)?;
    let mut access: BTreeMap<Uuid, Option<CaseAccess>> = BTreeMap::new();
    for (note_id, case_id, group) in decided_by(conn, actor)? {
        let author_id = group[0].staff_id;
        let mut fields = serde_json::Map::new();
        // What the note was before these changes decides as much as what they make of it: a
        // change cannot widen who reads a note's text.
        let mut stored_audience = None;
        if let Some(stored) = records::get_any(conn, EntityKind::Note, note_id)? {
            if stored.data.get("author_id").and_then(Value::as_str)
                != Some(author_id.to_string().as_str())
            {
                // Kept before changes of a colleague's note were refused outright.
                continue;
            }
            stored_audience = stored
                .data
                .get("audience")
                .and_then(|v| serde_json::from_value::<feltkontor_wire::Audience>(v.clone()).ok());
            fields = stored.data;
            fields.remove("id");
        }
        for w in &group {
            for (k, f) in &w.entry.fields {
                fields.insert(k.clone(), f.value.clone());
            }
        }
        let case_access = match access.get(&case_id) {
            Some(a) => *a,
            None => {
                let a = case_access(conn, actor, case_id, now_ms)?;
                access.insert(case_id, a);
                a
            }
        };
        let audience: Option<feltkontor_wire::Audience> = fields
            .get("audience")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        let author = professions.get(&author_id).copied();
        let readable = match (case_access, audience) {
            (Some(a), Some(audience)) => {
                crate::visibility::may_read_note_text(actor, a, audience, author)
                    && stored_audience.is_none_or(|stored| {
                        crate::visibility::may_read_note_text(actor, a, stored, author)
                    })
            }
            _ => false,
        };
        let mut withheld = Vec::new();
        if !readable {
            for f in ["body", "child_words", "family_perspective"] {
                if fields.remove(f).is_some() {
                    withheld.push(f.to_owned());
                }
            }
        }
        audit.push(AuditEvent {
            staff_id: Some(actor.staff_id),
            device_id: Some(actor.device_id),
            action: "quarantine_read",
            case_id: Some(case_id),
            person_id: None,
            detail: format!(
                "note {note_id} by {author_id}, waiting for a decision{}",
                if readable { "" } else { " (text withheld)" }
            ),
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
            withheld,
        });
    }
    notes.sort_by_key(|n| n.received_at_ms);
    Ok(QuarantineList { notes })
}

/// The worker's access to a case now, or `None` outside their scope.
fn case_access(
    conn: &mut dyn Conn,
    actor: &Actor,
    case: Uuid,
    now_ms: i64,
) -> Result<Option<CaseAccess>> {
    let Some(scope) = authz::scope(conn, actor, case)? else {
        return Ok(None);
    };
    let consents: Vec<Consent> = typed(&records::of_case_kind(conn, case, EntityKind::Consent)?)?;
    Ok(Some(authz::access(
        actor,
        &scope,
        &consents,
        date_of(now_ms),
    )))
}

/// How many quarantined notes wait for `actor`'s decision: one indexed count over the cases
/// they decide on (no note is read: no audit row).
pub fn quarantined_count(conn: &mut dyn Conn, actor: &Actor) -> Result<u32> {
    let leader = i64::from(actor.profession == Profession::Leader);
    let n = conn
        .query_one(
            &format!(
                "SELECT COUNT(DISTINCT note_id) FROM quarantine
                 WHERE resolved_at IS NULL AND case_id IN ({DECIDES_ON})"
            ),
            params![actor.staff_id, leader],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0);
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The waiting notes `actor` decides on, each with its case and its changes (oldest first),
/// in the order of their ids.
fn decided_by(conn: &mut dyn Conn, actor: &Actor) -> Result<Vec<(Uuid, Uuid, Vec<Waiting>)>> {
    let mut by_note: BTreeMap<(Uuid, Uuid), Vec<Waiting>> = BTreeMap::new();
    for w in waiting(conn, actor, None)? {
        by_note
            .entry((w.entry.entity_id, w.case_id))
            .or_default()
            .push(w);
    }
    Ok(by_note
        .into_iter()
        .map(|((note, case), group)| (note, case, group))
        .collect())
}

/// Decides on a quarantined note inside the caller's transaction. Accepting applies its
/// changes, oldest first, as its author's: every rule of a push runs (the author's lost access
/// to the case, or the case's closing since, no longer counts: the coordinator or leader
/// vouches for it); a signed note is sealed as usual. Either way the changes stay in
/// `quarantine`, marked with the decision.
pub fn resolve_quarantined(
    conn: &mut dyn Conn,
    actor: &Actor,
    decision: &QuarantineDecision,
    now_ms: i64,
    touched: &mut crate::live::Touched,
) -> Result<QuarantineResolved> {
    let group = waiting(conn, actor, Some(decision.note_id))?;
    let Some(case_id) = group.first().map(|w| w.case_id) else {
        return Err(ServiceError::new(
            ErrorCode::NotFound,
            "No note with this id waits for a decision of yours.",
        ));
    };
    let mut events = Vec::new();
    if decision.accept {
        let now = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        for w in group.iter().filter(|w| w.case_id == case_id) {
            let e = &w.entry;
            let (stored, aimed) = target_case(conn, e)?;
            if aimed != Some(case_id)
                || (stored.is_none() && records::id_use(conn, e.entity_id)?.is_some())
            {
                return Err(ServiceError::invalid(
                    "note_id",
                    "The note belongs to another case.",
                ));
            }
            let author_profession = professions(conn)?
                .get(&w.staff_id)
                .copied()
                .unwrap_or(Profession::Caseworker);
            // The author as a writer in the case (their access no longer counts).
            let who = feltkontor_domain::write::Writer {
                staff_id: StaffId(w.staff_id),
                profession: author_profession,
                team_member: false,
                coordinator: false,
                participant: false,
            };
            let m = records::merge(conn, e)?;
            match crate::rules::check_merge(conn, &m, e, &who, now, true)? {
                crate::rules::Checked::Apply => {
                    let concurrent = m.concurrent.clone();
                    let changed = changed_fields(&m, e);
                    let merged = records::store(conn, m)?;
                    seal_signed(conn, &merged, now_ms)?;
                    for c in concurrent {
                        record_conflict(conn, e, case_id, c, now_ms)?;
                    }
                    if !changed.is_empty() {
                        crate::history::record(
                            conn,
                            (w.staff_id, w.device_id),
                            e,
                            &changed,
                            case_id,
                            now_ms,
                        )?;
                    }
                }
                crate::rules::Checked::KeepAsItWas => keep_as_it_was(conn, m, e, case_id, now_ms)?,
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
         WHERE note_id = $4 AND case_id = $5 AND resolved_at IS NULL",
        params![now_ms, actor.staff_id, verdict, decision.note_id, case_id],
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
    if decision.accept {
        touched.cases.insert(case_id);
    }
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
    let fields: Vec<String> = e.fields.keys().map(|f| printable(f)).collect();
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

/// The case a change is aimed at: the stored record's, or (for a new record) the one it names.
/// `None` for reference data and for a change to a record the service does not know (or, on
/// PostgreSQL, cannot show this worker) that names no case.
fn target_case(conn: &mut dyn Conn, e: &ChangeEntry) -> Result<(Option<Stored>, Option<Uuid>)> {
    let stored = records::get_any(conn, e.entity, e.entity_id)?;
    let claimed = e
        .fields
        .get("case_id")
        .map(|f| {
            f.value
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
                .ok_or_else(|| ServiceError::invalid("case_id", "case_id is not an id"))
        })
        .transpose()?;
    let case = match e.entity {
        EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember => None,
        EntityKind::Case => Some(e.entity_id),
        _ => match stored.as_ref().and_then(|s| s.case_id) {
            Some(c) => Some(c),
            // A record of a case this worker cannot see (row-level security hides it on
            // PostgreSQL): the case it belongs to, from the ids' register.
            None => match records::id_use(conn, e.entity_id)? {
                Some((_, Some(c))) => Some(c),
                _ => claimed,
            },
        },
    };
    Ok((stored, case))
}

/// What applying one change did.
struct Applied {
    case_id: Option<Uuid>,
    /// The fields whose value the change did change (a write that lost every field to a
    /// newer one, or was kept as a conflict, changed none).
    changed: Vec<String>,
    /// Fields that became conflicts.
    conflicts: Vec<String>,
    /// A privileged change (coordinator, participants, protected address, deleting a case),
    /// in words, for its own audit row.
    privileged: Option<&'static str>,
    /// Staff whose scope the change may widen (a participant's, a case's coordinator): their
    /// devices are woken although the case was not in their scope before.
    widens: Vec<Uuid>,
    /// Whether anything was written (the record, or a conflict): its bucket's head moved.
    wrote: bool,
}

/// Which privileged change a merge makes, if any.
fn privileged_change(m: &records::Merge) -> Option<&'static str> {
    let before = m.before.as_ref();
    let changed = |f: &str| before.map(|b| b.data.get(f)) != Some(m.data.get(f));
    match m.entity {
        EntityKind::Participant => Some("participants changed"),
        EntityKind::Handover => Some("coordinator handed over"),
        EntityKind::Case if m.archived && before.is_some_and(|b| !b.archived) => {
            Some("case deleted")
        }
        EntityKind::Case if before.is_some() && changed("coordinator_id") => {
            Some("coordinator changed")
        }
        EntityKind::Person if before.is_some() && changed("protected_address") => {
            Some("protected address flag changed")
        }
        _ => None,
    }
}

/// Checks and applies one change.
fn apply_one(conn: &mut dyn Conn, actor: &Actor, e: &ChangeEntry, now_ms: i64) -> Result<Applied> {
    check_entry(e, now_ms)?;
    if matches!(
        e.entity,
        EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember
    ) {
        return Err(forbidden(
            "Teams, staff and memberships are managed centrally, not from a device.",
        ));
    }
    let (stored, case_id) = target_case(conn, e)?;
    // Unknown, or (under PostgreSQL's row-level security) in a case the worker cannot see: the
    // two are not told apart.
    let case_id = case_id.ok_or_else(|| forbidden(OUT_OF_SCOPE))?;
    if stored.is_none() && records::id_use(conn, e.entity_id)?.is_some() {
        // The id belongs to a record elsewhere (another kind, another team's case, a deleted
        // case): never taken over.
        return Err(forbidden(OUT_OF_SCOPE));
    }
    let scope = check_scope(conn, actor, e, stored.is_none(), case_id, now_ms)?;
    if let (Some(s), Some(c)) = (
        stored.as_ref().and_then(|s| s.case_id),
        e.fields.get("case_id").and_then(|f| f.value.as_str()),
    ) {
        if s.to_string() != c {
            return Err(ServiceError::invalid(
                "case_id",
                "A record cannot move to another case.",
            ));
        }
    }
    let m = records::merge(conn, e)?;
    let who = crate::rules::writer(actor, scope.as_ref());
    let now = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let checked = crate::rules::check_merge(conn, &m, e, &who, now, false)?;
    let m = match checked {
        crate::rules::Checked::Apply => m,
        crate::rules::Checked::KeepAsItWas => {
            // The merge would break a rule over the whole record although the write was valid
            // as written (concurrent writes of related fields): the record stays as it was, and
            // every value of the write is kept as a conflict for a person to decide.
            keep_as_it_was(conn, m, e, case_id, now_ms)?;
            return Ok(Applied {
                case_id: Some(case_id),
                changed: Vec::new(),
                conflicts: e.fields.keys().cloned().collect(),
                privileged: None,
                widens: Vec::new(),
                wrote: true,
            });
        }
    };
    let privileged = if m.changed {
        privileged_change(&m)
    } else {
        None
    };
    let concurrent = m.concurrent.clone();
    let changed = changed_fields(&m, e);
    let wrote = m.changed || !concurrent.is_empty();
    let merged = records::store(conn, m)?;
    if e.entity == EntityKind::Note {
        seal_signed(conn, &merged, now_ms)?;
    }
    let mut fields = Vec::new();
    for c in concurrent {
        fields.push(c.field.clone());
        record_conflict(conn, e, case_id, c, now_ms)?;
    }
    let widens = match e.entity {
        EntityKind::Participant => merged.data.get("staff_id"),
        EntityKind::Case => merged.data.get("coordinator_id"),
        _ => None,
    }
    .and_then(Value::as_str)
    .and_then(|s| s.parse().ok())
    .into_iter()
    .collect();
    Ok(Applied {
        case_id: Some(case_id),
        changed,
        conflicts: fields,
        privileged,
        widens,
        wrote,
    })
}

/// The fields of `e` whose value the merge changes (for the case's history).
fn changed_fields(m: &records::Merge, e: &ChangeEntry) -> Vec<String> {
    let before = m.before.as_ref();
    e.fields
        .keys()
        .filter(|f| {
            if f.as_str() == "archived" {
                before.map(|b| b.archived) != Some(m.archived)
            } else {
                before.and_then(|b| b.data.get(f.as_str())) != m.data.get(f.as_str())
            }
        })
        .cloned()
        .collect()
}

/// The stated policy for a merge that would break a rule over the whole record: the fields of
/// the write are stamped again with their stored values, with a clock just after the write's
/// (so every device, the writer's too, takes the stored values), and each value of the write
/// that differs is kept as a conflict.
fn keep_as_it_was(
    conn: &mut dyn Conn,
    m: records::Merge,
    e: &ChangeEntry,
    case_id: Uuid,
    now_ms: i64,
) -> Result<()> {
    let before = m
        .before
        .clone()
        .ok_or_else(|| ServiceError::internal("a kept record has a stored version"))?;
    let mut fields = BTreeMap::new();
    for (field, change) in &e.fields {
        let held = if field == "archived" {
            Value::Bool(before.archived)
        } else {
            before.data.get(field).cloned().unwrap_or(Value::Null)
        };
        let after = change.hlc.successor(records::SERVER_DEVICE);
        if held != change.value && field != "archived" {
            record_conflict(
                conn,
                e,
                case_id,
                records::Concurrent {
                    field: field.clone(),
                    held: held.clone(),
                    held_hlc: after,
                    incoming: change.value.clone(),
                    incoming_hlc: change.hlc,
                },
                now_ms,
            )?;
        }
        fields.insert(
            field.clone(),
            feltkontor_wire::FieldChange {
                value: held,
                hlc: after,
                base: None,
            },
        );
    }
    let restamp = ChangeEntry {
        op_id: feltkontor_wire::OpId::new(),
        seq: 0,
        device: records::SERVER_DEVICE,
        entity: e.entity,
        entity_id: e.entity_id,
        fields,
    };
    records::apply(conn, &restamp)?;
    Ok(())
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
/// their teams with themselves as coordinator. Returns the worker's place in the case (`None`
/// for a new case).
fn check_scope(
    conn: &mut dyn Conn,
    actor: &Actor,
    e: &ChangeEntry,
    new_record: bool,
    case_id: Uuid,
    now_ms: i64,
) -> Result<Option<authz::Scope>> {
    let known = conn
        .query_one(
            "SELECT 1 FROM case_index WHERE case_id = $1",
            params![case_id],
        )?
        .is_some();
    if !known {
        if e.entity != EntityKind::Case || !new_record {
            // Unknown, deleted, or (under PostgreSQL's row-level security) outside the
            // worker's scope: the three are not told apart, on either engine.
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
        return Ok(None);
    }
    let Some(scope) = authz::scope(conn, actor, case_id)? else {
        return Err(forbidden(OUT_OF_SCOPE));
    };
    let consents: Vec<Consent> =
        typed(&records::of_case_kind(conn, case_id, EntityKind::Consent)?)?;
    let today = date_of(now_ms);
    match authz::access(actor, &scope, &consents, today) {
        CaseAccess::Full { .. } => Ok(Some(scope)),
        CaseAccess::Limited => Err(forbidden(
            "No valid consent covers the worker's sector for this case.",
        )),
    }
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

fn typed<T: serde::de::DeserializeOwned>(rows: &[Stored]) -> Result<Vec<T>> {
    rows.iter().map(records::decode).collect()
}

pub(crate) fn date_of(now_ms: i64) -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(now_ms / 1000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

/// A bucket the worker may see now, in the order pages bring them: the team's reference
/// data, then each visible case by id.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    bucket: String,
    /// The case and the worker's access to it (`None`: the team's bucket).
    pub(crate) case: Option<(Uuid, CaseAccess)>,
    /// The bucket's newest sequence number and how many records it holds.
    head: u64,
    records: u64,
    /// The newest purged record's sequence number (0: none purged).
    horizon: u64,
}

#[cfg(test)]
impl Planned {
    /// A case's bucket with full access, for the plan cache's tests.
    pub(crate) fn for_case(case: Uuid, head: u64) -> Planned {
        Planned {
            bucket: case_bucket(case),
            case: Some((
                case,
                CaseAccess::Full {
                    participant: true,
                    team_member: true,
                },
            )),
            head,
            records: head,
            horizon: 0,
        }
    }
}

/// The buckets the worker may see now, with their heads: a few indexed queries whatever the
/// size of the municipality, and no bucket's records read (see [`pull`]).
pub(crate) fn plan(conn: &mut dyn Conn, actor: &Actor, now_ms: i64) -> Result<Vec<Planned>> {
    let scopes = authz::scopes(conn, actor)?;
    let accesses = authz::accesses(conn, actor, &scopes, date_of(now_ms))?;
    let mut heads: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for row in conn.query(
        "SELECT h.bucket, h.seq, h.records FROM bucket_heads h WHERE h.bucket = ''
         UNION ALL
         SELECT h.bucket, h.seq, h.records FROM scope_index s JOIN bucket_heads h ON h.bucket = s.case_id
         WHERE s.staff_id = $1",
        params![actor.staff_id],
    )? {
        heads.insert(row.text(0)?, (row.int(1)? as u64, row.int(2)? as u64));
    }
    let mut horizons: BTreeMap<String, u64> = BTreeMap::new();
    for row in conn.query(
        "SELECT z.case_id, z.seq FROM scope_index s JOIN case_horizon z ON z.case_id = s.case_id
         WHERE s.staff_id = $1",
        params![actor.staff_id],
    )? {
        horizons.insert(row.text(0)?, row.int(1)? as u64);
    }
    let (head, records) = heads.get("").copied().unwrap_or((0, 0));
    let mut plan = vec![Planned {
        bucket: TEAM_BUCKET.to_owned(),
        case: None,
        head,
        records,
        horizon: 0,
    }];
    for (scope, access) in scopes.iter().zip(accesses) {
        if !matches!(access, CaseAccess::Full { .. }) {
            continue;
        }
        let key = scope.case_id.to_string();
        let (head, records) = heads.get(&key).copied().unwrap_or((0, 0));
        plan.push(Planned {
            bucket: case_bucket(scope.case_id),
            case: Some((scope.case_id, access)),
            head,
            records,
            horizon: horizons.get(&key).copied().unwrap_or(0),
        });
    }
    Ok(plan)
}

/// Moves the scope version (`scope_versions`) of everyone with `case` in scope: a consent of
/// the case decides what some of them may see.
fn bump_case_scope(conn: &mut dyn Conn, case: Uuid) -> Result<()> {
    match conn.engine() {
        crate::db::Engine::Postgres => {
            conn.execute("SELECT feltkontor_bump_case_scope($1)", params![case])?;
        }
        crate::db::Engine::Sqlite => {
            conn.execute(
                "UPDATE scope_versions SET n = n + 1
                 WHERE staff_id IN (SELECT s.staff_id FROM scope_index s WHERE s.case_id = $1)",
                params![case],
            )?;
        }
    }
    Ok(())
}

/// The worker's scope version: what a kept plan was made with must still be it.
pub(crate) fn scope_version(conn: &mut dyn Conn, staff: Uuid) -> Result<i64> {
    Ok(conn
        .query_one(
            "SELECT n FROM scope_versions WHERE staff_id = $1",
            params![staff],
        )?
        .map(|r| r.int(0))
        .transpose()?
        .unwrap_or(0))
}

/// Brings a plan up to date for `cases` (changed since it was made): each one's place in the
/// worker's scope, access, head and horizon read again; a case no longer visible leaves the
/// plan, one now visible joins it in its place. The cost is the changed cases, not the scope.
pub(crate) fn replan(
    conn: &mut dyn Conn,
    actor: &Actor,
    now_ms: i64,
    plan: &mut Vec<Planned>,
    cases: &std::collections::BTreeSet<Uuid>,
) -> Result<()> {
    if cases.is_empty() {
        return Ok(());
    }
    plan.retain(|p| p.case.is_none_or(|(c, _)| !cases.contains(&c)));
    let mut scopes = Vec::new();
    for c in cases {
        if let Some(s) = authz::scope(conn, actor, *c)? {
            scopes.push(s);
        }
    }
    let accesses = authz::accesses(conn, actor, &scopes, date_of(now_ms))?;
    for (scope, access) in scopes.iter().zip(accesses) {
        if !matches!(access, CaseAccess::Full { .. }) {
            continue;
        }
        let key = scope.case_id.to_string();
        let (head, records) = conn
            .query_one(
                "SELECT seq, records FROM bucket_heads WHERE bucket = $1",
                params![key.as_str()],
            )?
            .map(|r| Ok::<_, ServiceError>((r.int(0)? as u64, r.int(1)? as u64)))
            .transpose()?
            .unwrap_or((0, 0));
        let horizon = conn
            .query_one(
                "SELECT seq FROM case_horizon WHERE case_id = $1",
                params![key.as_str()],
            )?
            .map(|r| r.int(0))
            .transpose()?
            .unwrap_or(0) as u64;
        let planned = Planned {
            bucket: case_bucket(scope.case_id),
            case: Some((scope.case_id, access)),
            head,
            records,
            horizon,
        };
        // The team's bucket first, then the cases by id.
        let at = plan
            .iter()
            .position(|p| p.case.is_some_and(|(c, _)| c > scope.case_id))
            .unwrap_or(plan.len());
        plan.insert(at, planned);
    }
    Ok(())
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
    let plan = plan(conn, actor, now_ms)?;
    pull_with(conn, actor, req, now_ms, &plan, true)
}

/// A cached plan with more moved buckets than this is made again whole (one indexed range)
/// rather than case by case.
const REPLAN_MOST: usize = 32;

/// A cached plan made fit to send records by: every bucket with something after the device's
/// cursor decided again from the database in the caller's transaction (access, head,
/// horizon), or, when many moved, the plan made again whole.
fn checked(
    conn: &mut dyn Conn,
    actor: &Actor,
    req: &PullRequest,
    now_ms: i64,
    plan: &[Planned],
) -> Result<Vec<Planned>> {
    let moved: std::collections::BTreeSet<Uuid> = plan
        .iter()
        .filter_map(|p| {
            let cursor = req.cursors.get(&p.bucket).copied().unwrap_or(0);
            p.case
                .map(|(c, _)| c)
                .filter(|_| p.head > cursor || (cursor > 0 && cursor < p.horizon))
        })
        .collect();
    if moved.len() > REPLAN_MOST {
        return self::plan(conn, actor, now_ms);
    }
    let mut plan = plan.to_vec();
    replan(conn, actor, now_ms, &mut plan, &moved)?;
    if let Some(team) = plan.first_mut().filter(|p| p.case.is_none()) {
        if let Some(r) = conn.query_one(
            "SELECT seq, records FROM bucket_heads WHERE bucket = ''",
            params![],
        )? {
            team.head = r.int(0)? as u64;
            team.records = r.int(1)? as u64;
        }
    }
    Ok(plan)
}

/// [`pull`] with the worker's plan already made (see `plans.rs`: a cached plan is only ever
/// trusted to say that nothing changed; every bucket it would send records of is decided
/// again here, from the database, first).
pub(crate) fn pull_with(
    conn: &mut dyn Conn,
    actor: &Actor,
    req: &PullRequest,
    now_ms: i64,
    plan: &[Planned],
    fresh: bool,
) -> Result<PullResponse> {
    if req.cursors.len() > 100_000 {
        return Err(ServiceError::invalid("cursors", "Too many buckets."));
    }
    if !fresh {
        let plan = checked(conn, actor, req, now_ms, plan)?;
        return pull_with(conn, actor, req, now_ms, &plan, true);
    }
    let mut budget = req.limit.clamp(1, MAX_PULL_RECORDS) as i64;
    let visible = plan.iter().map(|p| p.bucket.clone()).collect();
    let mut professions: BTreeMap<Uuid, Profession> = BTreeMap::new();
    let mut buckets = Vec::new();
    let mut more = false;
    let mut reset = Vec::new();
    // Where the page stopped: the plan's index and the cursor reached there.
    let mut stopped: Option<(usize, u64)> = None;
    for (i, planned) in plan.iter().enumerate() {
        let Planned {
            bucket,
            case,
            head,
            horizon,
            ..
        } = planned.clone();
        let cursor = req.cursors.get(&bucket).copied().unwrap_or(0);
        if cursor > 0 && cursor < horizon {
            // Deleted records after this cursor were purged: the device may hold some of
            // them. It deletes this bucket alone and asks for it again from the start.
            reset.push(bucket);
            continue;
        }
        if head <= cursor {
            // Nothing written in this bucket since the device's cursor: not read at all.
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
        let mut page = Vec::with_capacity(rows.len());
        for row in rows.iter().take(take as usize) {
            page.push((records::read_row(row)?, row));
        }
        authors_professions(conn, page.iter().map(|(s, _)| s), &mut professions)?;
        for (stored, row) in page {
            last = row.int(6)? as u64;
            let clocks: BTreeMap<String, Hlc> = serde_json::from_str(&row.text(5)?)
                .map_err(|e| ServiceError::internal(format!("field_hlc: {e}")))?;
            let viewer = Viewer {
                actor,
                access: case.map(|c| c.1),
                professions: &professions,
            };
            if let Some(rec) = visibility::decide(&viewer, stored, clocks, &mut |k, id| {
                records::get_any(conn, k, id)
            })? {
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
            Some(bucket_checksum(conn, actor, case, &mut professions)?)
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
        Some((at, cursor)) => Some(remaining_after(conn, plan, &req.cursors, at, cursor)?),
        None => None,
    };
    let views = plan
        .iter()
        .filter_map(|p| p.case.map(|(_, a)| (p.bucket.clone(), view_of(a))))
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
    let plan = plan(conn, actor, now_ms)?;
    let mut professions: BTreeMap<Uuid, Profession> = BTreeMap::new();
    let mut checksums = BTreeMap::new();
    for p in plan {
        let cursor = req.cursors.get(&p.bucket).copied().unwrap_or(0);
        // A bucket not held, held from before its horizon, or with records after the cursor
        // is not compared.
        if cursor == 0 || cursor < p.horizon || p.head > cursor {
            continue;
        }
        let sum = bucket_checksum(conn, actor, p.case, &mut professions)?;
        checksums.insert(p.bucket, sum);
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
    professions: &mut BTreeMap<Uuid, Profession>,
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
    let stored = rows
        .iter()
        .map(records::read_row)
        .collect::<Result<Vec<_>>>()?;
    authors_professions(conn, stored.iter(), professions)?;
    for stored in stored {
        // The clocks do not count towards the checksum.
        let viewer = Viewer {
            actor,
            access: case.map(|c| c.1),
            professions,
        };
        if let Some(rec) = visibility::decide(&viewer, stored, BTreeMap::new(), &mut |k, id| {
            records::get_any(conn, k, id)
        })? {
            visible.push(rec);
        }
    }
    Ok(checksum_of(&visible))
}

/// How many records lie after a page that stopped in `plan[at]` at `cursor`: the rest of that
/// bucket and every bucket after it, from the device's cursors. A bucket not yet held counts
/// its head's number of records, a bucket held up to its head none; only a bucket partly held
/// is counted in the index.
fn remaining_after(
    conn: &mut dyn Conn,
    plan: &[Planned],
    cursors: &BTreeMap<String, u64>,
    at: usize,
    cursor: u64,
) -> Result<u64> {
    let mut total = 0;
    for (i, p) in plan.iter().enumerate().skip(at) {
        let from = if i == at {
            cursor
        } else {
            cursors.get(&p.bucket).copied().unwrap_or(0)
        };
        if from == 0 {
            total += p.records;
            continue;
        }
        if p.head <= from {
            continue;
        }
        let row = match p.case {
            None => conn.query_one(
                "SELECT COUNT(*) FROM records WHERE case_id IS NULL AND seq > $1",
                params![from as i64],
            )?,
            Some((c, _)) => conn.query_one(
                "SELECT COUNT(*) FROM records WHERE case_id = $1 AND seq > $2",
                params![c, from as i64],
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

/// Adds to `known` the profession of every author of a note among `records` not known yet,
/// in batches (a note's audience is read by its author's profession). Never the whole staff
/// directory: a page costs its authors.
fn authors_professions<'a>(
    conn: &mut dyn Conn,
    records: impl Iterator<Item = &'a Stored>,
    known: &mut BTreeMap<Uuid, Profession>,
) -> Result<()> {
    let mut wanted: Vec<Uuid> = records
        .filter(|s| s.entity == EntityKind::Note)
        .filter_map(|s| s.data.get("author_id").and_then(Value::as_str))
        .filter_map(|a| a.parse().ok())
        .filter(|a| !known.contains_key(a))
        .collect();
    wanted.sort();
    wanted.dedup();
    for stored in records::where_in(conn, "entity = 'staff'", "id", &wanted)? {
        if let Ok(staff) = records::decode::<Staff>(&stored) {
            known.insert(staff.id.0, staff.profession);
        }
    }
    Ok(())
}

fn professions(conn: &mut dyn Conn) -> Result<BTreeMap<Uuid, Profession>> {
    Ok(records::all_of(conn, EntityKind::Staff)?
        .iter()
        .filter_map(|s| records::decode::<Staff>(s).ok())
        .map(|s| (s.id.0, s.profession))
        .collect())
}
