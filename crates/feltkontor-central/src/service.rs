//! The API's operations, one function each, over a connection pool. The HTTP layer parses the
//! request, calls one of these on a blocking thread, and renders the result or error.

use crate::api::*;
use crate::audit::{self, AuditEvent};
use crate::authz::{self, Actor, CaseAccess, Scope};
use crate::db::{read_transaction, Conn, DatabaseUrl, Engine, Pool};
use crate::error::{ErrorCode, Result, ServiceError};
use crate::identity::{self, EnrollInput, SigningKey};
use crate::limits::RateLimiter;
use crate::records::{self, Stored};
use crate::{migrate, params};
use feltkontor_domain::*;
use feltkontor_wire::EntityKind;
use std::collections::HashMap;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

pub struct Config {
    pub database: DatabaseUrl,
    pub pool_size: usize,
    /// How long one database connection is used before it is replaced.
    pub pool_max_lifetime: std::time::Duration,
    /// Requests of one device that run at once on an instance (more answer `rate_limited`).
    pub device_requests: usize,
    /// Requests per second per device, and the burst allowed.
    pub device_rate: (f64, f64),
    /// Requests per second per account (all its devices together).
    pub account_rate: (f64, f64),
    /// How long a device may stay away before its lease runs out (ms; default 72 hours).
    pub lease_ms: i64,
    /// The service's time (see [`crate::clock`]).
    pub clock: Arc<dyn crate::clock::Clock>,
}

impl Config {
    pub fn new(database: DatabaseUrl) -> Config {
        Config {
            database,
            pool_size: 16,
            pool_max_lifetime: crate::db::pool::MAX_LIFETIME,
            device_requests: 6,
            device_rate: (50.0, 200.0),
            account_rate: (100.0, 400.0),
            lease_ms: identity::DEFAULT_LEASE_MS,
            clock: Arc::new(crate::clock::SystemClock),
        }
    }
}

pub struct Central {
    pool: Arc<Pool>,
    directory: std::sync::Mutex<Option<(std::time::Instant, Arc<DirectorySnapshot>)>>,
    audit: audit::AuditWriter,
    key: SigningKey,
    device_limiter: RateLimiter,
    account_limiter: RateLimiter,
    device_slots: crate::limits::DeviceSlots,
    lease_ms: i64,
    clock: Arc<dyn crate::clock::Clock>,
    /// Each worker's pull plan between pulls, once the server listens for every instance's
    /// changes ([`Central::keep_plans`]).
    plans: crate::plans::PlanCache,
    plans_on: std::sync::atomic::AtomicBool,
    /// Each worker's live scope with the scope version it was read at ([`Central::live_scope`]).
    live_scopes: std::sync::Mutex<LiveScopes>,
}

type LiveScopes = std::collections::HashMap<Uuid, (i64, Arc<std::collections::HashSet<Uuid>>)>;

/// Workers whose live scope is kept; past it the kept scopes are dropped and read again.
const LIVE_SCOPES_KEPT: usize = 20_000;

impl Central {
    /// Opens the database. SQLite is migrated on the spot (zero set-up). PostgreSQL must have
    /// been migrated by its owner (`admin migrate`), and the service refuses to run as a role
    /// that would bypass row-level security.
    pub fn open(config: Config) -> Result<Central> {
        let mut conn = config.database.connect()?;
        match conn.engine() {
            Engine::Sqlite => {
                migrate::run(conn.as_mut())?;
            }
            Engine::Postgres => {
                let version = migrate::current_version(conn.as_mut()).unwrap_or(0);
                if version < migrate::LATEST {
                    return Err(ServiceError::unavailable_because(format!(
                        "the PostgreSQL schema is at version {version}, this server needs {}: run `feltkontor-server admin migrate` as the tables' owner",
                        migrate::LATEST
                    )));
                }
                migrate::verify(conn.as_mut())?;
                let role = conn
                    .query_one(
                        "SELECT r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_tables t WHERE t.tablename = 'records' AND t.tableowner = current_user)
                         FROM pg_roles r WHERE r.rolname = current_user",
                        params![],
                    )?
                    .ok_or_else(|| ServiceError::internal("current role not found"))?;
                if role.int(0)? != 0 || role.int(1)? != 0 || role.int(2)? != 0 {
                    return Err(ServiceError::internal(
                        "refusing to serve as a superuser, a BYPASSRLS role or the tables' owner: connect as feltkontor_app so that row-level security applies",
                    ));
                }
            }
        }
        let key = SigningKey::load(conn.as_mut())?;
        drop(conn);
        let pool = Pool::with_lifetime(config.database, config.pool_size, config.pool_max_lifetime);
        Ok(Central {
            audit: audit::AuditWriter::start(pool.clone()),
            directory: std::sync::Mutex::new(None),
            pool,
            key,
            device_limiter: RateLimiter::new(config.device_rate.0, config.device_rate.1),
            account_limiter: RateLimiter::new(config.account_rate.0, config.account_rate.1),
            device_slots: crate::limits::DeviceSlots::new(config.device_requests),
            lease_ms: config.lease_ms,
            clock: config.clock,
            plans: crate::plans::PlanCache::default(),
            plans_on: std::sync::atomic::AtomicBool::new(false),
            live_scopes: Default::default(),
        })
    }

