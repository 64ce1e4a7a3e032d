//! The desktop app's sync client. One round ([`sync_once`]) pushes every pending change of the
//! local change log, oldest first, in bounded batches, and then pulls what the worker may see
//! until the service has nothing more. Each step is a complete checkpoint in the local store:
//! a push is marked done only after the service acknowledged it, and a pulled page is applied
//! with its cursors in one transaction. Interrupted anywhere, the next round continues where
//! this one stopped; the service applies each change exactly once however often it arrives.

use feltkontor_core::store::sync::CheckedPage;
use feltkontor_core::Store;
use feltkontor_wire::api::{
    EnrollRequest, LeaseRequest, LeaseResponse, Problem, RefreshRequest, RetireResponse,
    TokenResponse,
};
use feltkontor_wire::sync::{
    AccessUpload, AccessUploadResponse, PullRequest, PullResponse, PushRequest, PushResponse,
    QuarantineDecision, QuarantineList, QuarantineResolved, VerifyRequest, VerifyResponse,
    WaitRequest, WaitResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::time::Duration;

pub mod device;

pub use feltkontor_wire::ErrorCode;

/// Most changes per push.
pub const PUSH_BATCH: u32 = 200;
/// Most bytes of JSON per push (the service accepts 4 MiB).
pub const PUSH_BYTES: usize = 2 * 1024 * 1024;
/// Records per pulled page.
pub const PULL_PAGE: u32 = 2_000;
/// After a local change, the app waits this long for more (autosave, a form with several
/// fields) before pushing.
pub const PUSH_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(500);
/// How often the app compares every bucket it holds with the service's ([`verify_buckets`]),
/// besides the comparison of each bucket a pull completes.
pub const VERIFY_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The service could not be reached or the connection broke: retry later.
    #[error("the central service could not be reached: {0}")]
    Network(String),
    /// The service answered with a problem (`code` is its stable code).
    #[error("the central service refused the request ({status} {code}): {detail}")]
    Refused {
        status: u16,
        code: ErrorCode,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] feltkontor_core::Error),
    /// The worker locked the app: the store is closed until they unlock it again.
    #[error("the local data is locked")]
    Locked,
    /// This computer holds no connection to a central service (a local-only profile).
    #[error("this computer is not connected to a central service")]
    NotConnected,
}

impl SyncError {
    /// The service says the device was revoked (lost or stolen): the caller must wipe the
    /// local store ([`feltkontor_core::Store::wipe`]) now.
    pub fn must_wipe(&self) -> bool {
        matches!(
            self,
            SyncError::Refused {
                code: ErrorCode::DeviceRevoked,
                ..
            }
        )
    }

    /// Whether retrying later may succeed (network, busy, timeouts) rather than needing the
    /// worker (signed out, device revoked, clock wrong).
    pub fn transient(&self) -> bool {
        match self {
            SyncError::Network(_) => true,
            SyncError::Refused { status, .. } => *status == 429 || *status >= 500,
            SyncError::Store(_) | SyncError::Locked | SyncError::NotConnected => false,
        }
    }

    /// The access token ran out: refresh it and try again.
    pub fn token_expired(&self) -> bool {
        matches!(
            self,
            SyncError::Refused {
                code: ErrorCode::TokenExpired,
                ..
            }
        )
    }
}

/// Where the sync client finds the local store: borrowed for the length of a test, or the
/// app's shared slot, which is empty while the worker has locked the app. Each step holds the
/// store only for its own local transaction, never across a network request.
pub trait StoreAccess {
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, SyncError>) -> Result<R, SyncError>;
}

impl StoreAccess for std::cell::RefCell<&mut Store> {
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, SyncError>) -> Result<R, SyncError> {
        f(&mut self.borrow_mut())
    }
}

