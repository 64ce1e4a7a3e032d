//! The administrator's operations (the server binary's `admin` subcommands): teams, staff
//! accounts, memberships, enrollment codes, devices, and the audit log's check and exports.
//! On PostgreSQL they run as the tables' owner (a role that bypasses row-level security).

use crate::audit::{self, AuditEvent, AuditRow};
use crate::db::{transaction, Conn};
use crate::error::{Result, ServiceError};
use crate::identity::{self, sha256_hex};
use crate::records;
use crate::{now_ms, params};
use feltkontor_domain::{Staff, Team, TeamMember};
use feltkontor_wire::{EntityKind, Profession, RowId, StaffId, StaffSector, TeamId};
use serde::Serialize;
use uuid::Uuid;

pub(crate) fn admin_event(action: &'static str, detail: String) -> AuditEvent {
    AuditEvent {
        staff_id: None,
        device_id: None,
        action,
        case_id: None,
        person_id: None,
        detail,
        result: "ok",
    }
}

fn validation(e: feltkontor_domain::ValidationError) -> ServiceError {
    ServiceError::invalid("input", e.to_string())
}

pub fn create_team(conn: &mut dyn Conn, name: &str, district: &str) -> Result<Uuid> {
    let team = Team {
        id: TeamId::new(),
        name: name.trim().into(),
        district: district.trim().into(),
    };
    team.validate().map_err(validation)?;
    transaction(conn, None, |conn| {
        if find_team(conn, &team.name)?.is_some() {
            return Err(ServiceError::invalid(
                "name",
                format!("a team named {:?} exists", team.name),
            ));
        }
        records::put(conn, EntityKind::Team, team.id.0, &team)?;
        // Reference data: every waiting device hears of it (on PostgreSQL, at every instance).
        crate::live::notify(conn, &crate::live::Touched::everyone())?;
        audit::append(
            conn,
            &admin_event("admin", format!("team created: {}", team.id)),
        )?;
        Ok(team.id.0)
    })
}

/// A team by id or exact name.
pub fn find_team(conn: &mut dyn Conn, id_or_name: &str) -> Result<Option<Uuid>> {
    if let Ok(id) = id_or_name.parse::<Uuid>() {
        return Ok(records::get(conn, EntityKind::Team, id)?.map(|t| t.id));
    }
    Ok(records::all_of(conn, EntityKind::Team)?
        .into_iter()
        .find(|t| t.data.get("name").and_then(|n| n.as_str()) == Some(id_or_name))
        .map(|t| t.id))
}

pub struct NewStaff<'a> {
    pub name: &'a str,
    pub initials: &'a str,
    pub profession: Profession,
    pub sector: StaffSector,
    pub username: &'a str,
    pub password: &'a str,
    pub contact: &'a str,
}

pub fn create_staff(conn: &mut dyn Conn, s: &NewStaff<'_>) -> Result<Uuid> {
    let staff = Staff {
        id: StaffId::new(),
        name: s.name.trim().into(),
        initials: s.initials.trim().to_uppercase(),
        profession: s.profession,
        sector: s.sector,
    };
    staff.validate().map_err(validation)?;
    create_account(conn, &staff, s.username, s.password, s.contact)?;
    Ok(staff.id.0)
}

/// A staff record and its account (also used by the demo seeding for existing staff records).
pub fn create_account(
    conn: &mut dyn Conn,
    staff: &Staff,
    username: &str,
    password: &str,
    contact: &str,
) -> Result<()> {
    let username = username.trim().to_lowercase();
    if username.is_empty()
        || username.len() > 200
        || !username
            .chars()
            .all(|c| c.is_alphanumeric() || ".-_@".contains(c))
    {
        return Err(ServiceError::invalid(
            "username",
            "a user name of letters, digits and . - _ @",
        ));
    }
    if contact.trim().is_empty() || contact.len() > 200 {
        return Err(ServiceError::invalid(
            "contact",
            "a work phone or e-mail is required",
        ));
    }
    let hash = identity::hash_password_for(password, &[&username, &staff.name, &staff.initials])?;
    transaction(conn, None, |conn| {
        if conn
            .query_one(
                "SELECT 1 FROM accounts WHERE username = $1",
                params![&username],
            )?
            .is_some()
        {
            return Err(ServiceError::invalid(
                "username",
                format!("the user name {username:?} is taken"),
            ));
        }
        records::put(conn, EntityKind::Staff, staff.id.0, staff)?;
        // Reference data: every waiting device hears of it (on PostgreSQL, at every instance).
        crate::live::notify(conn, &crate::live::Touched::everyone())?;
        conn.execute(
            "INSERT INTO accounts (staff_id, username, password_hash, contact, created_at) VALUES ($1, $2, $3, $4, $5)",
            params![staff.id.0, &username, hash, contact.trim(), now_ms()],
        )?;
        audit::append(
            conn,
            &admin_event("admin", format!("account created for staff {}", staff.id)),
        )?;
        Ok(())
    })
}