    /// The service's time now (Unix milliseconds).
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn engine(&self) -> Engine {
        self.pool.url().engine()
    }

    /// Readiness: the database answers.
    pub fn ready(&self) -> Result<()> {
        let mut conn = self.pool.get_timeout(std::time::Duration::from_secs(2))?;
        conn.query("SELECT 1", params![])?;
        Ok(())
    }

    pub fn enroll(&self, req: &EnrollRequest) -> Result<TokenResponse> {
        let mut conn = self.pool.get()?;
        let t = identity::enroll(
            &mut *conn,
            &self.key,
            &EnrollInput {
                username: &req.username,
                password: &req.password,
                code: &req.code,
                device_name: &req.device_name,
            },
            self.lease_ms,
            self.now(),
        )?;
        Ok(tokens(t))
    }

    pub fn refresh(&self, req: &RefreshRequest) -> Result<TokenResponse> {
        let mut conn = self.pool.get()?;
        identity::refresh(
            &mut *conn,
            &self.key,
            &req.refresh_token,
            self.lease_ms,
            self.now(),
        )
        .map(tokens)
    }

    /// A new lease for a device whose lease ran out while it was away (password, as at
    /// enrollment).
    pub fn recover_lease(&self, req: &LeaseRequest) -> Result<LeaseResponse> {
        let mut conn = self.pool.get()?;
        let lease = identity::recover_lease(
            &mut *conn,
            req.device_id,
            &req.username,
            &req.password,
            self.lease_ms,
            self.now(),
        )?;
        Ok(LeaseResponse {
            lease_secret: lease.secret,
            lease_expires_at: crate::rfc3339_ms(lease.expires_at),
        })
    }

