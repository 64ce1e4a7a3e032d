//! The device's life with the central service outside the sync rounds: connecting (enrolling
//! with a one-time code and creating the encrypted store), renewing a lapsed lease with the
//! worker's password, and retiring (handing the laptop back). Headless: the desktop shell only
//! turns the answers into its error codes; the tests run these flows against the real service.

use crate::{push_all, CarriesLease, Remote, StoreAccess, SyncError};
use feltkontor_core::clock::Clock;
use feltkontor_core::store::account::SyncAccount;
use feltkontor_core::store::{keys, KdfParams};
use feltkontor_core::{Store, StoreLocation};
use feltkontor_wire::{DeviceId, StaffId};
use std::sync::Arc;

/// Why an address typed for the central service is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("the address of the central service is not valid")]
    Invalid,
    /// `http://` to another machine: passwords and case data would cross the network in clear.
    #[error("the central service must be reached over https")]
    Insecure,
}

/// The central service's address as typed, checked by a URL parser: `https://…`, or `http://`
/// only to this machine (`localhost`, `127.0.0.1`, `[::1]`); no user name or password inside.
/// Returned without a trailing slash.
pub fn service_url(raw: &str) -> Result<String, AddressError> {
    let raw = raw.trim().trim_end_matches('/');
    if raw.len() > 300 || raw.contains(char::is_whitespace) {
        return Err(AddressError::Invalid);
    }
    let url = url::Url::parse(raw).map_err(|_| AddressError::Invalid)?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(AddressError::Invalid),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(AddressError::Invalid);
    }
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback => Ok(raw.to_owned()),
        "http" => Err(AddressError::Insecure),
        _ => Err(AddressError::Invalid),
    }
}

/// What connecting a computer needs from the worker.
pub struct Enrollment {
    /// Checked by [`service_url`].
    pub server_url: String,
    pub code: String,
    pub username: String,
    pub password: String,
    /// The new store's passphrase.
    pub passphrase: String,
    /// How IT tells this computer apart ("host (user)").
    pub device_name: String,
}

/// A connected computer: its new store, unlocked, and the first access token.
pub struct Enrolled {
    pub store: Store,
    pub access_token: String,
}

/// Connects this computer: everything that can fail locally is checked before the one-time
/// code is spent (the passphrase's strength, no store here yet); then the service enrolls the
/// device and the encrypted store is created with the service's lease and address sealed in
/// its key file. Key derivation runs on a blocking thread.
pub async fn enroll(
    location: &StoreLocation,
    e: Enrollment,
    kdf: KdfParams,
    clock: Arc<dyn Clock>,
) -> Result<Enrolled, SyncError> {
    keys::check_passphrase_strength(&e.passphrase)?;
    if location.exists() {
        return Err(feltkontor_core::Error::StoreExists(location.dir().to_owned()).into());
    }
    let remote = Remote::new(&e.server_url, "")?;
    let username = e.username.trim().to_owned();
    let tokens = remote
        .enroll(e.code.trim(), &username, &e.password, &e.device_name)
        .await?;
    let lease = tokens.lease()?;
    let location = location.clone();
    let url = e.server_url;
    let passphrase = e.passphrase;
    blocking(move || {
        let store = Store::create_connected(
            &location,
            &passphrase,
            &lease,
            &url,
            StaffId(tokens.staff_id),
            DeviceId(tokens.device_id),
            kdf,
            clock,
        )?;
        store.set_sync_account(&SyncAccount {
            server_url: url,
            username,
            refresh_token: tokens.refresh_token,
            connected_at: time::OffsetDateTime::now_utc(),
            last_sync_at: None,
        })?;
        Ok(Enrolled {
            store,
            access_token: tokens.access_token,
        })
    })
    .await
}

