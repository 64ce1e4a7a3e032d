//! Who may see what, decided on the service for every request. PostgreSQL's row-level security
//! is a second line behind these checks, never a replacement: on SQLite these checks are all
//! there is, and the behaviour test suite runs the same cases on both.
//!
//! 1. A worker reads a case only as a member of the case's team or a participant of the case.
//! 2. A note whose audience is one discipline is read only by that discipline's participants.
//! 3. A participant from another sector (school, PPR, health visitor, daycare) reads the case's
//!    content only while a valid consent covers the sector or a legal basis is recorded for
//!    them; otherwise they see that the case exists, its coordinator and how to reach them.
//! 4. A protected address is shown only to the case's participants (the coordinator is one).

use crate::db::Conn;
use crate::error::Result;
use crate::params;
use feltkontor_domain::rules::consent_sector;
use feltkontor_domain::Consent;
use feltkontor_wire::{Audience, Profession, StaffSector};
use time::Date;
use uuid::Uuid;

/// The worker a request acts for, from a verified token and the current staff record.
#[derive(Debug, Clone)]
pub struct Actor {
    pub staff_id: Uuid,
    pub device_id: Uuid,
    pub name: String,
    pub profession: Profession,
    pub sector: StaffSector,
}

/// How much of a case a worker sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseAccess {
    /// Everything the worker's discipline may read.
    Full {
        participant: bool,
        team_member: bool,
    },
    /// That the case exists, its coordinator and how to reach them.
    Limited,
}

/// The case's place in the worker's scope, from the projections.
#[derive(Debug, Clone)]
pub struct Scope {
    pub case_id: Uuid,
    pub team_member: bool,
    pub participant: bool,
    pub coordinator: bool,
    pub legal_basis: bool,
}

/// `None` when the case is outside the worker's scope (or does not exist: the two are not told
/// apart).
pub fn scope(conn: &mut dyn Conn, actor: &Actor, case: Uuid) -> Result<Option<Scope>> {
    let Some(row) = conn.query_one(
        "SELECT ci.coordinator_id,
                EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = $2),
                (SELECT MAX(p.legal_basis) FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = $2)
         FROM case_index ci WHERE ci.case_id = $1",
        params![case, actor.staff_id],
    )?
    else {
        return Ok(None);
    };
    let coordinator = row.text(0)? == actor.staff_id.to_string();
    let team_member = row.int(1)? != 0;
    let participation = row.opt_int(2)?;
    let participant = participation.is_some() || coordinator;
    if !team_member && !participant {
        return Ok(None);
    }
    Ok(Some(Scope {
        case_id: case,
        team_member,
        participant,
        coordinator,
        legal_basis: participation == Some(1),
    }))
}

/// Every case in the worker's scope with their place in it, by case id: one indexed range of
/// `scope_index` (kept by the projections' triggers), the same answer as [`scope`] per case.
pub fn scopes(conn: &mut dyn Conn, actor: &Actor) -> Result<Vec<Scope>> {
    let mut out = Vec::new();
    for row in conn.query(
        "SELECT ci.case_id, ci.coordinator_id,
                EXISTS (SELECT 1 FROM members_index m WHERE m.team_id = ci.team_id AND m.staff_id = $1),
                (SELECT MAX(p.legal_basis) FROM participant_index p WHERE p.case_id = ci.case_id AND p.staff_id = $1)
         FROM scope_index s JOIN case_index ci ON ci.case_id = s.case_id
         WHERE s.staff_id = $1",
        params![actor.staff_id],
    )? {
        let coordinator = row.text(1)? == actor.staff_id.to_string();
        let team_member = row.int(2)? != 0;
        let participation = row.opt_int(3)?;
        let participant = participation.is_some() || coordinator;
        if !team_member && !participant {
            continue;
        }
        out.push(Scope {
            case_id: row.uuid(0)?,
            team_member,
            participant,
            coordinator,
            legal_basis: participation == Some(1),
        });
    }
    out.sort_by_key(|s| s.case_id);
    Ok(out)
}

/// Whether rule 3 needs the case's consents to decide the worker's access.
pub fn needs_consents(actor: &Actor, scope: &Scope) -> bool {
    !(scope.team_member || scope.coordinator || scope.legal_basis)
        && consent_sector(actor.profession).is_some()
}

/// The worker's access to each case in `scopes`, reading the consents only of the cases where
/// they decide it (a participant from another sector without a legal basis), in batches.
pub fn accesses(
    conn: &mut dyn Conn,
    actor: &Actor,
    scopes: &[Scope],
    today: Date,
) -> Result<Vec<CaseAccess>> {
    let asking: Vec<Uuid> = scopes
        .iter()
        .filter(|s| needs_consents(actor, s))
        .map(|s| s.case_id)
        .collect();
    let mut consents: std::collections::HashMap<Uuid, Vec<Consent>> = Default::default();
    for stored in crate::records::where_in(
        conn,
        "entity = 'consent' AND archived = 0",
        "case_id",
        &asking,
    )? {
        if let (Some(case), Ok(c)) = (stored.case_id, crate::records::decode::<Consent>(&stored)) {
            consents.entry(case).or_default().push(c);
        }
    }
    Ok(scopes
        .iter()
        .map(|s| {
            let none = Vec::new();
            access(actor, s, consents.get(&s.case_id).unwrap_or(&none), today)
        })
        .collect())
}

/// Rule 3: what a worker in scope sees, given the case's consents on `today`.
pub fn access(actor: &Actor, scope: &Scope, consents: &[Consent], today: Date) -> CaseAccess {
    let full = CaseAccess::Full {
        participant: scope.participant,
        team_member: scope.team_member,
    };
    if scope.team_member || scope.coordinator {
        return full;
    }
    match consent_sector(actor.profession) {
        None => full,
        Some(_) if scope.legal_basis => full,
        Some(sector) if consents.iter().any(|c| c.covers(sector, today)) => full,
        Some(_) => CaseAccess::Limited,
    }
}

/// Rule 2: whether a note with this audience, written by someone of `author_profession`, may
/// be read.
pub fn may_read_note(
    actor: &Actor,
    access: CaseAccess,
    audience: Audience,
    author_profession: Option<Profession>,
) -> bool {
    match (access, audience) {
        (CaseAccess::Limited, _) => false,
        (CaseAccess::Full { .. }, Audience::CaseTeam) => true,
        (CaseAccess::Full { participant, .. }, Audience::OwnDiscipline) => {
            participant && author_profession == Some(actor.profession)
        }
    }
}

/// Rule 4.
pub fn may_see_protected_address(access: CaseAccess) -> bool {
    matches!(
        access,
        CaseAccess::Full {
            participant: true,
            ..
        }
    )
}