    /// Runs the read `f` for the worker behind `bearer`: the rate limits, then one read-only
    /// transaction that checks the device and runs `f`, then `f`'s audit rows, committed before
    /// anything is returned. `f` returns `Ok(Err(e))` for a refusal (which is audited too).
    fn as_worker<T>(
        &self,
        bearer: &str,
        f: impl FnOnce(&mut dyn Conn, &Actor, &mut Vec<AuditEvent>) -> Result<Result<T>>,
    ) -> Result<T> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        self.read_as(&claims, f)
    }

    /// [`Self::as_worker`] after the rate limits were applied (the later pages of a stream).
    fn read_as<T>(
        &self,
        claims: &identity::Claims,
        f: impl FnOnce(&mut dyn Conn, &Actor, &mut Vec<AuditEvent>) -> Result<Result<T>>,
    ) -> Result<T> {
        let claims = claims.clone();
        let _slot = self.slot(&claims)?;
        let mut conn = self.pool.get()?;
        let mut events = Vec::new();
        let outcome = read_transaction(&mut *conn, Some(claims.sub), |conn| {
            let actor = actor_of(conn, &claims)?;
            f(conn, &actor, &mut events)
        })?;
        identity::touch_device(&mut *conn, &claims, self.now())?;
        drop(conn);
        self.audit.record(events)?;
        outcome
    }

    /// Runs `f` for the signed-in worker in one write transaction (its audit rows inside it),
    /// then notes that the device was seen.
    fn as_writer<T>(
        &self,
        bearer: &str,
        f: impl FnOnce(&mut dyn Conn, &Actor) -> Result<T>,
    ) -> Result<T> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        let _slot = self.slot(&claims)?;
        let mut conn = self.pool.get()?;
        let answer = crate::db::transaction(&mut *conn, Some(claims.sub), |conn| {
            let actor = actor_of(conn, &claims)?;
            f(conn, &actor)
        })?;
        identity::touch_device(&mut *conn, &claims, self.now())?;
        Ok(answer)
    }

    pub fn whoami(&self, bearer: &str) -> Result<WhoAmI> {
        self.as_worker(bearer, |conn, actor, _audit| {
            let staff: Staff = records::get_as(conn, EntityKind::Staff, actor.staff_id)?
                .ok_or_else(|| ServiceError::not_found("staff"))?;
            let teams = conn
                .query(
                    "SELECT team_id FROM members_index WHERE staff_id = $1",
                    params![actor.staff_id],
                )?
                .iter()
                .map(|r| r.uuid(0))
                .collect::<Result<Vec<_>>>()?;
            let mut team_infos = Vec::new();
            for t in teams {
                if let Some(team) = records::get_as::<Team>(conn, EntityKind::Team, t)? {
                    team_infos.push(team_info(&team));
                }
            }
            team_infos.sort_by(|a, b| a.name.cmp(&b.name));
            let device = conn
                .query_one(
                    "SELECT name, enrolled_at FROM devices WHERE id = $1",
                    params![actor.device_id],
                )?
                .ok_or_else(|| ServiceError::not_found("device"))?;
            Ok(Ok(WhoAmI {
                staff: StaffInfo {
                    id: staff.id.0,
                    name: staff.name,
                    initials: staff.initials,
                    profession: staff.profession.as_str().into(),
                    sector: staff.sector.as_str().into(),
                },
                teams: team_infos,
                device: DeviceInfo {
                    id: actor.device_id,
                    name: device.text(0)?,
                    enrolled_at: crate::rfc3339_ms(device.int(1)?),
                },
            }))
        })
    }

    pub fn my_cases(&self, bearer: &str) -> Result<CaseList> {
        self.as_worker(bearer, |conn, actor, audit_rows| {
            let today = crate::sync::date_of(self.now());
            let mut directory = self.directory(conn)?;
            let mut cases = Vec::new();
            let scopes = authz::scopes(conn, actor)?;
            let accesses = authz::accesses(conn, actor, &scopes, today)?;
            for (scope, access) in scopes.into_iter().zip(accesses) {
                let case_id = scope.case_id;
                let Some(stored) = records::get(conn, EntityKind::Case, case_id)? else {
                    continue;
                };
                let Some(head) = crate::visibility::case_head(access, &stored) else {
                    continue;
                };
                cases.push(CaseListItem {
                    id: case_id,
                    child_name: head.child_name,
                    status: head.status.as_str().into(),
                    team: directory.team(conn, head.team_id)?,
                    coordinator: directory.contact(conn, head.coordinator_id)?,
                    my_role: role(&scope),
                    access: level(access),
                });
            }
            cases.sort_by(|a, b| {
                (a.my_role as u8, &a.child_name).cmp(&(b.my_role as u8, &b.child_name))
            });
            audit_rows.push(AuditEvent {
                staff_id: Some(actor.staff_id),
                device_id: Some(actor.device_id),
                action: "list_cases",
                case_id: None,
                person_id: None,
                detail: format!("{} cases", cases.len()),
                result: "ok",
            });
            Ok(Ok(CaseList { cases }))
        })
    }

    pub fn case_overview(&self, bearer: &str, case_id: Uuid) -> Result<CaseOverview> {
        self.as_worker(bearer, |conn, actor, audit_rows| {
            let event = |result, detail: &str| read_case(actor, case_id, result, detail);
            let Some(scope) = authz::scope(conn, actor, case_id)? else {
                audit_rows.push(event("denied", "case overview: outside the worker's scope"));
                return Ok(Err(ServiceError::not_found("case")));
            };
            let Some(stored) = records::get(conn, EntityKind::Case, case_id)? else {
                return Ok(Err(ServiceError::not_found("case")));
            };
            let rows = records::of_case(conn, case_id)?;
            let consents: Vec<Consent> = typed(&rows, EntityKind::Consent)?;
            let today = crate::sync::date_of(self.now());
            let access = authz::access(actor, &scope, &consents, today);
            let Some(head) = crate::visibility::case_head(access, &stored) else {
                return Ok(Err(ServiceError::not_found("case")));
            };
            let mut directory = self.directory(conn)?;
            let details = match access {
                CaseAccess::Limited => None,
                CaseAccess::Full { .. } => Some(details(
                    conn,
                    &mut directory,
                    actor,
                    access,
                    &records::decode::<Case>(&stored)?,
                    &rows,
                    &consents,
                    today,
                )?),
            };
            audit_rows.push(event(
                if details.is_some() { "ok" } else { "limited" },
                if details.is_some() {
                    "case overview"
                } else {
                    "case overview: existence and coordinator only (no consent covers the sector)"
                },
            ));
            Ok(Ok(CaseOverview {
                id: case_id,
                child_name: head.child_name,
                status: head.status.as_str().into(),
                team: directory.team(conn, head.team_id)?,
                coordinator: directory.contact(conn, head.coordinator_id)?,
                access: level(access),
                details,
            }))
        })
    }
}