impl StoreAccess for std::sync::Mutex<Option<Store>> {
    fn with<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, SyncError>) -> Result<R, SyncError> {
        // A panic in an earlier store operation rolled its transaction back as it unwound:
        // the store is sound, so a poisoned lock is taken again instead of failing every
        // later call until the app restarts.
        let run = || {
            let mut guard = self.lock().unwrap_or_else(|poisoned| {
                self.clear_poison();
                poisoned.into_inner()
            });
            f(guard.as_mut().ok_or(SyncError::Locked)?)
        };
        // Store work (a page of 2,000 records applied, an fsync) blocks: on the app's
        // multi-threaded runtime the worker thread is handed over to blocking first, so the
        // runtime's other tasks (the UI's commands, the long-poll) move to another worker
        // instead of waiting behind it.
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }
}

/// The service's answer to an enrollment or a refresh.
pub type Tokens = TokenResponse;

/// The device lease an answer carries, as the local store keeps it.
pub trait CarriesLease {
    fn lease(&self) -> Result<feltkontor_core::store::keys::Lease, SyncError>;
}

impl CarriesLease for TokenResponse {
    fn lease(&self) -> Result<feltkontor_core::store::keys::Lease, SyncError> {
        lease_of(&self.lease_secret, &self.lease_expires_at)
    }
}

impl CarriesLease for LeaseResponse {
    fn lease(&self) -> Result<feltkontor_core::store::keys::Lease, SyncError> {
        lease_of(&self.lease_secret, &self.lease_expires_at)
    }
}

fn lease_of(
    secret: &str,
    expires_at: &str,
) -> Result<feltkontor_core::store::keys::Lease, SyncError> {
    let expires =
        time::OffsetDateTime::parse(expires_at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                SyncError::Network(format!("the service sent a malformed lease expiry: {e}"))
            })?;
    let expires_at_ms = i64::try_from(expires.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| SyncError::Network("the service sent a lease expiry out of range".into()))?;
    feltkontor_core::store::keys::Lease::from_hex(secret, expires_at_ms)
        .map_err(|e| SyncError::Network(format!("the service sent a malformed lease: {e}")))
}

/// Request bodies from this size on are sent gzipped (pushes, access-log uploads).
pub const GZIP_FROM_BYTES: usize = 1024;

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, SyncError> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(bytes)
        .and_then(|_| enc.finish())
        .map_err(|e| SyncError::Network(format!("the request could not be compressed: {e}")))
}

/// Reads the service's answer: the body as `R`, or its problem details as [`SyncError::Refused`].
async fn answer<R: DeserializeOwned>(r: reqwest::Response) -> Result<R, SyncError> {
    let status = r.status().as_u16();
    let bytes = r
        .bytes()
        .await
        .map_err(|e| SyncError::Network(e.to_string()))?;
    if status != 200 {
        // Not problem details (a proxy's error page, a cut-off body): the status tells.
        return Err(match serde_json::from_slice::<Problem>(&bytes) {
            Ok(problem) => SyncError::Refused {
                status,
                code: problem.code,
                detail: problem.detail,
            },
            Err(_) => SyncError::Refused {
                status,
                code: ErrorCode::Unknown,
                detail: String::new(),
            },
        });
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        // A cut-off body reads as malformed JSON: the connection broke.
        SyncError::Network(format!("incomplete answer: {e}"))
    })
}

/// The one HTTP client of the process: every request (sync rounds, long-polls, quarantine
/// decisions, refreshes) shares its connection pool, so a call reuses an open TLS connection
/// instead of making a new one.
fn client() -> Result<reqwest::Client, SyncError> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let built = new_client()?;
    Ok(CLIENT.get_or_init(|| built).clone())
}

fn new_client() -> Result<reqwest::Client, SyncError> {
    // ring, the same TLS provider as the service's; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        // The service closes a connection idle for its header timeout (30 s by default):
        // an idle connection is let go first, so a request never meets one being closed.
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| SyncError::Network(e.to_string()))
}

/// An access token as [`Credentials`] hands it out: `generation` tells one refresh's token
/// from the next even when the two strings are equal (a token issued within the same second
/// for the same device is the same string).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub value: String,
    pub generation: u64,
}

/// The device's access token, and the refresh that renews it. Refreshing is single-flight:
/// the background round, a quarantine decision and a retire that all find the token spent
/// wait for one refresh and share its token. Two refreshes with the same refresh token would
/// spend it twice, and the service answers a reused refresh token by revoking the device.
#[derive(Default)]
pub struct Credentials {
    access: std::sync::Mutex<(Option<String>, u64)>,
    refreshing: tokio::sync::Mutex<()>,
}

