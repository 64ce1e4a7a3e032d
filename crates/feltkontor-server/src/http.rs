//! The HTTP layer: routes, extraction, problem-details errors, limits. Each handler parses its
//! input, runs one `Central` operation on a blocking thread, and renders the result.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use feltkontor_central::api::*;
use feltkontor_central::limits::RateLimiter;
use feltkontor_central::{Central, ErrorCode, ServiceError};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use utoipa::OpenApi;
use uuid::Uuid;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;
/// A push carries up to 500 change-log entries; notes are long.
pub const SYNC_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// How much of an oversize body is still read (and thrown away) before answering 413. Closing
/// a connection while the client is still sending makes its TCP stack reset, and the client
/// then loses the answer: reading the rest first lets it see a clear "too large". Beyond this,
/// the connection is closed without waiting.
pub const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// The body limit of a route (an extension set per route; [`BODY_LIMIT`] where none is).
#[derive(Clone, Copy)]
struct BodyLimit(usize);

fn too_large() -> ApiError {
    ApiError(ServiceError::new(
        ErrorCode::PayloadTooLarge,
        "The request body is too large.",
    ))
}

/// Reads a request body of at most `limit` bytes (after any decompression). A longer body is
/// read to its end, up to [`DRAIN_LIMIT`], and thrown away, so the 413 reaches the client.
async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT as u64) {
        return Err(too_large());
    }
    let unreadable = || {
        ApiError(ServiceError::invalid(
            "body",
            "The request body could not be read.",
        ))
    };
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| unreadable())?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > DRAIN_LIMIT {
            return Err(too_large());
        }
        if seen <= limit {
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

pub struct AppState {
    pub central: Central,
    /// Unauthenticated endpoints (enrollment, refresh, lease) per client address: a flood
    /// guard, sized for a whole municipality behind one NAT address.
    pub address_limiter: RateLimiter,
    /// The same endpoints per credential: the account named (enrollment, lease) or the refresh
    /// token (one device). What keeps one device or account from hammering.
    pub credential_limiter: RateLimiter,
    pub request_timeout: Duration,
    /// What applied changes touched, as this instance heard them (live updates wait on it).
    pub live: Arc<crate::live::LiveFeed>,
    /// The pull streams open now, bounded per device and in total.
    pub streams: Arc<StreamGate>,
    /// How long a streamed page may wait for the client to take it before the stream ends.
    pub stream_send_timeout: Duration,
    /// How many library calls may run on blocking threads at once before the instance reports
    /// itself not ready (the runtime's blocking threads are bounded; see [`IN_FLIGHT`]).
    pub max_in_flight: usize,
}

/// Bounds the pull streams open at once: per device (a device reads one at a time; two allow
/// a reconnect while the old one winds down) and in total. A stream holds no thread while it
/// waits for its reader, only its place here, until it ends or its reader stops reading.
pub struct StreamGate {
    per_device: usize,
    total: usize,
    open: std::sync::Mutex<std::collections::HashMap<Uuid, usize>>,
}

/// A stream's place in the [`StreamGate`], given back when dropped.
pub struct StreamPlace {
    gate: Arc<StreamGate>,
    device: Uuid,
}

impl StreamGate {
    pub fn new(per_device: usize, total: usize) -> StreamGate {
        StreamGate {
            per_device: per_device.max(1),
            total: total.max(1),
            open: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many streams are open, and the bound.
    pub fn load(&self) -> (usize, usize) {
        (self.lock().values().sum(), self.total)
    }

    fn enter(self: &Arc<Self>, device: Uuid) -> Result<StreamPlace, ApiError> {
        let mut open = self.lock();
        let total: usize = open.values().sum();
        let mine = open.get(&device).copied().unwrap_or(0);
        if mine >= self.per_device {
            return Err(ApiError(
                ServiceError::new(
                    ErrorCode::RateLimited,
                    "This device already has a sync stream open. Wait for it to end.",
                )
                .with_retry_after(5),
            ));
        }
        if total >= self.total {
            return Err(ApiError(
                ServiceError::unavailable(
                    "the service has as many sync streams open as it can serve",
                )
                .with_retry_after(5),
            ));
        }
        *open.entry(device).or_default() += 1;
        Ok(StreamPlace {
            gate: self.clone(),
            device,
        })
    }
}

impl Drop for StreamPlace {
    fn drop(&mut self) {
        let mut open = self.gate.lock();
        if let Some(n) = open.get_mut(&self.device) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.device);
            }
        }
    }
}