impl Central {
    /// A page of a case's change history (newest first, older than `before`), for the case's
    /// participants. Each entry passes the visibility decision of the record it changed.
    pub fn case_history(
        &self,
        bearer: &str,
        case_id: Uuid,
        before: Option<i64>,
    ) -> Result<feltkontor_wire::api::CaseHistory> {
        use feltkontor_wire::api::{CaseHistory, HistoryEntry};
        self.as_worker(bearer, |conn, actor, audit_rows| {
            let event = |result, detail: &str| read_case(actor, case_id, result, detail);
            let Some(scope) = authz::scope(conn, actor, case_id)? else {
                audit_rows.push(event("denied", "case history: outside the worker's scope"));
                return Ok(Err(ServiceError::not_found("case")));
            };
            let consents = consents_of(conn, case_id)?;
            let access = authz::access(actor, &scope, &consents, crate::sync::date_of(self.now()));
            if !matches!(
                access,
                CaseAccess::Full {
                    participant: true,
                    ..
                }
            ) {
                audit_rows.push(event(
                    "denied",
                    "case history: not a participant of the case",
                ));
                return Ok(Err(ServiceError::new(
                    ErrorCode::Forbidden,
                    "Only the case's participants read its change history.",
                )));
            }
            let mut directory = self.directory(conn)?;
            let professions = directory.professions();
            let viewer = crate::visibility::Viewer {
                actor,
                access: Some(access),
                professions: &professions,
            };
            // Rows are read until a page of entries the worker may see is full (a page of
            // hidden changes is not an empty page), bounded per request.
            let mut devices: HashMap<Uuid, String> = HashMap::new();
            let mut entries = Vec::new();
            let mut mark = before;
            let mut next_before = None;
            for _ in 0..10 {
                let rows = crate::history::page(conn, case_id, mark, crate::history::PAGE)?;
                let full = rows.len() as i64 == crate::history::PAGE;
                for r in rows {
                    mark = Some(r.seq);
                    let stored = records::get_any(conn, r.entity, r.entity_id)?;
                    let Some(fields) = crate::visibility::history_fields(
                        &viewer,
                        stored,
                        r.fields,
                        r.at_ms,
                        &mut |k, id| records::get_any(conn, k, id),
                    )?
                    else {
                        continue;
                    };
                    let device_name = match devices.get(&r.device_id) {
                        Some(n) => n.clone(),
                        None => {
                            let n = conn
                                .query_one(
                                    "SELECT name FROM devices WHERE id = $1",
                                    params![r.device_id],
                                )?
                                .map(|row| row.text(0))
                                .transpose()?
                                .unwrap_or_default();
                            devices.insert(r.device_id, n.clone());
                            n
                        }
                    };
                    entries.push(HistoryEntry {
                        at_ms: r.at_ms,
                        staff_id: r.staff_id,
                        staff_name: directory.contact(conn, r.staff_id)?.name,
                        device_id: r.device_id,
                        device_name,
                        entity: r.entity,
                        entity_id: r.entity_id,
                        fields,
                    });
                    if entries.len() as i64 == crate::history::PAGE {
                        break;
                    }
                }
                next_before = if full || entries.len() as i64 == crate::history::PAGE {
                    mark
                } else {
                    None
                };
                if next_before.is_none() || entries.len() as i64 == crate::history::PAGE {
                    break;
                }
            }
            audit_rows.push(event("ok", "case history"));
            Ok(Ok(CaseHistory {
                entries,
                next_before,
            }))
        })
    }
}

/// An audit row of a reading of `case` (its overview, its history).
fn read_case(actor: &Actor, case: Uuid, result: &'static str, detail: &str) -> AuditEvent {
    AuditEvent {
        staff_id: Some(actor.staff_id),
        device_id: Some(actor.device_id),
        action: "read_case",
        case_id: Some(case),
        person_id: None,
        detail: detail.into(),
        result,
    }
}

/// The worker behind verified `claims`, after checking that the device may still act.
fn actor_of(conn: &mut dyn Conn, claims: &identity::Claims) -> Result<Actor> {
    identity::check_device(conn, claims)?;
    let staff: Staff = records::get_as(conn, EntityKind::Staff, claims.sub)?.ok_or_else(|| {
        ServiceError::new(ErrorCode::Forbidden, "The account has no staff record.")
    })?;
    Ok(Actor {
        staff_id: claims.sub,
        device_id: claims.did,
        name: staff.name,
        profession: staff.profession,
        sector: staff.sector,
    })
}

impl Central {
    fn limits(&self, claims: &identity::Claims) -> Result<()> {
        if let Err(wait) = self.device_limiter.check(&claims.did.to_string()) {
            return Err(rate_limited(wait));
        }
        if let Err(wait) = self.account_limiter.check(&claims.sub.to_string()) {
            return Err(rate_limited(wait));
        }
        Ok(())
    }