impl Credentials {
    fn held(&self) -> std::sync::MutexGuard<'_, (Option<String>, u64)> {
        self.access.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An access token from an enrollment, so the first sync need not refresh.
    pub fn set(&self, token: String) -> AccessToken {
        let mut held = self.held();
        held.1 += 1;
        held.0 = Some(token.clone());
        AccessToken {
            value: token,
            generation: held.1,
        }
    }

    /// The access token held, if any.
    pub fn current(&self) -> Option<AccessToken> {
        let held = self.held();
        held.0.clone().map(|value| AccessToken {
            value,
            generation: held.1,
        })
    }

    /// Forgets the token (the device was locked, retired or revoked).
    pub fn forget(&self) {
        let mut held = self.held();
        held.1 += 1;
        held.0 = None;
    }

    /// The access token held, or a fresh one.
    pub async fn token<S: StoreAccess + ?Sized>(
        &self,
        server_url: &str,
        store: &S,
    ) -> Result<AccessToken, SyncError> {
        match self.current() {
            Some(t) => Ok(t),
            None => self.renew(server_url, store, None).await,
        }
    }

    /// A new access token because `spent` was refused as expired (or, with `None`, because
    /// none is held). When another caller renewed it meanwhile, its token is used: at most
    /// one refresh is under way, and the refresh token it spends is read, and its successor
    /// saved, inside it.
    pub async fn renew<S: StoreAccess + ?Sized>(
        &self,
        server_url: &str,
        store: &S,
        spent: Option<&AccessToken>,
    ) -> Result<AccessToken, SyncError> {
        let _one = self.refreshing.lock().await;
        if let Some(held) = self.current() {
            if spent.is_none_or(|s| s.generation != held.generation) {
                return Ok(held);
            }
        }
        let refresh_token = store
            .with(|s| Ok(s.sync_account()?.map(|a| a.refresh_token)))?
            .ok_or(SyncError::Locked)?;
        let tokens = Remote::new(server_url, "")?.refresh(&refresh_token).await?;
        // The old refresh token is spent: its successor is saved before anything else.
        let lease = tokens.lease()?;
        store.with(|s| {
            s.set_refresh_token(&tokens.refresh_token)?;
            // Every refresh renews the lease: the device may stay away for the lease period.
            Ok(s.renew_lease(&lease)?)
        })?;
        Ok(self.set(tokens.access_token))
    }
}

/// The central service as seen from one device.
#[derive(Clone)]
pub struct Remote {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Records per pulled page ([`PULL_PAGE`]).
    page: u32,
}

impl Remote {
    /// `base` is the service's address (`https://…`), `token` the device's access token.
    pub fn new(base: &str, token: &str) -> Result<Remote, SyncError> {
        Ok(Remote {
            http: client()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            page: PULL_PAGE,
        })
    }

    /// Like [`Remote::new`], with a connection pool of its own instead of the process's shared
    /// one: every request opens new connections (as after the laptop changed network; the
    /// fault tests give each round its own fate this way).
    pub fn with_own_connections(base: &str, token: &str) -> Result<Remote, SyncError> {
        Ok(Remote {
            http: new_client()?,
            ..Remote::new(base, token)?
        })
    }

    /// Pulls pages of at most `records` records (at least one) instead of [`PULL_PAGE`]:
    /// for tests that need many pages from few records.
    pub fn with_page_size(mut self, records: u32) -> Remote {
        self.page = records.max(1);
        self
    }

    /// A new access token (after a refresh).
    pub fn set_token(&mut self, token: &str) {
        self.token = token.to_owned();
    }

