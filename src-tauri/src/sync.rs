//! The background sync task: one tokio task for the app's lifetime. It syncs half a second
//! after a local change (debounced), every minute while all is well, and after a failure again
//! after an exponentially growing, jittered delay (2 s … 5 min) that runs on its own timer, so
//! a worker back on network does not have to write something first. While online, a long-poll
//! at the service (`listen`) learns within a second that a colleague's change was applied. It
//! holds the store only for each local step (`StoreAccess`), never across a network request,
//! and never blocks a command. The UI reads the status (`sync_status`) and never waits for the
//! network.

use crate::session::Session;
use feltkontor_core::store::account::SyncAccount;
use feltkontor_sync::{
    pull_all, push_all, verify_buckets, ErrorCode, Remote, StoreAccess, SyncError, SyncReport,
    VERIFY_EVERY,
};
use rand::Rng;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// After a local change, wait this long for more before syncing.
const DEBOUNCE: Duration = feltkontor_sync::PUSH_DEBOUNCE;
/// Between syncs while everything works.
const INTERVAL: Duration = Duration::from_secs(60);
const BACKOFF_FIRST: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// What the status bar shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// This device has no connection to the central service: local data only.
    LocalOnly,
    /// The app is locked: nothing syncs until the worker unlocks.
    Locked,
    /// Connected to a service, and no round has finished since the store was opened: the
    /// first attempt is under way or about to start (not "offline": nothing failed yet).
    Connecting,
    Syncing,
    Online,
    /// The service could not be reached; the next attempt is scheduled.
    Offline,
    /// The service refused in a way that needs the worker (code in `error`).
    Error,
    /// The device was revoked and its data wiped.
    Revoked,
}

#[derive(Clone, Debug, Serialize, specta::Type)]
pub struct SyncStatus {
    pub state: SyncState,
    pub server_url: Option<String>,
    /// Changes saved here that the service has not acknowledged yet.
    pub pending: u32,
    /// RFC 3339.
    pub last_sync_at: Option<String>,
    /// A stable code when `state` is `error` or `offline`.
    pub error: Option<String>,
    /// The central service's own code when it refused (the union of its codes in TypeScript).
    pub refused: Option<ErrorCode>,
    pub open_conflicts: u32,
    pub rejected: u32,
    /// During a sync: records received so far in this round.
    pub received: u32,
    /// During a sync that needs more than one page (a first sync): about how many records the
    /// round receives in all; 0 when not known. The UI shows a progress bar.
    pub expected: u32,
    /// Goes up whenever a sync changed data on this device: the UI reloads what it shows.
    pub data_version: u32,
    /// Until when this device may unlock its data without coming back online (RFC 3339; the
    /// service renews it at every sync). The UI warns days ahead.
    pub lease_expires_at: Option<String>,
    /// Quarantined notes waiting for this worker's decision (as a case's coordinator, or a
    /// leader on its team), as the service said at the last sync. The status bar announces them.
    pub quarantined: u32,
}

impl Default for SyncStatus {
    fn default() -> Self {
        SyncStatus {
            state: SyncState::Locked,
            server_url: None,
            pending: 0,
            last_sync_at: None,
            error: None,
            refused: None,
            open_conflicts: 0,
            rejected: 0,
            received: 0,
            expected: 0,
            data_version: 0,
            lease_expires_at: None,
            quarantined: 0,
        }
    }
}

/// The task's shared state: the status, and the bell that local changes ring.
#[derive(Default)]
pub struct Sync {
    status: Mutex<SyncStatus>,
    wake: tokio::sync::Notify,
    /// The service applied a colleague's change (live updates): pull now, no debounce.
    remote_wake: tokio::sync::Notify,
    /// The access token and its single-flight refresh.
    credentials: feltkontor_sync::Credentials,
    /// When every bucket held was last compared with the service's (not yet: `None`).
    verified_at: Mutex<Option<Instant>>,
}