    /// A place for one more running request of the claims' device.
    fn slot(&self, claims: &identity::Claims) -> Result<crate::limits::DeviceSlot<'_>> {
        self.device_slots.enter(claims.did).ok_or_else(|| {
            ServiceError::new(
                ErrorCode::RateLimited,
                "This computer has several requests running already. Wait a moment.",
            )
            .with_retry_after(1)
        })
    }

    /// Checks an access token (signature, expiry, rate) without touching the database: for
    /// live updates, whose answer carries no data.
    pub fn check_token(&self, bearer: &str) -> Result<()> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)
    }

    /// For a live-update wait: the worker and the cases in their scope now (one indexed
    /// range), to tell which changes concern them; the device is checked as for any request.
    pub fn live_scope(&self, bearer: &str) -> Result<(Uuid, Arc<std::collections::HashSet<Uuid>>)> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        let mut conn = self.pool.get()?;
        let cases = crate::db::read_transaction(&mut *conn, Some(claims.sub), |conn| {
            // A revoked or disabled device hears nothing, not even that something changed.
            identity::check_device(conn, &claims)?;
            // Every device waits again and again: the scope read last time serves while the
            // worker's scope version (moved by every change of their scope rows) is the same,
            // read in the same snapshot. One row instead of the whole scope.
            let version = crate::sync::scope_version(conn, claims.sub)?;
            if let Some((v, kept)) = self.live_scopes.lock().unwrap().get(&claims.sub) {
                if *v == version {
                    return Ok(kept.clone());
                }
            }
            let cases: Arc<std::collections::HashSet<Uuid>> = Arc::new(
                conn.query(
                    "SELECT case_id FROM scope_index WHERE staff_id = $1",
                    params![claims.sub],
                )?
                .iter()
                .map(|r| r.uuid(0))
                .collect::<Result<_>>()?,
            );
            let mut kept = self.live_scopes.lock().unwrap();
            if kept.len() >= LIVE_SCOPES_KEPT {
                kept.clear();
            }
            kept.insert(claims.sub, (version, cases.clone()));
            Ok(cases)
        })?;
        Ok((claims.sub, cases))
    }

    /// The worker hands the device back: after it pushed everything it retires itself (no more
    /// tokens, no lease renewal, like a revoked device) and then wipes its local data.
    pub fn retire(&self, bearer: &str) -> Result<RetireResponse> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        let _slot = self.slot(&claims)?;
        let mut conn = self.pool.get()?;
        let now = self.now();
        crate::db::transaction(&mut *conn, Some(claims.sub), |conn| {
            identity::check_device(conn, &claims)?;
            conn.execute(
                "UPDATE devices SET revoked_at = $1, token_generation = token_generation + 1 WHERE id = $2 AND revoked_at IS NULL",
                crate::params![now, claims.did],
            )?;
            crate::audit::append(
                conn,
                &AuditEvent {
                    staff_id: Some(claims.sub),
                    device_id: Some(claims.did),
                    action: "device_retire",
                    case_id: None,
                    person_id: None,
                    detail: "the device was handed back; its local data is wiped".into(),
                    result: "ok",
                },
            )?;
            Ok(())
        })?;
        Ok(RetireResponse {
            retired_at: crate::rfc3339_ms(now),
        })
    }

    /// Applies a device's pushed changes in one transaction, with their audit rows.
    /// Applies a device's changes; says what they touched (already told to every instance on
    /// PostgreSQL, see [`crate::live`]).
    pub fn push(
        &self,
        bearer: &str,
        req: &feltkontor_wire::sync::PushRequest,
    ) -> Result<(feltkontor_wire::sync::PushResponse, crate::live::Touched)> {
        self.as_writer(bearer, |conn, actor| {
            let mut touched = crate::live::Touched::default();
            let answer = crate::sync::push(conn, actor, req, self.now(), &mut touched)?;
            crate::live::notify(conn, &touched)?;
            Ok((answer, touched))
        })
    }

    /// Records the device's access-log entries in the audit log, each once.
    pub fn upload_access(
        &self,
        bearer: &str,
        req: &feltkontor_wire::sync::AccessUpload,
    ) -> Result<feltkontor_wire::sync::AccessUploadResponse> {
        self.as_writer(bearer, |conn, actor| {
            crate::sync::upload_access(conn, actor, req, self.now())
        })
    }

    /// The quarantined notes this worker decides on (coordinator, or a leader on the team).
    pub fn quarantined(&self, bearer: &str) -> Result<feltkontor_wire::sync::QuarantineList> {
        self.as_worker(bearer, |conn, actor, audit_rows| {
            Ok(crate::sync::quarantined(
                conn,
                actor,
                self.now(),
                audit_rows,
            ))
        })
    }

    /// Accepts a quarantined note into its case, or keeps it out, with its audit rows.
    pub fn resolve_quarantined(
        &self,
        bearer: &str,
        decision: &feltkontor_wire::sync::QuarantineDecision,
    ) -> Result<(
        feltkontor_wire::sync::QuarantineResolved,
        crate::live::Touched,
    )> {
        self.as_writer(bearer, |conn, actor| {
            let mut touched = crate::live::Touched::default();
            let answer =
                crate::sync::resolve_quarantined(conn, actor, decision, self.now(), &mut touched)?;
            crate::live::notify(conn, &touched)?;
            Ok((answer, touched))
        })
    }

    /// One page of what the worker may see, after the device's cursors.
    pub fn pull(
        &self,
        bearer: &str,
        req: &feltkontor_wire::sync::PullRequest,
    ) -> Result<feltkontor_wire::sync::PullResponse> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        self.pull_page(&claims, req)
    }

    /// The checksums of the buckets the device holds, to compare with its own (see
    /// [`feltkontor_wire::sync::VerifyResponse`]). No record is sent; the audit log notes the
    /// comparison.
    pub fn verify(
        &self,
        bearer: &str,
        req: &feltkontor_wire::sync::VerifyRequest,
    ) -> Result<feltkontor_wire::sync::VerifyResponse> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        self.read_as(&claims, |conn, actor, audit_rows| {
            let answer = crate::sync::verify(conn, actor, req, self.now())?;
            audit_rows.push(AuditEvent {
                staff_id: Some(actor.staff_id),
                device_id: Some(actor.device_id),
                action: "sync_verify",
                case_id: None,
                person_id: None,
                detail: format!("checksums of {} buckets", answer.checksums.len()),
                result: "ok",
            });
            Ok(Ok(answer))
        })
    }

    /// Opens a stream of pages for a device (a first sync): the token is checked and the rate
    /// limits count the stream once. Each page is then [`Self::stream_page`]: what
    /// [`Self::pull`] would answer for the cursors the pages before it leave, in its own read
    /// transaction (the device and its access are checked again for each).
    pub fn open_stream(&self, bearer: &str) -> Result<PullStream> {
        let claims = identity::verify_access_token(&self.key, bearer, self.now())?;
        self.limits(&claims)?;
        Ok(PullStream {
            device: claims.did,
            claims,
        })
    }

    /// One page of an open stream.
    pub fn stream_page(
        &self,
        stream: &PullStream,
        req: &feltkontor_wire::sync::PullRequest,
    ) -> Result<feltkontor_wire::sync::PullResponse> {
        self.pull_page(&stream.claims, req)
    }

    fn pull_page(
        &self,
        claims: &identity::Claims,
        req: &feltkontor_wire::sync::PullRequest,
    ) -> Result<feltkontor_wire::sync::PullResponse> {
        // Before the read snapshot: whatever is heard from here on stays marked.
        let ticket = self
            .plans_on
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| self.plans.begin(claims.sub));
        self.read_as(claims, |conn, actor, audit_rows| {
            let page = self.pull_planned(conn, actor, req, ticket.as_ref())?;
            for b in page.buckets.iter().filter(|b| !b.records.is_empty()) {
                audit_rows.push(AuditEvent {
                    staff_id: Some(actor.staff_id),
                    device_id: Some(actor.device_id),
                    action: "sync_read",
                    case_id: b.bucket.strip_prefix("case:").and_then(|c| c.parse().ok()),
                    person_id: None,
                    detail: format!("{} records of {}", b.records.len(), b.bucket),
                    result: "ok",
                });
            }
            Ok(Ok(page))
        })
    }
}