fn staff_of(conn: &mut dyn Conn, username: &str) -> Result<Uuid> {
    conn.query_one(
        "SELECT staff_id FROM accounts WHERE username = $1",
        params![username.trim().to_lowercase()],
    )?
    .ok_or_else(|| ServiceError::not_found("user"))?
    .uuid(0)
}

pub fn add_member(conn: &mut dyn Conn, username: &str, team: &str) -> Result<()> {
    transaction(conn, None, |conn| {
        let staff = staff_of(conn, username)?;
        let team = find_team(conn, team)?.ok_or_else(|| ServiceError::not_found("team"))?;
        if conn
            .query_one(
                "SELECT 1 FROM members_index WHERE staff_id = $1 AND team_id = $2",
                params![staff, team],
            )?
            .is_some()
        {
            return Ok(());
        }
        let m = TeamMember {
            id: RowId::new(),
            team_id: TeamId(team),
            staff_id: StaffId(staff),
        };
        records::put(conn, EntityKind::TeamMember, m.id.0, &m)?;
        // Reference data: every waiting device hears of it (on PostgreSQL, at every instance).
        crate::live::notify(conn, &crate::live::Touched::everyone())?;
        audit::append(
            conn,
            &admin_event("admin", format!("staff {staff} added to team {team}")),
        )?;
        Ok(())
    })
}

pub fn remove_member(conn: &mut dyn Conn, username: &str, team: &str) -> Result<()> {
    transaction(conn, None, |conn| {
        let staff = staff_of(conn, username)?;
        let team = find_team(conn, team)?.ok_or_else(|| ServiceError::not_found("team"))?;
        let rows = conn.query(
            "SELECT member_id FROM members_index WHERE staff_id = $1 AND team_id = $2",
            params![staff, team],
        )?;
        for r in rows {
            records::archive(conn, EntityKind::TeamMember, r.uuid(0)?)?;
            // Reference data: every waiting device hears of it (on PostgreSQL, at every instance).
            crate::live::notify(conn, &crate::live::Touched::everyone())?;
        }
        audit::append(
            conn,
            &admin_event("admin", format!("staff {staff} removed from team {team}")),
        )?;
        Ok(())
    })
}

/// Purges deleted (archived) records of cases whose last change is older than `days` days:
/// the rows go, and each case's horizon moves past them, so a device that synced the case
/// before and may have missed a deletion pulls that case again from the start. Returns how
/// many records were purged. Reference data (teams, staff, memberships) is never purged.
pub fn purge_tombstones(conn: &mut dyn Conn, days: i64, now_ms: i64) -> Result<u64> {
    if !(0..=36_500).contains(&days) {
        return Err(ServiceError::invalid(
            "older_than_days",
            "Give a number of days from 0 to 36500.",
        ));
    }
    let cutoff = now_ms.saturating_sub(days.saturating_mul(24 * 3600 * 1000));
    transaction(conn, None, |conn| {
        let rows = conn.query(
            "SELECT entity, id, case_id, field_hlc, seq FROM records
             WHERE archived = 1 AND case_id IS NOT NULL",
            params![],
        )?;
        let mut horizons: std::collections::BTreeMap<Uuid, i64> = Default::default();
        let mut purged = 0u64;
        for r in rows {
            let clocks: std::collections::BTreeMap<String, feltkontor_wire::Hlc> =
                serde_json::from_str(&r.text(3)?)
                    .map_err(|e| ServiceError::internal(format!("field_hlc: {e}")))?;
            let last = clocks.values().map(|h| h.wall_ms).max().unwrap_or(0);
            if last as i64 >= cutoff {
                continue;
            }
            let case = r.uuid(2)?;
            let seq = r.int(4)?;
            conn.execute(
                "DELETE FROM records WHERE entity = $1 AND id = $2",
                params![r.text(0)?, r.uuid(1)?],
            )?;
            // Who changed the purged record, when and from where goes with it (a purged
            // case's whole history with the case).
            if r.text(0)? == "case" {
                conn.execute("DELETE FROM case_history WHERE case_id = $1", params![case])?;
            } else {
                conn.execute(
                    "DELETE FROM case_history WHERE case_id = $1 AND entity_id = $2",
                    params![case, r.uuid(1)?],
                )?;
            }
            conn.execute(
                "UPDATE bucket_heads SET records = records - 1 WHERE bucket = $1",
                params![case.to_string()],
            )?;
            let h = horizons.entry(case).or_insert(0);
            *h = (*h).max(seq);
            purged += 1;
        }
        for (case, seq) in &horizons {
            let held = conn
                .query_one(
                    "SELECT seq FROM case_horizon WHERE case_id = $1",
                    params![*case],
                )?
                .map(|r| r.int(0))
                .transpose()?;
            if held.is_some_and(|h| h >= *seq) {
                continue;
            }
            conn.execute(
                "INSERT INTO case_horizon (case_id, seq) VALUES ($1, $2)
                 ON CONFLICT (case_id) DO UPDATE SET seq = excluded.seq",
                params![*case, *seq],
            )?;
        }
        // Horizons moved: every instance makes its plans afresh.
        conn.execute("UPDATE scope_versions SET n = n + 1", params![])?;
        crate::live::notify(conn, &crate::live::Touched::everyone())?;
        audit::append(
            conn,
            &admin_event(
                "purge_tombstones",
                format!(
                    "{purged} deleted records older than {days} days purged from {} cases",
                    horizons.len()
                ),
            ),
        )?;
        Ok(purged)
    })
}