impl Sync {
    /// A local change was saved, or the worker asked: sync soon.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    pub fn status(&self) -> SyncStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        if let Ok(mut s) = self.status.lock() {
            f(&mut s);
        }
    }

    /// The access token from an enrollment, so the first sync need not refresh.
    pub fn set_access_token(&self, token: String) {
        self.credentials.set(token);
    }

    fn access_token(&self) -> Option<String> {
        self.credentials.current().map(|t| t.value)
    }

    /// How many quarantined notes wait for this worker, as the service just listed them.
    pub fn set_quarantined(&self, waiting: usize) {
        self.update(|s| s.quarantined = u32::try_from(waiting).unwrap_or(u32::MAX));
    }

    /// The worker decided on one of the waiting notes.
    pub fn quarantine_decided(&self) {
        self.update(|s| s.quarantined = s.quarantined.saturating_sub(1));
    }

    /// After the local data was deleted (retired, revoked): nothing of the old status stays.
    pub fn reset_after_wipe(&self) {
        self.forget_access_token();
        if let Ok(mut v) = self.verified_at.lock() {
            *v = None;
        }
        self.update(|s| *s = SyncStatus::default());
    }

    fn forget_access_token(&self) {
        self.credentials.forget();
    }
}

fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&Rfc3339).ok()
}

/// Reads the local part of the status (pending changes, conflicts, refusals) from the store.
pub fn refresh_local(session: &Session) {
    let local = session.store.with(|s| {
        let account = s.sync_account()?;
        Ok((
            account,
            s.pending_count()?,
            s.open_conflicts(None)?.len(),
            s.rejected_changes()?.len(),
        ))
    });
    let lease = session
        .location
        .lease()
        .ok()
        .flatten()
        .and_then(|l| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(l.expires_at_ms) * 1_000_000).ok()
        })
        .and_then(rfc3339);
    session.sync.update(|st| st.lease_expires_at = lease);
    session.sync.update(|st| match local {
        Ok((account, pending, conflicts, rejected)) => {
            st.pending = u32::try_from(pending).unwrap_or(u32::MAX);
            st.open_conflicts = u32::try_from(conflicts).unwrap_or(u32::MAX);
            st.rejected = u32::try_from(rejected).unwrap_or(u32::MAX);
            st.server_url = account.as_ref().map(|a| a.server_url.clone());
            st.last_sync_at = account.and_then(|a| a.last_sync_at).and_then(rfc3339);
            // A store is open: whatever was revoked is gone, and this is a new start.
            if st.server_url.is_none() {
                st.state = SyncState::LocalOnly;
            } else if matches!(
                st.state,
                SyncState::Locked | SyncState::LocalOnly | SyncState::Revoked
            ) {
                st.state = SyncState::Connecting;
            }
        }
        Err(SyncError::Locked) => {
            if st.state != SyncState::Revoked {
                st.state = SyncState::Locked;
            }
        }
        Err(e) => {
            st.state = SyncState::Error;
            st.error = Some(code_of(&e));
            st.refused = refused_code(&e);
        }
    });
}

fn code_of(e: &SyncError) -> String {
    match e {
        SyncError::Network(_) => "network".into(),
        SyncError::Refused { code, .. } => code.as_str().into(),
        SyncError::Store(e) => e.code().into(),
        SyncError::Locked => "session.locked".into(),
        SyncError::NotConnected => "lease.not_connected".into(),
    }
}

fn refused_code(e: &SyncError) -> Option<ErrorCode> {
    match e {
        SyncError::Refused { code, .. } => Some(*code),
        _ => None,
    }
}

fn backoff(failures: u32) -> Duration {
    let base = BACKOFF_FIRST
        .saturating_mul(1u32 << failures.min(10))
        .min(BACKOFF_MAX);
    // Full jitter between half and all of it: devices that lost the network together do not
    // come back together.
    let ms = base.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms.max(1)))
}