impl Central {
    /// From now on each worker's pull plan is kept between pulls, brought up to date by what
    /// [`Central::heard`] is told (see `plans.rs`). For a server that hears every change made
    /// at every instance: PostgreSQL with a listening connection.
    /// `false` (the listening connection was lost): plans are made afresh for every pull
    /// until it is back. Either way the plans kept so far are dropped.
    pub fn keep_plans(&self, on: bool) {
        self.plans_on.store(on, std::sync::atomic::Ordering::SeqCst);
        self.plans.heard(&crate::live::Touched::everyone());
    }

    /// A change was applied (here or at another instance).
    pub fn heard(&self, touched: &crate::live::Touched) {
        self.plans.heard(touched);
    }

    fn pull_planned(
        &self,
        conn: &mut dyn Conn,
        actor: &Actor,
        req: &feltkontor_wire::sync::PullRequest,
        ticket: Option<&crate::plans::Ticket>,
    ) -> Result<feltkontor_wire::sync::PullResponse> {
        let now = self.now();
        let Some(ticket) = ticket else {
            return crate::sync::pull(conn, actor, req, now);
        };
        let staff = actor.staff_id;
        let today = crate::sync::date_of(now);
        // One row: has what the worker may see changed since the plan was made?
        let version = crate::sync::scope_version(conn, staff)?;
        match &ticket.kept {
            Some((plan, v, day)) if *v == version && *day == today => {
                let mut plan = plan.clone();
                if !ticket.dirty.is_empty() {
                    if ticket.dirty.len() > 32 {
                        plan = crate::sync::plan(conn, actor, now)?;
                    } else {
                        crate::sync::replan(conn, actor, now, &mut plan, &ticket.dirty)?;
                    }
                    self.plans.store(staff, ticket, &plan, version, today);
                }
                crate::sync::pull_with(conn, actor, req, now, &plan, false)
            }
            _ => {
                let plan = crate::sync::plan(conn, actor, now)?;
                self.plans.store(staff, ticket, &plan, version, today);
                crate::sync::pull_with(conn, actor, req, now, &plan, true)
            }
        }
    }
}

/// A device's open pull stream (see [`Central::open_stream`]).
pub struct PullStream {
    claims: identity::Claims,
    /// The device reading it.
    pub device: Uuid,
}

fn rate_limited(wait: u64) -> ServiceError {
    ServiceError::new(
        ErrorCode::RateLimited,
        "Too many requests from this device or account. Wait a moment.",
    )
    .with_retry_after(wait)
}

fn tokens(t: identity::Tokens) -> TokenResponse {
    TokenResponse {
        access_token: t.access_token,
        token_type: "Bearer".into(),
        expires_in: t.expires_in,
        refresh_token: t.refresh_token,
        device_id: t.device_id,
        staff_id: t.staff_id,
        lease_secret: t.lease.secret,
        lease_expires_at: crate::rfc3339_ms(t.lease.expires_at),
    }
}