    async fn post<Q: Serialize, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &Q,
    ) -> Result<R, SyncError> {
        let r = self
            .request(path, body)?
            .send()
            .await
            .map_err(|e| SyncError::Network(e.to_string()))?;
        answer(r).await
    }

    /// A POST of `body` as JSON (gzipped from [`GZIP_FROM_BYTES`]), with the access token.
    fn request<Q: Serialize>(
        &self,
        path: &str,
        body: &Q,
    ) -> Result<reqwest::RequestBuilder, SyncError> {
        let json = serde_json::to_vec(body)
            .map_err(|e| SyncError::Network(format!("the request could not be written: {e}")))?;
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        Ok(if json.len() >= GZIP_FROM_BYTES {
            request
                .header(reqwest::header::CONTENT_ENCODING, "gzip")
                .body(gzip(&json)?)
        } else {
            request.body(json)
        })
    }

    /// Enrolls this device with a one-time code from the administrator and the worker's
    /// password; the answer names the worker and the device.
    pub async fn enroll(
        &self,
        code: &str,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<Tokens, SyncError> {
        let body = EnrollRequest {
            code: code.to_owned(),
            username: username.to_owned(),
            password: password.to_owned(),
            device_name: device_name.to_owned(),
        };
        self.post("/v1/enroll", &body).await
    }

    /// New tokens for the refresh token (which is used up).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, SyncError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.post("/v1/token", &body).await
    }

    /// Renews the lease of this device after it ran out (the worker's password, as at
    /// enrollment; the refresh token is locked inside the store).
    pub async fn recover_lease(
        &self,
        device_id: uuid::Uuid,
        username: &str,
        password: &str,
    ) -> Result<feltkontor_core::store::keys::Lease, SyncError> {
        let body = LeaseRequest {
            device_id,
            username: username.to_owned(),
            password: password.to_owned(),
        };
        let a: LeaseResponse = self.post("/v1/lease", &body).await?;
        a.lease()
    }

    /// Hands the device back: the service retires it (no more tokens, no lease). Call only
    /// after everything was pushed; then wipe the local store.
    pub async fn retire(&self) -> Result<(), SyncError> {
        let _: RetireResponse = self
            .post("/v1/device/retire", &serde_json::json!({}))
            .await?;
        Ok(())
    }

    pub async fn push(&self, req: &PushRequest) -> Result<PushResponse, SyncError> {
        self.post("/v1/sync/push", req).await
    }

    /// Uploads access-log entries; the service records each once.
    pub async fn upload_access(
        &self,
        req: &AccessUpload,
    ) -> Result<AccessUploadResponse, SyncError> {
        self.post("/v1/sync/access", req).await
    }

    async fn get<R: DeserializeOwned>(&self, path_and_query: &str) -> Result<R, SyncError> {
        let r = self
            .http
            .get(format!("{}{path_and_query}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| SyncError::Network(e.to_string()))?;
        answer(r).await
    }

    /// The quarantined notes this worker decides on.
    pub async fn quarantined(&self) -> Result<QuarantineList, SyncError> {
        self.get("/v1/quarantine").await
    }

    /// A page of a case's change history (newest first; `before` continues from the previous
    /// page's `next_before`). For the case's participants only.
    pub async fn case_history(
        &self,
        case: uuid::Uuid,
        before: Option<i64>,
    ) -> Result<feltkontor_wire::api::CaseHistory, SyncError> {
        match before {
            Some(b) => {
                self.get(&format!("/v1/cases/{case}/history?before={b}"))
                    .await
            }
            None => self.get(&format!("/v1/cases/{case}/history")).await,
        }
    }

    /// Accepts a quarantined note into its case, or keeps it out.
    pub async fn resolve_quarantined(
        &self,
        decision: &QuarantineDecision,
    ) -> Result<QuarantineResolved, SyncError> {
        self.post("/v1/quarantine/resolve", decision).await
    }

    pub async fn pull(&self, req: &PullRequest) -> Result<PullResponse, SyncError> {
        self.post("/v1/sync/pull", req).await
    }

    /// The service's checksum of each bucket the device holds and has complete.
    pub async fn verify(&self, req: &VerifyRequest) -> Result<VerifyResponse, SyncError> {
        self.post("/v1/sync/verify", req).await
    }

    /// Pages after `req`'s cursors as one stream (`/v1/sync/pull/stream`): read and parsed on
    /// their own task while the device applies the ones before, so the service, the network
    /// and the device work at once.
    pub async fn pull_stream(&self, req: &PullRequest) -> Result<PageStream, SyncError> {
        let r = self
            .request("/v1/sync/pull/stream", req)?
            // A long stream on a slow network may take minutes; each read has its own bound.
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .map_err(|e| SyncError::Network(e.to_string()))?;
        if r.status().as_u16() != 200 {
            return Err(answer::<serde_json::Value>(r)
                .await
                .err()
                .unwrap_or_else(|| SyncError::Network("the pull stream was refused".into())));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let task = tokio::spawn(read_pages(r, tx));
        Ok(PageStream { rx, task })
    }

    /// One page by [`Remote::pull`], checked, as a stream that ends after it (the pull goes on
    /// from the cursors it leaves).
    async fn pull_one(&self, req: &PullRequest) -> Result<PageStream, SyncError> {
        let page = CheckedPage::check(self.pull(req).await?)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(Ok(page));
        Ok(PageStream {
            rx,
            task: tokio::spawn(async {}),
        })
    }

    /// Live updates: waits until the service applied a change after generation `since` (0:
    /// answers at once), at most about half a minute; returns the generation now. A different
    /// generation than `since` means: pull.
    pub async fn wait(&self, since: u64) -> Result<u64, SyncError> {
        let r: WaitResponse = self.post("/v1/sync/wait", &WaitRequest { since }).await?;
        Ok(r.generation)
    }
}

/// What one round did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub pushed: u64,
    pub rejected: usize,
    pub pulled_records: usize,
    pub changed_records: usize,
    pub dropped_buckets: Vec<String>,
    /// Buckets deleted and pulled again from the start (a new view of the case, or a cursor
    /// older than the service's horizon).
    pub reset_buckets: Vec<String>,
    /// Buckets whose checksum differed from the service's: deleted and pulled again.
    pub checksum_resets: Vec<String>,
    /// Access-log entries uploaded.
    pub access_uploaded: u64,
    /// While pulling: about how many records this round will receive in all (those received
    /// plus what the service says waits), when more than one page is needed.
    pub expected_records: Option<usize>,
    /// From the round's last page: how many quarantined notes wait for this worker's decision.
    pub quarantined: Option<u32>,
    /// Buckets compared with the service's by [`verify_buckets`] (each complete bucket held).
    pub verified_buckets: usize,
}

/// The next batch to push: oldest first, bounded in count and bytes.
pub fn next_batch(store: &Store) -> Result<Vec<feltkontor_wire::ChangeEntry>, SyncError> {
    let mut entries = store.pending_push(PUSH_BATCH)?;
    let mut bytes = 0;
    let mut keep = 0;
    for e in &entries {
        let size = serde_json::to_vec(e).map(|v| v.len()).unwrap_or(usize::MAX);
        if keep > 0 && bytes + size > PUSH_BYTES {
            break;
        }
        bytes += size;
        keep += 1;
    }
    entries.truncate(keep);
    Ok(entries)
}

/// Pushes everything pending, then pulls until the service has nothing more.
pub async fn sync_once(remote: &Remote, store: &mut Store) -> Result<SyncReport, SyncError> {
    sync_observed(remote, &std::cell::RefCell::new(store), &mut |_, _| {}).await
}

/// [`sync_once`] on any [`StoreAccess`], showing `observe` every batch pushed with the
/// service's answer (tests keep their own account of what the service applied).
pub async fn sync_observed<L: StoreAccess>(
    remote: &Remote,
    local: &L,
    observe: &mut (dyn FnMut(&[feltkontor_wire::ChangeEntry], &PushResponse) + Send),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    push_all(remote, local, &mut report, observe).await?;
    pull_all(remote, local, &mut report, &mut |_| {}).await?;
    tracing::info!(
        pushed = report.pushed,
        rejected = report.rejected,
        pulled = report.pulled_records,
        "sync round done"
    );
    Ok(report)
}

/// Access-log entries per upload.
pub const ACCESS_BATCH: u32 = 500;

/// Pushes every pending change, batch by batch, each acknowledgement a checkpoint; then
/// uploads the local access log the same way.
pub async fn push_all<L: StoreAccess>(
    remote: &Remote,
    local: &L,
    report: &mut SyncReport,
    observe: &mut (dyn FnMut(&[feltkontor_wire::ChangeEntry], &PushResponse) + Send),
) -> Result<(), SyncError> {
    loop {
        let entries = local.with(|s| next_batch(s))?;
        if entries.is_empty() {
            break;
        }
        let req = PushRequest { entries };
        let resp = remote.push(&req).await?;
        observe(&req.entries, &resp);
        local.with(|s| Ok(s.ack_push(&resp)?))?;
        report.pushed += u64::from(resp.applied + resp.duplicates);
        report.rejected += resp.rejected.len();
    }
    match upload_access_log(remote, local, report).await {
        // The log must not hold up the worker's changes: an upload the service refuses as
        // such stays pending (it is kept on the device) and the round goes on.
        Err(SyncError::Refused { status, code, .. }) if matches!(status, 400 | 403 | 413) => {
            tracing::warn!(
                status,
                code = code.as_str(),
                "the access log was not uploaded"
            );
            Ok(())
        }
        other => other,
    }
}

/// Uploads the access-log entries not yet recorded by the service, oldest first; each answered
/// batch is marked uploaded (a batch sent again is recorded once by the service).
pub async fn upload_access_log<L: StoreAccess>(
    remote: &Remote,
    local: &L,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    loop {
        let entries = local.with(|s| Ok(s.pending_access(ACCESS_BATCH)?))?;
        if entries.is_empty() {
            return Ok(());
        }
        let req = AccessUpload {
            entries: entries.iter().map(|e| e.to_record()).collect(),
        };
        remote.upload_access(&req).await?;
        let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
        local.with(|s| Ok(s.mark_access_uploaded(&ids)?))?;
        report.access_uploaded += ids.len() as u64;
    }
}

/// Rows indexed for search per step of [`catch_up_search`]: a few tens of milliseconds, so a
/// save waiting for the store is never held up for long.
pub const SEARCH_STEP: u32 = 500;

/// Completes a search index that a large pull left to catch up (see
/// `Store::index_search_backlog`), in short steps that let other users of the store in between.
/// A search before it is done completes the index itself, so no result is ever missing.
pub async fn catch_up_search<L: StoreAccess>(store: &L) -> Result<(), SyncError> {
    while !store.with(|s| Ok(s.index_search_backlog(SEARCH_STEP)?))? {
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Pulls page after page until the service has nothing more; each page is applied with its
/// cursors in one transaction. `on_page` sees the report after each page (progress).
///
/// The pages come as one stream ([`Remote::pull_stream`]) that the service keeps filling while
/// the device applies them. Each streamed page is the answer for the cursors the pages before
/// it leave; when applying a page left other cursors (a bucket reset or dropped, a checksum
/// that differed), the rest of the stream is thrown away and a new one asked for from the
/// device's cursors. Each page is parsed and checked on the task that reads the stream
/// ([`CheckedPage`]), so the store only writes. On a multi-threaded runtime (the app's)
/// reading, checking and applying overlap; on a single-threaded one they take turns.
pub async fn pull_all<L: StoreAccess>(
    remote: &Remote,
    local: &L,
    report: &mut SyncReport,
    on_page: &mut (dyn FnMut(&SyncReport) + Send),
) -> Result<(), SyncError> {
    let pulled = pull_pages(remote, local, report, on_page).await;
    // The pages left the copying of the write-ahead log into the database to here (once,
    // instead of after every page). Not done now, the next save does it: nothing is lost.
    if let Err(e) = local.with(|s| Ok(s.checkpoint()?)) {
        tracing::warn!("the write-ahead log was not copied after pulling: {e}");
    }
    pulled
}

async fn pull_pages<L: StoreAccess>(
    remote: &Remote,
    local: &L,
    report: &mut SyncReport,
    on_page: &mut (dyn FnMut(&SyncReport) + Send),
) -> Result<(), SyncError> {
    let mut cursors = local.with(|s| Ok(s.sync_cursors()?))?;
    // The cursors the next page of the stream answers (those it was asked for, then advanced
    // page by page), and how many pages it gave.
    let mut expected = cursors.clone();
    let mut stream: Option<PageStream> = None;
    let mut pages_in_stream = 0usize;
    loop {
        let current = match &mut stream {
            Some(current) => current,
            None => {
                expected = cursors.clone();
                pages_in_stream = 0;
                let req = PullRequest {
                    cursors: cursors.clone(),
                    limit: remote.page,
                };
                stream.insert(match remote.pull_stream(&req).await {
                    Ok(s) => s,
                    // Every stream place of the instance is taken (many devices at once): the
                    // round goes on page by page, one request each, instead of failing.
                    Err(SyncError::Refused { status: 503, .. }) => remote.pull_one(&req).await?,
                    Err(e) => return Err(e),
                })
            }
        };
        let page = match current.next().await {
            Some(page) => page?,
            // The service ended the stream (page limit, a reset): ask again from here.
            None if pages_in_stream > 0 => {
                stream = None;
                continue;
            }
            None => {
                return Err(SyncError::Network(
                    "the service ended the pull without a page".into(),
                ))
            }
        };
        pages_in_stream += 1;
        let applied = local.with(|s| Ok(s.apply_checked(&page)?))?;
        report.pulled_records += page.len();
        let page = page.head();
        feltkontor_wire::sync::advance_cursors(&mut expected, page);
        if let Some(left) = page.remaining.filter(|_| page.more) {
            let expected = report.pulled_records + usize::try_from(left).unwrap_or(usize::MAX);
            // Never smaller than before: a bar that goes back is worse than none.
            report.expected_records = Some(expected.max(report.expected_records.unwrap_or(0)));
        } else if !page.more {
            report.expected_records = Some(report.pulled_records);
            report.quarantined = page.quarantined.or(report.quarantined);
        }
        report.changed_records += applied.changed;
        report
            .dropped_buckets
            .extend(applied.dropped_buckets.iter().cloned());
        report
            .reset_buckets
            .extend(applied.reset_buckets.iter().cloned());
        let mismatched = verify_checksums(local, page, &applied, report)?;
        on_page(report);
        // Applying held this task for a while: let others run (and a cancelled sync stop)
        // even when the next page is already here.
        tokio::task::yield_now().await;
        cursors = local.with(|s| Ok(s.sync_cursors()?))?;
        // A bucket reset for a new view, or for a wrong checksum, is pulled again from the start.
        if !page.more && applied.reset_buckets.is_empty() && !mismatched {
            return Ok(());
        }
        if !page.more || cursors != expected {
            // Dropping the stream stops its download; the next turn asks again from here.
            stream = None;
        }
    }
}

/// Compares every bucket this device holds complete with the service's checksum of it, not
/// only those a pull just completed: a bucket damaged on the device (or missing a record) with
/// nothing new coming for it is found too. Each bucket that differs is deleted and pulled again
/// at once. Only when nothing waits to be sent (unsent changes make the two differ); returns
/// whether the comparison was made. The app does this once per [`VERIFY_EVERY`]. Each
/// bucket's checksum is computed in its own turn at the store, so a save never waits long.
pub async fn verify_buckets<L: StoreAccess>(
    remote: &Remote,
    local: &L,
    report: &mut SyncReport,
    on_page: &mut (dyn FnMut(&SyncReport) + Send),
) -> Result<bool, SyncError> {
    let (pending, mut cursors) = local.with(|s| Ok((s.pending_count()?, s.sync_cursors()?)))?;
    cursors.retain(|_, c| *c > 0);
    if pending > 0 {
        return Ok(false);
    }
    let req = VerifyRequest { cursors };
    let answer = remote.verify(&req).await?;
    let mut reset = false;
    for (bucket, want) in &answer.checksums {
        let have = local.with(|s| {
            // A save since the question, or a bucket no longer held as asked: not comparable.
            if s.pending_count()? > 0 {
                return Ok(None);
            }
            let held = s.sync_cursor(bucket)?;
            Ok(match held {
                Some(c) if req.cursors.get(bucket) == Some(&c) => Some(s.bucket_checksum(bucket)?),
                _ => None,
            })
        })?;
        report.verified_buckets += usize::from(have.is_some());
        if have.is_some_and(|have| have != *want) {
            tracing::warn!(%bucket, "checksum differs: pulling the bucket again");
            local.with(|s| Ok(s.reset_bucket(bucket)?))?;
            report.checksum_resets.push(bucket.clone());
            reset = true;
        }
        tokio::task::yield_now().await;
    }
    if reset {
        pull_all(remote, local, report, on_page).await?;
    }
    Ok(true)
}

/// Compares the checksum of each bucket the page completed with what this device now holds
/// (when nothing is waiting to be sent, so the two must be equal). A bucket that differs is
/// deleted here and pulled again from the start, once per round; a second mismatch in the same
/// round is logged and left (pulling it a third time would not help). Returns whether a bucket
/// was reset.
fn verify_checksums<L: StoreAccess>(
    local: &L,
    page: &PullResponse,
    applied: &feltkontor_core::store::sync::PullApplied,
    report: &mut SyncReport,
) -> Result<bool, SyncError> {
    let mut reset = false;
    for b in &page.buckets {
        let Some(want) = b.checksum else { continue };
        if applied.reset_buckets.contains(&b.bucket) || page.reset.contains(&b.bucket) {
            continue;
        }
        let have = local.with(|s| {
            Ok(match s.pending_count()? {
                0 => Some(s.bucket_checksum(&b.bucket)?),
                _ => None,
            })
        })?;
        match have {
            Some(have) if have != want => {
                if report.checksum_resets.contains(&b.bucket) {
                    tracing::error!(
                        bucket = %b.bucket,
                        "the bucket still differs from the service's after pulling it again"
                    );
                    continue;
                }
                tracing::warn!(bucket = %b.bucket, "checksum differs: pulling the bucket again");
                local.with(|s| Ok(s.reset_bucket(&b.bucket)?))?;
                report.checksum_resets.push(b.bucket.clone());
                reset = true;
            }
            _ => {}
        }
    }
    Ok(reset)
}

/// The pages of a pull stream, read, parsed and checked ([`CheckedPage`]) on their own task
/// while the store applies the page before; dropping it stops the download (a sync broken
/// off, or a stream for cursors the device no longer holds).
pub struct PageStream {
    rx: tokio::sync::mpsc::Receiver<Result<CheckedPage, SyncError>>,
    task: tokio::task::JoinHandle<()>,
}

impl PageStream {
    /// The next page; `None` when the service ended the stream.
    pub async fn next(&mut self) -> Option<Result<CheckedPage, SyncError>> {
        self.rx.recv().await
    }
}

impl Drop for PageStream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long a pull stream may stay silent before it counts as broken.
const STREAM_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads a pull stream: one page per line, each parsed and handed on as soon as it is whole.
async fn read_pages(
    mut r: reqwest::Response,
    tx: tokio::sync::mpsc::Sender<Result<CheckedPage, SyncError>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    // Where the search for the end of the current line goes on.
    let mut scanned = 0;
    loop {
        let chunk = match tokio::time::timeout(STREAM_READ_TIMEOUT, r.chunk()).await {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => {
                let _ = tx.send(Err(SyncError::Network(e.to_string()))).await;
                return;
            }
            Err(_) => {
                let _ = tx
                    .send(Err(SyncError::Network("the pull stream stalled".into())))
                    .await;
                return;
            }
        };
        let Some(chunk) = chunk else {
            if !buf.is_empty() {
                // A cut-off last line: the connection broke.
                let _ = tx
                    .send(Err(SyncError::Network("incomplete answer".into())))
                    .await;
            }
            return;
        };
        buf.extend_from_slice(&chunk);
        while let Some(end) = buf[scanned..].iter().position(|b| *b == b'\n') {
            let end = scanned + end;
            let page = serde_json::from_slice::<PullResponse>(&buf[..end])
                .map_err(|e| SyncError::Network(format!("incomplete answer: {e}")))
                .and_then(|page| Ok(CheckedPage::check(page)?));
            buf.drain(..=end);
            scanned = 0;
            let failed = page.is_err();
            if tx.send(page).await.is_err() || failed {
                return;
            }
        }
        scanned = buf.len();
    }
}