/// One round for the connected account: a fresh access token when needed, push, pull.
pub(crate) async fn round(session: &Arc<Session>, account: &SyncAccount) -> Result<(), SyncError> {
    let token = session
        .sync
        .credentials
        .token(&account.server_url, &session.store)
        .await?;
    let mut remote = Remote::new(&account.server_url, &token.value)?;
    let result = run(session, &remote).await;
    match result {
        Err(e) if needs_new_token(&e) => {
            let token = renew(session, account, &token).await?;
            remote.set_token(&token.value);
            run(session, &remote).await
        }
        other => other,
    }
}

fn needs_new_token(e: &SyncError) -> bool {
    e.token_expired()
        || matches!(
            e,
            SyncError::Refused {
                status: 401,
                code: ErrorCode::Unauthenticated,
                ..
            }
        )
}

/// One request to the service for the worker (an action that needs the network, such as
/// deciding on a quarantined note), with a fresh access token when the held one ran out.
pub(crate) async fn call<R, F, Fut>(
    session: &Arc<Session>,
    account: &SyncAccount,
    f: F,
) -> Result<R, SyncError>
where
    F: Fn(Remote) -> Fut,
    Fut: std::future::Future<Output = Result<R, SyncError>>,
{
    let token = session
        .sync
        .credentials
        .token(&account.server_url, &session.store)
        .await?;
    match f(Remote::new(&account.server_url, &token.value)?).await {
        Err(e) if needs_new_token(&e) => {
            let token = renew(session, account, &token).await?;
            f(Remote::new(&account.server_url, &token.value)?).await
        }
        other => other,
    }
}

async fn run(session: &Arc<Session>, remote: &Remote) -> Result<(), SyncError> {
    let sync = &session.sync;
    let mut report = SyncReport::default();
    push_all(remote, &session.store, &mut report, &mut |_, _| {}).await?;
    pull_all(remote, &session.store, &mut report, &mut |r| {
        let received = u32::try_from(r.pulled_records).unwrap_or(u32::MAX);
        let expected = r
            .expected_records
            .map_or(0, |e| u32::try_from(e).unwrap_or(u32::MAX));
        sync.update(|s| {
            s.received = received;
            s.expected = expected;
        });
    })
    .await?;
    if let Some(waiting) = report.quarantined {
        sync.update(|s| s.quarantined = waiting);
    }
    // Once a day (and in the first round after the app starts): every bucket held is compared
    // with the service's, also those no pull completed lately. Its failure does not fail the
    // round (the changes are sent and pulled): it is tried again in the next one.
    let due = sync
        .verified_at
        .lock()
        .map(|v| v.is_none_or(|at| at.elapsed() >= VERIFY_EVERY))
        .unwrap_or(false);
    if due {
        match verify_buckets(remote, &session.store, &mut report, &mut |_| {}).await {
            Ok(true) => {
                if let Ok(mut v) = sync.verified_at.lock() {
                    *v = Some(Instant::now());
                }
                tracing::info!(
                    compared = report.verified_buckets,
                    pulled_again = report.checksum_resets.len(),
                    "buckets compared with the service"
                );
            }
            // Changes wait to be sent: compared after a later round.
            Ok(false) => {}
            Err(e) if e.must_wipe() || needs_new_token(&e) || matches!(e, SyncError::Locked) => {
                return Err(e)
            }
            Err(e) => tracing::warn!("comparing the buckets with the service: {e}"),
        }
    }
    if report.changed_records > 0
        || !report.dropped_buckets.is_empty()
        || !report.checksum_resets.is_empty()
    {
        sync.update(|s| s.data_version = s.data_version.wrapping_add(1));
    }
    Ok(())
}

/// A new access token because `spent` was refused: one refresh at a time, shared by every
/// caller that found the same token spent ([`feltkontor_sync::Credentials::renew`]).
async fn renew(
    session: &Arc<Session>,
    account: &SyncAccount,
    spent: &feltkontor_sync::AccessToken,
) -> Result<feltkontor_sync::AccessToken, SyncError> {
    session
        .sync
        .credentials
        .renew(&account.server_url, &session.store, Some(spent))
        .await
}