fn role(scope: &Scope) -> MyRole {
    if scope.coordinator {
        MyRole::Coordinator
    } else if scope.participant {
        MyRole::Participant
    } else {
        MyRole::TeamMember
    }
}

fn level(a: CaseAccess) -> AccessLevel {
    match a {
        CaseAccess::Full { .. } => AccessLevel::Full,
        CaseAccess::Limited => AccessLevel::Limited,
    }
}

fn team_info(t: &Team) -> TeamInfo {
    TeamInfo {
        id: t.id.0,
        name: t.name.clone(),
        district: t.district.clone(),
    }
}

fn typed<T: serde::de::DeserializeOwned>(rows: &[Stored], kind: EntityKind) -> Result<Vec<T>> {
    rows.iter()
        .filter(|r| r.entity == kind)
        .map(records::decode)
        .collect()
}

fn consents_of(conn: &mut dyn Conn, case: Uuid) -> Result<Vec<Consent>> {
    let rows = records::of_case_kind(conn, case, EntityKind::Consent)?;
    typed(&rows, EntityKind::Consent)
}

/// The staff and team directory (reference data), shared by all requests and reloaded when
/// older than [`DIRECTORY_TTL`]: a colleague's new name shows within seconds, and a case read
/// does not look up each participant one by one.
pub struct DirectorySnapshot {
    staff: HashMap<Uuid, (Staff, Option<String>)>,
    teams: HashMap<Uuid, TeamInfo>,
}

const DIRECTORY_TTL: std::time::Duration = std::time::Duration::from_secs(10);

fn load_directory(conn: &mut dyn Conn) -> Result<DirectorySnapshot> {
    let mut staff = HashMap::new();
    for r in conn.query(
        "SELECT r.data, a.contact FROM records r LEFT JOIN accounts a ON a.staff_id = r.id
         WHERE r.entity = 'staff' AND r.archived = 0",
        params![],
    )? {
        let s: Staff = serde_json::from_str(&r.text(0)?)
            .map_err(|e| ServiceError::internal(format!("staff record: {e}")))?;
        staff.insert(s.id.0, (s, r.opt_text(1)?));
    }
    let mut teams = HashMap::new();
    for t in records::all_of(conn, EntityKind::Team)? {
        let t: Team = records::decode(&t)?;
        teams.insert(t.id.0, team_info(&t));
    }
    Ok(DirectorySnapshot { staff, teams })
}

impl Central {
    fn directory(&self, conn: &mut dyn Conn) -> Result<Directory> {
        {
            let cached = self.directory.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, snap)) = &*cached {
                if at.elapsed() < DIRECTORY_TTL {
                    return Ok(Directory { snap: snap.clone() });
                }
            }
        }
        let snap = Arc::new(load_directory(conn)?);
        *self.directory.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), snap.clone()));
        Ok(Directory { snap })
    }
}

/// One request's view of the directory; staff or teams newer than the snapshot are looked up.
struct Directory {
    snap: Arc<DirectorySnapshot>,
}

impl Directory {
    /// Every staff member's profession, as the snapshot holds them.
    fn professions(&self) -> std::collections::BTreeMap<Uuid, feltkontor_wire::Profession> {
        self.snap
            .staff
            .iter()
            .map(|(id, (s, _))| (*id, s.profession))
            .collect()
    }

    fn staff(&mut self, conn: &mut dyn Conn, id: Uuid) -> Result<Option<(Staff, Option<String>)>> {
        if let Some(s) = self.snap.staff.get(&id) {
            return Ok(Some(s.clone()));
        }
        let staff: Option<Staff> = records::get_as(conn, EntityKind::Staff, id)?;
        let contact = conn
            .query_one(
                "SELECT contact FROM accounts WHERE staff_id = $1",
                params![id],
            )?
            .map(|r| r.text(0))
            .transpose()?;
        Ok(staff.map(|s| (s, contact)))
    }

    fn contact(&mut self, conn: &mut dyn Conn, id: Uuid) -> Result<StaffContact> {
        Ok(match self.staff(conn, id)? {
            Some((s, contact)) => StaffContact {
                id,
                name: s.name,
                profession: s.profession.as_str().into(),
                contact,
            },
            None => StaffContact {
                id,
                name: String::new(),
                profession: String::new(),
                contact: None,
            },
        })
    }

    fn team(&mut self, conn: &mut dyn Conn, id: Uuid) -> Result<Option<TeamInfo>> {
        if let Some(t) = self.snap.teams.get(&id) {
            return Ok(Some(t.clone()));
        }
        Ok(records::get_as::<Team>(conn, EntityKind::Team, id)?.map(|t| team_info(&t)))
    }
}

