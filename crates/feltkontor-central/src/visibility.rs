//! What leaves the service: one decision per worker and record (and per field, where fields
//! are withheld), taken here for every path that sends records or their content — the pull and
//! its stream, the checksums of verify, the case overview, the quarantine list. Every kind of
//! record has a [`Rule`]; a test enumerates them.
//!
//! - Reference data (teams, staff, memberships) goes to every worker of the municipality.
//! - A case's records go to workers with full access to the case (`authz::access`).
//! - A note: a colleague's draft is theirs alone; a note for one discipline reaches only that
//!   discipline's participants.
//! - A person's protected address is withheld from everyone but the case's participants.
//! - A conflict reaches exactly those who may see the field it is about: the record it names
//!   must be visible to them with that field not withheld (else it is not sent at all).
//! - The case list and the head of a case's overview show every worker in the case's scope
//!   the case's head ([`case_head`]): the child's name, status, team and coordinator, so a
//!   worker without full access knows whom to ask; nothing else of the case record.

use crate::authz::{self, Actor, CaseAccess};
use crate::error::Result;
use crate::records::Stored;
use feltkontor_wire::sync::SyncRecord;
use feltkontor_wire::{
    Audience, CaseStatus, EntityKind, Hlc, NoteStatus, Profession, StaffId, TeamId,
};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

/// The rule that decides a kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Sent to every worker.
    Reference,
    /// Sent whole to workers with full access to the case.
    CaseRecord,
    /// A note: its status, author and audience decide.
    Note,
    /// A person: sent to workers with full access, the protected address withheld from
    /// non-participants.
    Person,
    /// A conflict: as the field it is about.
    Conflict,
}

/// The rule of each kind. Exhaustive: a new kind does not compile until it has one.
pub fn rule(kind: EntityKind) -> Rule {
    match kind {
        EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember => Rule::Reference,
        EntityKind::Case
        | EntityKind::Participant
        | EntityKind::Handover
        | EntityKind::Phone
        | EntityKind::Relation
        | EntityKind::Consent
        | EntityKind::Agreement
        // An appointment's place is typed by the worker; the app never fills it with a
        // protected address (the home-visit sheet shows the address to those who may see it).
        | EntityKind::Appointment => Rule::CaseRecord,
        EntityKind::Note => Rule::Note,
        EntityKind::Person => Rule::Person,
        EntityKind::Conflict => Rule::Conflict,
    }
}

/// Who looks, and how much of the case they see.
pub struct Viewer<'a> {
    pub actor: &'a Actor,
    /// The worker's access to the case the records belong to (`None` for reference data).
    pub access: Option<CaseAccess>,
    /// Every staff member's profession (a note's author's decides who reads it).
    pub professions: &'a BTreeMap<Uuid, Profession>,
}

/// Whether the text of a note with this audience, by an author of this profession, may be
/// read with `access` (a draft's author aside: see [`decide`]).
pub fn may_read_note_text(
    actor: &Actor,
    access: CaseAccess,
    audience: Audience,
    author_profession: Option<Profession>,
) -> bool {
    authz::may_read_note(actor, access, audience, author_profession)
}

fn field<T: serde::de::DeserializeOwned>(s: &Stored, name: &str) -> Option<T> {
    serde_json::from_value(s.data.get(name)?.clone()).ok()
}

/// The record as the viewer may see it, or `None` when they may not see it at all. `target`
/// reads the record a conflict names (live or deleted).
pub fn decide(
    viewer: &Viewer<'_>,
    mut stored: Stored,
    mut clocks: BTreeMap<String, Hlc>,
    target: &mut dyn FnMut(EntityKind, Uuid) -> Result<Option<Stored>>,
) -> Result<Option<SyncRecord>> {
    let mut redacted = Vec::new();
    let kind_rule = rule(stored.entity);
    let access = match (kind_rule, viewer.access) {
        (Rule::Reference, _) => None,
        (_, Some(a @ CaseAccess::Full { .. })) => Some(a),
        // A case's record without full access to the case: nothing.
        (_, _) => return Ok(None),
    };
    if let Some(access) = access {
        match kind_rule {
            Rule::Reference | Rule::CaseRecord => {}
            Rule::Note => {
                // Only the fields that decide who may read it: a note is not copied whole
                // (stored notes were validated when pushed).
                let (Some(status), Some(author_id), Some(audience)) = (
                    field::<NoteStatus>(&stored, "status"),
                    field::<StaffId>(&stored, "author_id"),
                    field::<Audience>(&stored, "audience"),
                ) else {
                    return Ok(None);
                };
                if status == NoteStatus::Draft && author_id.0 != viewer.actor.staff_id {
                    return Ok(None);
                }
                let author = viewer.professions.get(&author_id.0).copied();
                if !may_read_note_text(viewer.actor, access, audience, author) {
                    return Ok(None);
                }
            }
            Rule::Person => {
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
            Rule::Conflict => {
                let (Some(entity), Some(entity_id), Some(name)) = (
                    field::<EntityKind>(&stored, "entity"),
                    field::<Uuid>(&stored, "entity_id"),
                    field::<String>(&stored, "field"),
                ) else {
                    return Ok(None);
                };
                if rule(entity) == Rule::Conflict {
                    return Ok(None);
                }
                let Some(about) = target(entity, entity_id)? else {
                    return Ok(None);
                };
                if about.case_id != stored.case_id {
                    return Ok(None);
                }
                let Some(seen) = decide(viewer, about, BTreeMap::new(), target)? else {
                    return Ok(None);
                };
                if seen.redacted.contains(&name) {
                    return Ok(None);
                }
            }
        }
    }
    stored.data.remove("id");
    Ok(Some(SyncRecord {
        entity: stored.entity,
        id: stored.id,
        data: stored.data,
        field_hlc: clocks,
        archived: stored.archived,
        redacted,
    }))
}

/// What a worker in a case's scope sees of the case itself at either access level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseHead {
    pub child_name: String,
    pub status: CaseStatus,
    pub team_id: Uuid,
    pub coordinator_id: Uuid,
}