/// Live updates: while online, one request at a time waits at the service (long-poll) until
/// it applied a change, and then rings the sync task, which pulls at once. Costs one idle
/// connection, no polling.
async fn listen(session: Arc<Session>) {
    let mut heard: u64 = 0;
    loop {
        let status = session.sync.status();
        let online = matches!(status.state, SyncState::Online | SyncState::Syncing);
        let remote = match (status.server_url, session.sync.access_token()) {
            (Some(url), Some(token)) if online => Remote::new(&url, &token).ok(),
            _ => None,
        };
        let Some(remote) = remote else {
            heard = 0;
            tokio::time::sleep(Duration::from_secs(2)).await;
            continue;
        };
        match remote.wait(heard).await {
            Ok(generation) => {
                if heard != 0 && generation != heard {
                    session.sync.remote_wake.notify_one();
                }
                heard = generation;
            }
            Err(_) => {
                // The sync task deals with the network and the tokens; try again later.
                heard = 0;
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// The task. Runs for the app's lifetime.
pub async fn background(session: Arc<Session>) {
    tokio::spawn(listen(session.clone()));
    let mut failures: u32 = 0;
    loop {
        refresh_local(&session);
        let status = session.sync.status();
        let wait = match status.state {
            SyncState::Offline | SyncState::Error if failures > 0 => backoff(failures),
            _ => INTERVAL,
        };
        tokio::select! {
            _ = session.sync.wake.notified() => {
                // More changes usually follow the first (autosave): wait for a quiet moment.
                tokio::time::sleep(DEBOUNCE).await;
            }
            _ = session.sync.remote_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let account = match session.store.with(|s| Ok(s.sync_account()?)) {
            Ok(Some(a)) => a,
            Ok(None) | Err(SyncError::Locked) => {
                failures = 0;
                continue;
            }
            Err(e) => {
                tracing::error!("sync: reading the account: {e}");
                continue;
            }
        };
        session.sync.update(|s| {
            s.state = SyncState::Syncing;
            s.received = 0;
            s.expected = 0;
        });
        match round(&session, &account).await {
            Ok(()) => {
                failures = 0;
                let now = OffsetDateTime::now_utc();
                let _ = session.store.with(|s| Ok(s.mark_synced(now)?));
                session.sync.update(|s| {
                    s.state = SyncState::Online;
                    s.error = None;
                    s.refused = None;
                });
                // A first sync stores its records before indexing them: the index now catches
                // up in the background (a search before then completes it itself).
                if let Err(e) = feltkontor_sync::catch_up_search(&session.store).await {
                    tracing::error!("search index: {e}");
                }
            }
            Err(e) if e.must_wipe() => {
                tracing::warn!("sync: this device was revoked; wiping local data");
                wipe(&session);
                session.sync.update(|s| {
                    *s = SyncStatus {
                        state: SyncState::Revoked,
                        ..SyncStatus::default()
                    }
                });
                failures = 0;
                // The task stays: the worker may connect this computer again.
            }
            Err(SyncError::Locked) => {
                session.sync.update(|s| s.state = SyncState::Locked);
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let transient = e.transient();
                tracing::info!(failures, transient, "sync failed: {}", code_of(&e));
                session.sync.update(|s| {
                    s.state = if transient {
                        SyncState::Offline
                    } else {
                        SyncState::Error
                    };
                    s.error = Some(code_of(&e));
                    s.refused = refused_code(&e);
                });
            }
        }
    }
}

pub fn wipe(session: &Session) {
    let store = session.store().take();
    let wiped = match store {
        Some(store) => store.wipe(),
        None => session.location.wipe(),
    };
    if let Err(e) = wiped {
        tracing::error!("wiping the revoked device's data failed: {e}");
    }
}