fn date(d: time::Date) -> String {
    d.to_string()
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; each is a distinct input"
)]
fn details(
    conn: &mut dyn Conn,
    directory: &mut Directory,
    actor: &Actor,
    access: CaseAccess,
    case: &Case,
    rows: &[Stored],
    consents: &[Consent],
    today: time::Date,
) -> Result<CaseDetails> {
    let mut participants = Vec::new();
    for p in typed::<Participant>(rows, EntityKind::Participant)? {
        participants.push(ParticipantInfo {
            staff: directory.contact(conn, p.staff_id.0)?,
            role: p.role,
            legal_basis: p.legal_basis,
        });
    }
    participants.sort_by(|a, b| a.staff.name.cmp(&b.staff.name));
    let phones = typed::<Phone>(rows, EntityKind::Phone)?;
    let professions = directory.professions();
    let viewer = crate::visibility::Viewer {
        actor,
        access: Some(access),
        professions: &professions,
    };
    // What the worker may see of each record of the case: the one visibility decision.
    let mut withheld: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut hidden = std::collections::HashSet::new();
    for r in rows {
        let by_id =
            |k: EntityKind, id: Uuid| rows.iter().find(|s| s.entity == k && s.id == id).cloned();
        match crate::visibility::decide(
            &viewer,
            r.clone(),
            std::collections::BTreeMap::new(),
            &mut |k, id| Ok(by_id(k, id)),
        )? {
            Some(seen) => {
                withheld.insert(r.id, seen.redacted);
            }
            None => {
                hidden.insert(r.id);
            }
        }
    }
    let withheld_field =
        |id: Uuid, f: &str| withheld.get(&id).is_some_and(|w| w.iter().any(|x| x == f));
    let mut persons: Vec<PersonInfo> = typed::<Person>(rows, EntityKind::Person)?
        .into_iter()
        .filter(|p| !hidden.contains(&p.id.0))
        .map(|p| PersonInfo {
            id: p.id.0,
            phones: phones
                .iter()
                .filter(|ph| ph.person_id == p.id)
                .map(|ph| ph.number.clone())
                .collect(),
            address: if withheld_field(p.id.0, "address") {
                None
            } else {
                p.address.map(|a| a.0)
            },
            name: p.name,
            relation: p.relation.as_str().into(),
            custody: p.custody,
            protected_address: p.protected_address,
            language: p.language,
            interpreter_needed: p.interpreter_needed,
            do_not_contact: p.do_not_contact,
        })
        .collect();
    persons.sort_by(|a, b| a.name.cmp(&b.name));
    let mut consent_infos: Vec<ConsentInfo> = consents
        .iter()
        .map(|c| ConsentInfo {
            id: c.id.0,
            sectors: c.sectors.iter().map(|s| s.as_str().to_owned()).collect(),
            valid_from: date(c.valid_from),
            valid_to: c.valid_to.map(date),
            withdrawn_at: c.withdrawn_at.and_then(|t| t.format(&Rfc3339).ok()),
            valid_now: c.withdrawn_at.is_none_or(|w| today < w.date())
                && c.valid_from <= today
                && c.valid_to.is_none_or(|to| today <= to),
        })
        .collect();
    consent_infos.sort_by(|a, b| b.valid_from.cmp(&a.valid_from));
    let mut agreements: Vec<AgreementInfo> = typed::<Agreement>(rows, EntityKind::Agreement)?
        .into_iter()
        .map(|a| AgreementInfo {
            id: a.id.0,
            what: a.what,
            due_on: a.due_on.map(date),
            done: a.done_at.is_some(),
        })
        .collect();
    agreements.sort_by(|a, b| (a.done, &a.due_on).cmp(&(b.done, &b.due_on)));
    let mut notes: Vec<CaseNote> = typed::<CaseNote>(rows, EntityKind::Note)?;
    notes.sort_by_key(|n| std::cmp::Reverse((n.occurred_at, n.id)));
    let mut readable = Vec::new();
    for n in notes {
        if hidden.contains(&n.id.0) {
            continue;
        }
        let author = directory.staff(conn, n.author_id.0)?;
        readable.push(NoteInfo {
            id: n.id.0,
            kind: n.kind.as_str().into(),
            occurred_at: n.occurred_at.format(&Rfc3339).unwrap_or_default(),
            author: author.map(|(s, _)| s.name),
            status: n.status.as_str().into(),
            statutory: n.statutory,
            audience: n.audience.as_str().into(),
            body: n.body.0,
            child_words: n.child_words.0,
            family_perspective: n.family_perspective.0,
        });
        if readable.len() >= 200 {
            break;
        }
    }
    let child_words = readable
        .iter()
        .filter(|n| !n.child_words.trim().is_empty())
        .take(5)
        .cloned()
        .collect();
    readable.truncate(20);
    Ok(CaseDetails {
        child_birth_date: date(case.child_birth_date),
        child_cpr: case.child_cpr.as_ref().map(|c| c.expose().to_owned()),
        child_institution: case.child_institution.clone(),
        opened_on: date(case.opened_on),
        participants,
        persons,
        consents: consent_infos,
        agreements,
        child_words,
        latest_notes: readable,
    })
}