/// The fields of a case record its head is made of; the others (birth date, CPR number,
/// institution, dates, reasons) leave only through [`decide`], with full access.
pub const CASE_HEAD_FIELDS: [&str; 4] = ["child_name", "status", "team_id", "coordinator_id"];

/// The case's head for a worker with `access` to it (the caller found the case in their
/// scope); `None` when the record is not a live case.
pub fn case_head(access: CaseAccess, case: &Stored) -> Option<CaseHead> {
    if case.entity != EntityKind::Case || case.archived {
        return None;
    }
    match access {
        CaseAccess::Full { .. } | CaseAccess::Limited => Some(CaseHead {
            child_name: field(case, "child_name")?,
            status: field(case, "status")?,
            team_id: field::<TeamId>(case, "team_id")?.0,
            coordinator_id: field::<StaffId>(case, "coordinator_id")?.0,
        }),
    }
}

/// Which fields of a change in a case's history (applied at `at_ms`) the viewer may see
/// named: `None` when the record itself is not theirs to see (a colleague's draft, another
/// discipline's note, a record the service no longer holds) or the change was a colleague's
/// work on a note while it was still their draft; else the fields less those withheld.
pub fn history_fields(
    viewer: &Viewer<'_>,
    stored: Option<Stored>,
    fields: Vec<String>,
    at_ms: i64,
    target: &mut dyn FnMut(EntityKind, Uuid) -> Result<Option<Stored>>,
) -> Result<Option<Vec<String>>> {
    let Some(stored) = stored else {
        return Ok(None);
    };
    if stored.entity == EntityKind::Note
        && field::<StaffId>(&stored, "author_id").map(|a| a.0) != Some(viewer.actor.staff_id)
    {
        // A draft is its author's alone, and so is how it was drafted: a colleague sees the
        // changes that reached the service once it was signed.
        let signed_ms = field::<String>(&stored, "signed_at")
            .and_then(|s| {
                time::OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64);
        match signed_ms {
            Some(signed) if at_ms >= signed => {}
            _ => return Ok(None),
        }
    }
    let Some(seen) = decide(viewer, stored, BTreeMap::new(), target)? else {
        return Ok(None);
    };
    let fields: Vec<String> = fields
        .into_iter()
        .filter(|f| !seen.redacted.contains(f))
        .collect();
    Ok((!fields.is_empty()).then_some(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_head_holds_nothing_of_the_case_but_its_head() {
        let team = Uuid::now_v7();
        let coordinator = Uuid::now_v7();
        let data = serde_json::json!({
            "team_id": team, "child_name": "Alma", "child_birth_date": "2016-03-01",
            "child_cpr": "0103161234", "child_institution": "Skolen", "status": "open",
            "closed_reason": null, "coordinator_id": coordinator, "opened_on": "2026-01-01",
        });
        let case = Stored {
            entity: EntityKind::Case,
            id: Uuid::now_v7(),
            case_id: None,
            data: data.as_object().unwrap().clone(),
            archived: false,
        };
        let want = CaseHead {
            child_name: "Alma".into(),
            status: CaseStatus::Open,
            team_id: team,
            coordinator_id: coordinator,
        };
        assert_eq!(case_head(CaseAccess::Limited, &case), Some(want.clone()));
        let mut deleted = case;
        deleted.archived = true;
        assert_eq!(case_head(CaseAccess::Limited, &deleted), None);
        // Every field outside the head is of the kind `decide` sends only with full access.
        for name in ["child_cpr", "child_birth_date", "child_institution"] {
            assert!(!CASE_HEAD_FIELDS.contains(&name));
        }
    }

    /// Every kind of record has a rule, and the kinds that hold a case's content are never
    /// sent as reference data.
    #[test]
    fn every_kind_has_a_rule() {
        for kind in EntityKind::ALL {
            let r = rule(*kind);
            let reference = matches!(
                kind,
                EntityKind::Team | EntityKind::Staff | EntityKind::TeamMember
            );
            assert_eq!(r == Rule::Reference, reference, "{kind:?}");
        }
        assert_eq!(rule(EntityKind::Note), Rule::Note);
        assert_eq!(rule(EntityKind::Person), Rule::Person);
        assert_eq!(rule(EntityKind::Conflict), Rule::Conflict);
    }
}