impl AppState {
    /// A change was applied here: on SQLite this instance is the only one and tells its own
    /// waiting devices; on PostgreSQL the write's `NOTIFY` reaches every instance, this one
    /// included, by its listening connection.
    pub fn applied(&self, touched: feltkontor_central::live::Touched) {
        // This instance's plans at once (the pushing device pulls next, here).
        self.central.heard(&touched);
        if self.central.engine() == feltkontor_central::db::Engine::Sqlite {
            self.live.publish(touched);
        }
    }
}

pub type Shared = Arc<AppState>;

/// An error response: RFC 9457 problem details.
pub struct ApiError(pub ServiceError);

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        if let Some(internal) = &e.internal {
            // The cause goes to the log; the client gets the plain message only.
            tracing::error!(code = e.code.as_str(), cause = %internal, "request failed");
        } else if e.status() >= 500 {
            tracing::warn!(code = e.code.as_str(), "request failed");
        }
        let problem = e.problem();
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, serde_json::to_vec(&problem).unwrap_or_default()).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = e.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"feltkontor\""),
            );
        }
        resp
    }
}

type ApiResult<T> = Result<axum::Json<T>, ApiError>;

/// A JSON body: size-limited, unknown fields refused, every failure a problem response.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(BODY_LIMIT, |l| l.0);
        let bytes = read_limited(req, limit).await?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            // serde's message names the field and what was wrong, never a value.
            ApiError(ServiceError::invalid(
                "body",
                format!("The request body is not valid: {e}"),
            ))
        })
    }
}

/// The bearer token of the `Authorization` header.
pub struct Bearer(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|t| Bearer(t.trim().to_owned()))
            .filter(|b| !b.0.is_empty() && b.0.len() <= 4096)
            .ok_or_else(|| ApiError(ServiceError::unauthenticated()))
    }
}

/// Library calls on blocking threads now (readiness reports a saturated instance).
pub static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs a library call on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ApiError> {
    use std::sync::atomic::Ordering;
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    let r = tokio::task::spawn_blocking(f).await;
    IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    match r {
        Ok(r) => r.map_err(ApiError),
        Err(e) => Err(ApiError(ServiceError::internal(format!(
            "task failed: {e}"
        )))),
    }
}

/// Limits an unauthenticated request by its client address (the flood guard), then by the
/// credential it carries from that address (`kind` and the value, kept only as a digest): one
/// device or account hammering is stopped, and nobody elsewhere can use up a colleague's
/// allowance by sending their user name.
fn limit_unauthenticated(
    state: &AppState,
    addr: &SocketAddr,
    kind: &str,
    credential: &str,
) -> Result<(), ApiError> {
    use sha2::Digest;
    limit_address(state, addr)?;
    let digest = sha2::Sha256::digest(credential.trim().to_lowercase().as_bytes());
    let key = format!(
        "{kind}:{}:{}",
        hex::encode(&digest[..12]),
        crate::proxy::address_group(addr.ip())
    );
    state.credential_limiter.check(&key).map_err(|wait| {
        ApiError(
            ServiceError::new(
                ErrorCode::RateLimited,
                "Too many requests for this account or device. Wait a moment.",
            )
            .with_retry_after(wait),
        )
    })
}

fn limit_address(state: &AppState, addr: &SocketAddr) -> Result<(), ApiError> {
    state
        .address_limiter
        .check(&crate::proxy::address_group(addr.ip()).to_string())
        .map_err(|wait| {
            ApiError(
                ServiceError::new(
                    ErrorCode::RateLimited,
                    "Too many requests from this address. Wait a moment.",
                )
                .with_retry_after(wait),
            )
        })
}