/// A one-time enrollment code for `username`, valid `minutes`.
pub fn enrollment_code(
    conn: &mut dyn Conn,
    username: &str,
    minutes: i64,
    now: i64,
) -> Result<String> {
    if !(1..=24 * 60).contains(&minutes) {
        return Err(ServiceError::invalid(
            "minutes",
            "a code is valid between 1 minute and 24 hours",
        ));
    }
    transaction(conn, None, |conn| {
        let staff = staff_of(conn, username)?;
        let code = identity::new_enrollment_code();
        let normalized: String = code.chars().filter(|c| *c != '-').collect();
        conn.execute(
            "INSERT INTO enrollment_codes (code_hash, staff_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            params![sha256_hex(&normalized), staff, now, now + minutes * 60_000],
        )?;
        audit::append(
            conn,
            &admin_event("admin", format!("enrollment code issued for staff {staff}")),
        )?;
        Ok(code)
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceRow {
    pub id: Uuid,
    pub username: String,
    pub name: String,
    pub enrolled_at_ms: i64,
    pub last_seen_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

pub fn list_devices(conn: &mut dyn Conn, username: Option<&str>) -> Result<Vec<DeviceRow>> {
    conn.query(
        "SELECT d.id, a.username, d.name, d.enrolled_at, d.last_seen_at, d.revoked_at
         FROM devices d JOIN accounts a ON a.staff_id = d.staff_id
         WHERE $1 = '' OR a.username = $1 ORDER BY a.username, d.enrolled_at",
        params![username.unwrap_or("").trim().to_lowercase()],
    )?
    .iter()
    .map(|r| {
        Ok(DeviceRow {
            id: r.uuid(0)?,
            username: r.text(1)?,
            name: r.text(2)?,
            enrolled_at_ms: r.int(3)?,
            last_seen_at_ms: r.opt_int(4)?,
            revoked_at_ms: r.opt_int(5)?,
        })
    })
    .collect()
}

/// Revokes a device: its next request is told to wipe its data, and it gets no new tokens.
pub fn revoke_device(conn: &mut dyn Conn, device: Uuid) -> Result<()> {
    transaction(conn, None, |conn| {
        let n = conn.execute(
            "UPDATE devices SET revoked_at = $1, token_generation = token_generation + 1 WHERE id = $2 AND revoked_at IS NULL",
            params![now_ms(), device],
        )?;
        if n == 0
            && conn
                .query_one("SELECT 1 FROM devices WHERE id = $1", params![device])?
                .is_none()
        {
            return Err(ServiceError::not_found("device"));
        }
        audit::append(
            conn,
            &AuditEvent {
                device_id: Some(device),
                ..admin_event("admin", format!("device {device} revoked"))
            },
        )?;
        Ok(())
    })
}

/// One line of a citizen's or a case's copy of the log.
#[derive(Debug, Clone, Serialize)]
pub struct ExportLine {
    pub when: String,
    pub who: String,
    pub device: Option<Uuid>,
    pub what: String,
    pub purpose: &'static str,
    pub case_id: Option<Uuid>,
    pub result: String,
}

fn export(
    conn: &mut dyn Conn,
    rows: Vec<AuditRow>,
    case: Option<Uuid>,
    person: Option<Uuid>,
) -> Result<Vec<ExportLine>> {
    let mut names = std::collections::HashMap::new();
    let mut out = Vec::new();
    for r in rows {
        let who = match r.staff_id {
            Some(s) => {
                if let std::collections::hash_map::Entry::Vacant(e) = names.entry(s) {
                    let staff: Option<Staff> = records::get_as(conn, EntityKind::Staff, s)?;
                    e.insert(
                        staff
                            .map(|s| format!("{} ({})", s.name, s.profession))
                            .unwrap_or_else(|| s.to_string()),
                    );
                }
                names[&s].clone()
            }
            None => "administrator".into(),
        };
        out.push(ExportLine {
            when: time::OffsetDateTime::from_unix_timestamp_nanos(r.at_ms as i128 * 1_000_000)
                .ok()
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
            who,
            device: r.device_id,
            purpose: audit::purpose(&r.action),
            what: r.action,
            case_id: r.case_id,
            result: r.result,
        });
    }
    transaction(conn, None, |conn| {
        audit::append(
            conn,
            &AuditEvent {
                case_id: case,
                person_id: person,
                ..admin_event(
                    "export",
                    "the audit log's copy for the citizen or the case".into(),
                )
            },
        )
    })?;
    Ok(out)
}

pub fn export_person(conn: &mut dyn Conn, person: Uuid) -> Result<Vec<ExportLine>> {
    let rows = audit::for_person(conn, person)?;
    export(conn, rows, None, Some(person))
}

pub fn export_case(conn: &mut dyn Conn, case: Uuid) -> Result<Vec<ExportLine>> {
    let rows = audit::for_case(conn, case)?;
    export(conn, rows, Some(case), None)
}