/// Renews the lease that ran out while the computer was away, with the worker's user name and
/// password. The password goes only to the service address sealed in the key file at
/// enrollment (checked with the passphrase), never to the one in the unencrypted lease file,
/// which anyone holding the laptop can edit; `fallback_url` (the installation's own setting)
/// is used only for a key file from before addresses were recorded. A revoked device answers
/// [`SyncError::must_wipe`].
pub async fn renew_lease(
    location: &StoreLocation,
    username: &str,
    password: &str,
    passphrase: &str,
    fallback_url: Option<String>,
    clock: Arc<dyn Clock>,
) -> Result<(), SyncError> {
    let loc = location.clone();
    let passphrase = passphrase.to_owned();
    let (url, device) = blocking(move || {
        if loc.lease()?.is_none() {
            return Err(SyncError::NotConnected);
        }
        let recorded = keys::service_url(
            &loc.key_file(),
            &loc.attempts_file(),
            &passphrase,
            clock.as_ref(),
        )?;
        let url = recorded
            .or(fallback_url.filter(|u| !u.trim().is_empty()))
            .ok_or(SyncError::NotConnected)?;
        Ok((url, loc.device_id()?))
    })
    .await?;
    let lease = Remote::new(&url, "")?
        .recover_lease(device.0, username.trim(), password)
        .await?;
    let loc = location.clone();
    blocking(move || {
        keys::write_lease(&loc.lease_file(), &loc.key_file(), &lease, None)?;
        Ok(())
    })
    .await
}

/// What a retire found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retire {
    /// The service retired the device: wipe the local store now.
    Retired,
    /// Changes (`changes`) or access-log entries (`access`) have not reached the service:
    /// nothing was retired; deleting now would lose them.
    Unsent { changes: u64, access: u64 },
}

/// Hands the device back: sends every change and access-log entry first; if something could
/// not be sent, says so and retires nothing unless `force` (the worker saw what would be lost).
/// On [`Retire::Retired`] the caller wipes the store. With `force` the service is told if it
/// can be reached; a device the service already revoked is retired too.
pub async fn retire<L: StoreAccess>(
    remote: &Remote,
    store: &L,
    force: bool,
) -> Result<Retire, SyncError> {
    // Every change, then the access log (`push_all` sends both).
    let mut report = crate::SyncReport::default();
    if let Err(e) = push_all(remote, store, &mut report, &mut |_, _| {}).await {
        tracing::info!("retire: the last push failed: {e}");
    }
    if !force {
        let (changes, access) =
            store.with(|s| Ok((s.pending_count()?, s.pending_access_count()?)))?;
        if changes > 0 || access > 0 {
            return Ok(Retire::Unsent { changes, access });
        }
    }
    match remote.retire().await {
        Ok(()) => Ok(Retire::Retired),
        Err(e) if e.must_wipe() => Ok(Retire::Retired),
        Err(e) if force => {
            tracing::warn!("retire (forced): the service could not be told: {e}");
            Ok(Retire::Retired)
        }
        Err(e) => Err(e),
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, SyncError> + Send + 'static,
) -> Result<R, SyncError> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => h
            .spawn_blocking(f)
            .await
            .map_err(|e| SyncError::Network(format!("a background task failed: {e}")))?,
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_not_pattern_matched() {
        for ok in [
            "https://feltkontor.aarhus.dk",
            "https://feltkontor.aarhus.dk/",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "http://127.0.0.2:8080",
        ] {
            assert!(service_url(ok).is_ok(), "{ok}");
        }
        assert_eq!(service_url("https://x.dk/").unwrap(), "https://x.dk");
        for insecure in [
            "http://feltkontor.aarhus.dk",
            "http://10.0.0.1",
            "http://[::2]:80",
        ] {
            assert_eq!(
                service_url(insecure),
                Err(AddressError::Insecure),
                "{insecure}"
            );
        }
        for bad in [
            "",
            "feltkontor",
            "ftp://x.dk",
            "https://user:pw@x.dk",
            "https://x .dk",
            "http://localhost.evil.dk:8080@",
            "javascript:alert(1)",
            &format!("https://{}.dk", "a".repeat(300)),
        ] {
            assert!(service_url(bad).is_err(), "{bad:?}");
        }
        // A host that merely starts like loopback is not loopback.
        assert_eq!(
            service_url("http://127.0.0.1.evil.dk"),
            Err(AddressError::Insecure)
        );
    }
}