const PROBLEM: &str = "application/problem+json";

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok".into(),
    })
}

#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready: the database answers", body = Health),
        (status = 503, description = "Not ready", body = Problem, content_type = PROBLEM),
    ))]
async fn ready(State(s): State<Shared>) -> ApiResult<Health> {
    let (streams, most) = s.streams.load();
    let busy = IN_FLIGHT.load(std::sync::atomic::Ordering::Relaxed);
    if streams >= most || busy >= s.max_in_flight {
        return Err(ApiError(ServiceError::unavailable(format!(
            "saturated: {streams} of {most} sync streams open, {busy} of {} calls running",
            s.max_in_flight
        ))));
    }
    let s2 = s.clone();
    blocking(move || s2.central.ready()).await?;
    Ok(axum::Json(Health {
        status: "ok".into(),
    }))
}

#[utoipa::path(post, path = "/v1/enroll", tag = "devices", request_body = EnrollRequest,
    responses(
        (status = 200, description = "The device is enrolled", body = TokenResponse),
        (status = 400, description = "Invalid input", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Wrong user name, password or code", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Throttled", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn enroll(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(req): Body<EnrollRequest>,
) -> ApiResult<TokenResponse> {
    limit_unauthenticated(&s, &addr, "account", &req.username)?;
    let s2 = s.clone();
    Ok(axum::Json(blocking(move || s2.central.enroll(&req)).await?))
}

#[utoipa::path(post, path = "/v1/token", tag = "devices", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New access and refresh tokens (the old refresh token is used up)", body = TokenResponse),
        (status = 400, description = "Invalid input", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Refresh token not valid, replayed, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn token(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(req): Body<RefreshRequest>,
) -> ApiResult<TokenResponse> {
    limit_unauthenticated(&s, &addr, "refresh", &req.refresh_token)?;
    let s2 = s.clone();
    Ok(axum::Json(
        blocking(move || s2.central.refresh(&req)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/lease", tag = "devices", request_body = LeaseRequest,
    responses(
        (status = 200, description = "The device's lease, renewed (its lease ran out while it was away)", body = LeaseResponse),
        (status = 400, description = "Invalid input", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Wrong user name or password, not the worker's device, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Throttled", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn lease(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Body(req): Body<LeaseRequest>,
) -> ApiResult<LeaseResponse> {
    limit_unauthenticated(&s, &addr, "account", &req.username)?;
    let s2 = s.clone();
    Ok(axum::Json(
        blocking(move || s2.central.recover_lease(&req)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/whoami", tag = "workers", security(("bearer" = [])),
    responses(
        (status = 200, description = "The worker, their teams and this device", body = WhoAmI),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn whoami(State(s): State<Shared>, Bearer(token): Bearer) -> ApiResult<WhoAmI> {
    Ok(axum::Json(
        blocking(move || s.central.whoami(&token)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/cases", tag = "cases", security(("bearer" = [])),
    responses(
        (status = 200, description = "The cases the worker coordinates, takes part in, or whose team they are on", body = CaseList),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn my_cases(State(s): State<Shared>, Bearer(token): Bearer) -> ApiResult<CaseList> {
    Ok(axum::Json(
        blocking(move || s.central.my_cases(&token)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}", tag = "cases", security(("bearer" = [])),
    params(("case_id" = Uuid, Path, description = "The case")),
    responses(
        (status = 200, description = "The case overview, as far as the worker may see it", body = CaseOverview),
        (status = 400, description = "Malformed case id", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such case, or not visible to the worker", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn case_overview(
    State(s): State<Shared>,
    Path(case_id): Path<String>,
    Bearer(token): Bearer,
) -> ApiResult<CaseOverview> {
    let case_id: Uuid = case_id.parse().map_err(|_| {
        ApiError(ServiceError::invalid(
            "case_id",
            "The case id is not a UUID.",
        ))
    })?;
    Ok(axum::Json(
        blocking(move || s.central.case_overview(&token, case_id)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/cases/{case_id}/history", tag = "cases", security(("bearer" = [])),
    params(
        ("case_id" = Uuid, Path, description = "The case"),
        ("before" = Option<i64>, Query, description = "Only changes older than this `seq` (the previous page's `next_before`)"),
    ),
    responses(
        (status = 200, description = "A page of the case's change history, newest first: who changed which fields of which record, when, from which device (records the worker may not see are left out)", body = feltkontor_wire::api::CaseHistory),
        (status = 400, description = "Malformed case id or `before`", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Not a participant of the case, or account disabled", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such case, or not visible to the worker", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn case_history(
    State(s): State<Shared>,
    Path(case_id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    Bearer(token): Bearer,
) -> ApiResult<feltkontor_wire::api::CaseHistory> {
    let case_id: Uuid = case_id.parse().map_err(|_| {
        ApiError(ServiceError::invalid(
            "case_id",
            "The case id is not a UUID.",
        ))
    })?;
    let mut before = None;
    for pair in query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "before" {
            before = Some(
                value
                    .parse::<i64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| {
                        ApiError(ServiceError::invalid(
                            "before",
                            "`before` is the positive `next_before` of the previous page.",
                        ))
                    })?,
            );
        }
    }
    Ok(axum::Json(
        blocking(move || s.central.case_history(&token, case_id, before)).await?,
    ))
}

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Feltkontor central service", version = "1", description = "The municipality's sync server for Feltkontor. Errors are RFC 9457 problem details with a stable `code`. Request bodies may be sent gzipped (`Content-Encoding: gzip`; size limits apply to the unpacked body); answers are gzipped for clients that send `Accept-Encoding: gzip`."),
    paths(health, ready, enroll, token, lease, retire, whoami, my_cases, case_overview, case_history, push, pull, pull_stream, verify, access, wait, quarantined, resolve_quarantined),
    modifiers(&BearerScheme),
    tags(
        (name = "operations", description = "Health and readiness"),
        (name = "devices", description = "Enrollment and tokens"),
        (name = "workers", description = "The signed-in worker"),
        (name = "cases", description = "Cases in the worker's scope"),
        (name = "sync", description = "The device's change log up, what the worker may see down"),
    )
)]
pub struct ApiDoc;

#[utoipa::path(post, path = "/v1/sync/push", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::PushRequest, description = "PushRequest: the device's change-log entries, oldest first, numbered 1, 2, 3, … per device"),
    responses(
        (status = 200, description = "PushResponse: done up to `acked_seq`; changes refused for good are listed", body = feltkontor_wire::sync::PushResponse),
        (status = 400, description = "Malformed push, or the device's clock too far ahead (`clock_skew`)", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Changes of another device, or account disabled", body = Problem, content_type = PROBLEM),
        (status = 409, description = "Changes missing before these (`sequence_gap`): resend from the number given", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn push(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::PushRequest>,
) -> ApiResult<feltkontor_wire::sync::PushResponse> {
    let state = s.clone();
    let (answer, touched) = blocking(move || s.central.push(&token, &req)).await?;
    state.applied(touched);
    Ok(axum::Json(answer))
}

#[utoipa::path(post, path = "/v1/sync/access", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::AccessUpload, description = "AccessUpload: the device's access-log entries (cases and persons opened, searches made), each with its id"),
    responses(
        (status = 200, description = "AccessUploadResponse: every entry is in the audit log (a re-sent entry is recorded once)", body = feltkontor_wire::sync::AccessUploadResponse),
        (status = 400, description = "Malformed upload, or an entry stamped too far in the future (`clock_skew`)", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Entries of another worker or device, or account disabled", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn access(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::AccessUpload>,
) -> ApiResult<feltkontor_wire::sync::AccessUploadResponse> {
    Ok(axum::Json(
        blocking(move || s.central.upload_access(&token, &req)).await?,
    ))
}

#[utoipa::path(get, path = "/v1/quarantine", tag = "sync", security(("bearer" = [])),
    responses(
        (status = 200, description = "QuarantineList: notes refused because their author had lost access to the case while offline, waiting for this worker's decision (as the case's coordinator, or a leader on its team)", body = feltkontor_wire::sync::QuarantineList),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn quarantined(
    State(s): State<Shared>,
    Bearer(token): Bearer,
) -> ApiResult<feltkontor_wire::sync::QuarantineList> {
    Ok(axum::Json(
        blocking(move || s.central.quarantined(&token)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/quarantine/resolve", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::QuarantineDecision, description = "QuarantineDecision: the note and whether it is accepted into its case (otherwise it is kept out, and still kept)"),
    responses(
        (status = 200, description = "QuarantineResolved", body = feltkontor_wire::sync::QuarantineResolved),
        (status = 400, description = "Malformed decision, or the note cannot be written as it is", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such note waits for this worker's decision", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The note was signed with other content", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn resolve_quarantined(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::QuarantineDecision>,
) -> ApiResult<feltkontor_wire::sync::QuarantineResolved> {
    let state = s.clone();
    let (answer, touched) = blocking(move || s.central.resolve_quarantined(&token, &req)).await?;
    state.applied(touched);
    Ok(axum::Json(answer))
}

#[utoipa::path(post, path = "/v1/sync/pull", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::PullRequest, description = "PullRequest: the device's cursor per bucket and a page size"),
    responses(
        (status = 200, description = "PullResponse: records after the cursors, the buckets visible now, and whether more wait", body = feltkontor_wire::sync::PullResponse),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn pull(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::PullRequest>,
) -> ApiResult<feltkontor_wire::sync::PullResponse> {
    Ok(axum::Json(
        blocking(move || s.central.pull(&token, &req)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/sync/verify", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::VerifyRequest, description = "VerifyRequest: the device's cursor per bucket"),
    responses(
        (status = 200, description = "VerifyResponse: the checksum of each bucket the device holds that the worker may see and that has nothing after the device's cursor; a device holding something else deletes that bucket and pulls it again", body = feltkontor_wire::sync::VerifyResponse),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn verify(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::VerifyRequest>,
) -> ApiResult<feltkontor_wire::sync::VerifyResponse> {
    Ok(axum::Json(
        blocking(move || s.central.verify(&token, &req)).await?,
    ))
}

/// Pages in one streamed answer at most (100,000 records); the device then asks again.
pub const STREAM_PAGES: usize = 50;

#[utoipa::path(post, path = "/v1/sync/pull/stream", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::PullRequest, description = "PullRequest: the device's cursor per bucket and a page size"),
    responses(
        (status = 200, description = "One PullResponse per line (NDJSON): each page is what /v1/sync/pull answers for the cursors the pages before it leave. The stream ends after the last page (`more` false), after a page with `reset`, or after 50 pages; the device applies each page as it arrives and then asks again from its cursors. A stream that ends without a last page was cut off.", body = feltkontor_wire::sync::PullResponse, content_type = "application/x-ndjson"),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Account disabled", body = Problem, content_type = PROBLEM),
        (status = 413, description = "Body too large", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn pull_stream(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::PullRequest>,
) -> Result<Response, ApiError> {
    type Chunk = Result<Bytes, std::io::Error>;
    let s2 = s.clone();
    let stream = Arc::new(blocking(move || s2.central.open_stream(&token)).await?);
    // The stream's place is taken before its first page and given back when it ends.
    let place = s.streams.enter(stream.device)?;
    let page = |s: Shared, stream: Arc<feltkontor_central::service::PullStream>, req| {
        blocking(move || s.central.stream_page(&stream, &req))
    };
    // An error before the first page is an ordinary problem answer.
    let first = page(s.clone(), stream.clone(), req.clone()).await?;
    let line = |page: &feltkontor_wire::sync::PullResponse| -> Chunk {
        let mut line = serde_json::to_vec(page).map_err(std::io::Error::other)?;
        line.push(b'\n');
        Ok(Bytes::from(line))
    };
    // Pages are made on a blocking thread while the ones before travel (at most two wait in
    // memory); while the reader does not take a page, nothing but this task waits, and a
    // reader that takes none for `stream_send_timeout` ends the stream.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(2);
    tokio::spawn(async move {
        let timeout = s.stream_send_timeout;
        let mut req = req;
        let mut current = first;
        for i in 0..STREAM_PAGES {
            let last = !current.more || !current.reset.is_empty() || i + 1 == STREAM_PAGES;
            match tokio::time::timeout(timeout, tx.send(line(&current))).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return,
                Err(_) => {
                    tracing::info!("pull stream ended: the reader took no page");
                    return;
                }
            }
            if last {
                return;
            }
            feltkontor_wire::sync::advance_cursors(&mut req.cursors, &current);
            current = match page(s.clone(), stream.clone(), req.clone()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("pull stream ended early: {}", e.0);
                    let _ = tokio::time::timeout(
                        timeout,
                        tx.send(Err(std::io::Error::other("the stream ended early"))),
                    )
                    .await;
                    return;
                }
            };
        }
    });
    // The stream keeps its place until its answer is gone: sent whole, or its connection closed
    // (one whose reader takes nothing is closed by the accept loop's write timeout).
    let body = futures_util::stream::poll_fn(move |cx| {
        let _place = &place;
        rx.poll_recv(cx)
    });
    let mut resp = axum::body::Body::from_stream(body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

#[utoipa::path(post, path = "/v1/device/retire", tag = "devices", security(("bearer" = [])),
    responses(
        (status = 200, description = "The device is retired (handed back): no more tokens, no lease", body = RetireResponse),
        (status = 401, description = "Not signed in, token expired, or device revoked", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
        (status = 503, description = "Unavailable", body = Problem, content_type = PROBLEM),
    ))]
async fn retire(State(s): State<Shared>, Bearer(token): Bearer) -> ApiResult<RetireResponse> {
    Ok(axum::Json(
        blocking(move || s.central.retire(&token)).await?,
    ))
}

#[utoipa::path(post, path = "/v1/sync/wait", tag = "sync", security(("bearer" = [])),
    request_body(content = feltkontor_wire::sync::WaitRequest, description = "WaitRequest: the generation the device last heard (0: answer at once)"),
    responses(
        (status = 200, description = "WaitResponse: a generation different from `since` when a change that concerns the worker was applied at any instance (a case in their scope, their scope itself, or the reference data), or when this instance cannot tell what the device missed: then pull; `since` itself when the hold time ended", body = feltkontor_wire::sync::WaitResponse),
        (status = 400, description = "Malformed request", body = Problem, content_type = PROBLEM),
        (status = 401, description = "Not signed in or token expired", body = Problem, content_type = PROBLEM),
        (status = 429, description = "Rate limited", body = Problem, content_type = PROBLEM),
    ))]
async fn wait(
    State(s): State<Shared>,
    Bearer(token): Bearer,
    Body(req): Body<feltkontor_wire::sync::WaitRequest>,
) -> ApiResult<feltkontor_wire::sync::WaitResponse> {
    let started = std::time::Instant::now();
    let s2 = s.clone();
    let (staff, scope) = blocking(move || s2.central.live_scope(&token)).await?;
    let hold = wait_hold(s.request_timeout, started.elapsed());
    let since = req.since;
    // Only a change in the worker's scope (or to it, or to the reference data) answers early.
    let generation = match s.live.wait(since, staff, &scope, hold).await {
        Some(crate::live::Heard::Concerns(g) | crate::live::Heard::Unknown(g)) => g,
        None => since,
    };
    Ok(axum::Json(feltkontor_wire::sync::WaitResponse {
        generation,
    }))
}

/// The longest a live-update request is held open.
pub const WAIT_HOLD: Duration = Duration::from_secs(25);

/// How long a wait that began `elapsed` ago is held: a little shorter than the request timeout,
/// so the answer is a normal one, counted from the request's start (under load the scope's
/// read may have waited for a connection; counted from after it, the hold ran past the timeout
/// and the device got a 503).
fn wait_hold(request_timeout: Duration, elapsed: Duration) -> Duration {
    request_timeout
        .saturating_sub(Duration::from_secs(5))
        .clamp(Duration::from_secs(1), WAIT_HOLD)
        .saturating_sub(elapsed)
}

async fn openapi() -> Response {
    let json = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

/// Stops a request that runs longer than the configured timeout with a clear 503.
async fn timeout(State(s): State<Shared>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(s.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError(
            ServiceError::new(
                ErrorCode::Timeout,
                "The request took too long and was stopped. Try again.",
            )
            .with_retry_after(2),
        )
        .into_response(),
    }
}

/// Answers the framework gives itself (a method the route does not take, an encoding the
/// decompression does not read, a path that is not valid UTF-8) as problem details too: every
/// refusal a client meets has a `code`.
async fn problems_only(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let (code, detail) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            ErrorCode::MethodNotAllowed,
            "This endpoint does not take this method.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            ErrorCode::UnsupportedMediaType,
            "Send JSON, uncompressed or gzip (Content-Encoding: gzip).",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "The body is too large."),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "No such endpoint."),
        s if s.is_client_error() => (
            ErrorCode::InvalidInput,
            "The request is malformed (its path, headers or body).",
        ),
        _ => (
            ErrorCode::Internal,
            "An internal error occurred. It has been logged.",
        ),
    };
    ApiError(ServiceError::new(code, detail)).into_response()
}

async fn not_found() -> ApiError {
    ApiError(ServiceError::new(ErrorCode::NotFound, "No such endpoint."))
}

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/enroll", post(enroll))
        .route("/v1/token", post(token))
        .route("/v1/lease", post(lease))
        .route("/v1/device/retire", post(retire))
        .route("/v1/whoami", get(whoami))
        .route("/v1/cases", get(my_cases))
        .route("/v1/cases/{case_id}", get(case_overview))
        .route("/v1/cases/{case_id}/history", get(case_history))
        .route(
            "/v1/sync/push",
            post(push).layer(axum::Extension(BodyLimit(SYNC_BODY_LIMIT))),
        )
        .route(
            "/v1/sync/pull",
            post(pull).layer(axum::Extension(BodyLimit(SYNC_BODY_LIMIT))),
        )
        .route(
            "/v1/sync/pull/stream",
            post(pull_stream).layer(axum::Extension(BodyLimit(SYNC_BODY_LIMIT))),
        )
        .route(
            "/v1/sync/verify",
            post(verify).layer(axum::Extension(BodyLimit(SYNC_BODY_LIMIT))),
        )
        .route(
            "/v1/sync/access",
            post(access).layer(axum::Extension(BodyLimit(SYNC_BODY_LIMIT))),
        )
        .route("/v1/sync/wait", post(wait))
        .route("/v1/quarantine", get(quarantined))
        .route("/v1/quarantine/resolve", post(resolve_quarantined))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), timeout))
        // Sync bodies are mostly repeated JSON keys: gzip makes them a fraction of the size on
        // a guest network. Requests may come gzipped (`Content-Encoding: gzip`; the body limits
        // apply to the unpacked size); answers are gzipped for clients that accept it, at the
        // fastest level so the service's CPU is not the bottleneck.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        // Outside the decompression, whose refusals it turns into problem details too.
        .layer(middleware::from_fn(problems_only))
        .layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest),
        )
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Method and route only: paths carry ids, never personal data; query
                    // strings and bodies are not logged.
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                ),
        )
        // Answers carry personal data: no cache, no proxy, no browser keeps them. Outermost, so
        // every answer has it (a refused encoding's too).
        .layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_answered_before_its_request_times_out() {
        let timeout = Duration::from_secs(30);
        assert_eq!(wait_hold(timeout, Duration::ZERO), WAIT_HOLD);
        // Six seconds waiting for a connection: held the rest of the 25, not 25 more.
        let elapsed = Duration::from_secs(6);
        assert_eq!(wait_hold(timeout, elapsed), Duration::from_secs(19));
        assert!(elapsed + wait_hold(timeout, elapsed) < timeout);
        assert_eq!(wait_hold(timeout, Duration::from_secs(40)), Duration::ZERO);
        // A short timeout holds a second at most.
        assert_eq!(
            wait_hold(Duration::from_secs(3), Duration::ZERO),
            Duration::from_secs(1)
        );
    }
}
