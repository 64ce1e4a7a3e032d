//! The database key and how it is wrapped.
//!
//! The SQLCipher key is 32 random bytes, never derived from anything. It is stored only
//! wrapped (XChaCha20-Poly1305) in a small key file next to the database. The wrapping key is
//! built from *factors*: the worker's passphrase through Argon2id and, on a device connected to
//! the central service, the service's **lease** secret, combined through BLAKE2b keyed hashing
//! (`kek = BLAKE2b-256(key = argon2(passphrase), lease_secret)`). A key file records which
//! factors it needs, so an old file still opens with its own list. The header (format, ids, KDF
//! parameters, factors) is authenticated as associated data: editing any of it makes unwrapping fail.
//! From format 2 the header is kept as the exact bytes that were authenticated (a JSON string
//! inside the file), so a field added to it later never changes what an existing file's
//! associated data is; format 1 files (the header flattened into the file) still open. Format 2
//! also records the central service's address in the header and seals the header with a MAC
//! keyed by the passphrase alone ([`service_url`]): renewing a lapsed lease sends the worker's
//! password only to that address, never to one read from the editable lease file.
//!
//! The lease secret is kept in the lease file next to the key file with its expiry. It is the
//! same for the device's lifetime; the service moves the expiry forward at every token refresh.
//! An unlock after the expiry (by this device's clock) erases the secret from the lease file
//! *before* the passphrase is even tried, and fails: the store stays unreadable until the
//! service hands the secret out again, which it never does for a revoked device. (Someone who
//! copied the lease file before it ran out and knows the passphrase is not stopped by this; the
//! lease bounds how long a lost laptop stays usable through the app.)
//!
//! Failed attempts are counted in a separate file; after [`FREE_ATTEMPTS`] failures each new
//! attempt must wait twice as long as the last, up to [`MAX_DELAY_SECS`]. The database itself
//! is not touched by a failed attempt.

use crate::clock::Clock;
use crate::error::{Error, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use feltkontor_wire::{DeviceId, StaffId};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

pub const KEY_FILE_FORMAT: u32 = 2;
pub const MIN_PASSPHRASE_CHARS: usize = feltkontor_domain::strength::MIN_CHARS;
pub const FREE_ATTEMPTS: u32 = 3;
pub const MAX_DELAY_SECS: u64 = 300;

/// Argon2id cost. The defaults meet the ≥ 64 MiB floor we promise; `create` refuses less.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl KdfParams {
    pub const MIN_MEMORY_KIB: u32 = 64 * 1024;
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// A factor the wrapping key is built from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Factor {
    Passphrase,
    /// The central service's lease secret.
    Lease,
}

/// The central service's lease as this device keeps it. The secret never appears in `Debug`.
#[derive(Clone)]
pub struct Lease {
    secret: Zeroizing<[u8; 32]>,
    /// Unix ms, by the service's clock.
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl Lease {
    /// From the service's answer: 64 hex characters and the expiry.
    pub fn from_hex(secret: &str, expires_at_ms: i64) -> Result<Lease> {
        let bytes = Zeroizing::new(
            hex::decode(secret)
                .map_err(|_| Error::KeyFileDamaged("lease secret is not hex".into()))?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        if bytes.len() != 32 {
            return Err(Error::KeyFileDamaged(
                "lease secret must be 32 bytes".into(),
            ));
        }
        out.copy_from_slice(&bytes);
        Ok(Lease {
            secret: out,
            expires_at_ms,
        })
    }

    fn same_secret(&self, other: &Lease) -> bool {
        self.secret.as_ref() == other.secret.as_ref()
    }
}

/// The lease file: the secret (erased when the lease runs out), its expiry, and where to renew
/// it (the service's address), readable without the passphrase so that the unlock screen can
/// offer to renew it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct LeaseFile {
    secret: Option<String>,
    pub expires_at_ms: i64,
    pub server_url: Option<String>,
}

impl LeaseFile {
    fn lease(&self) -> Result<Option<Lease>> {
        self.secret
            .as_deref()
            .map(|s| Lease::from_hex(s, self.expires_at_ms))
            .transpose()
    }
}

/// Reads the lease file; `None` when this device has none (a local-only profile).
pub fn read_lease_file(path: &Path) -> Result<Option<LeaseFile>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::KeyFileDamaged(format!("lease file: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Writes the lease file (atomically). A lease whose secret differs from the one a key file
/// already depends on is refused: it would lock the worker out of their own data.
pub fn write_lease(
    path: &Path,
    key_path: &Path,
    lease: &Lease,
    server_url: Option<&str>,
) -> Result<()> {
    let old = read_lease_file(path)?;
    if let Some(held) = old.as_ref().map(LeaseFile::lease).transpose()?.flatten() {
        if !held.same_secret(lease) && requires_lease(key_path)? {
            return Err(Error::KeyFileDamaged(
                "the service sent a different lease secret than this device's".into(),
            ));
        }
    }
    let file = LeaseFile {
        secret: Some(hex::encode(lease.secret.as_ref())),
        expires_at_ms: lease.expires_at_ms,
        server_url: server_url
            .map(str::to_owned)
            .or_else(|| old.and_then(|o| o.server_url)),
    };
    let json =
        Zeroizing::new(serde_json::to_vec(&file).map_err(|e| Error::Corrupt(e.to_string()))?);
    write_atomically(path, &json)
}

/// Erases the secret from the lease file (keeping the expiry and the service's address).
fn erase_lease(path: &Path, mut file: LeaseFile) -> Result<()> {
    file.secret = None;
    let json = serde_json::to_vec(&file).map_err(|e| Error::Corrupt(e.to_string()))?;
    write_atomically(path, &json)
}

/// The device named in the key file's header.
pub fn device_of(key_path: &Path) -> Result<DeviceId> {
    Ok(read_key_file(key_path)?.header.device_id)
}

/// Whether the key file needs the lease to open.
pub fn requires_lease(key_path: &Path) -> Result<bool> {
    Ok(read_key_file(key_path)?
        .header
        .factors
        .contains(&Factor::Lease))
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Header {
    format: u32,
    device_id: DeviceId,
    worker_id: StaffId,
    kdf: KdfParams,
    salt: String,
    factors: Vec<Factor>,
    /// The central service this device was enrolled with (format 2; `None` for a local-only
    /// profile). Never serialised when absent, so a format 1 header re-serialises as it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server_url: Option<String>,
}

/// Format 1: the header flattened into the file; its associated data is the header as this
/// build serialises it (unchanged for those files, which never have a `server_url`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyFileV1 {
    #[serde(flatten)]
    header: Header,
    nonce: String,
    wrapped_key: String,
}

/// Format 2: the header's exact bytes, authenticated as they are stored, and sealed by the
/// passphrase alone (`header_mac`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileV2 {
    header: String,
    header_mac: String,
    nonce: String,
    wrapped_key: String,
}

/// A key file as read: the parsed header, the bytes its associated data is, and (format 2) the
/// passphrase's seal over them.
#[derive(Clone, Debug)]
struct KeyFile {
    header: Header,
    aad: Vec<u8>,
    header_mac: Option<String>,
    nonce: String,
    wrapped_key: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Attempts {
    failures: u32,
    last_failure_ms: u64,
}

/// The unwrapped database key and who it belongs to. Zeroized on drop.
pub struct Unwrapped {
    pub key: Zeroizing<[u8; 32]>,
    pub device_id: DeviceId,
    pub worker_id: StaffId,
}

fn derive_kek(passphrase: &str, salt: &[u8], kdf: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| Error::KeyFileDamaged(format!("invalid key derivation parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|e| Error::KeyFileDamaged(format!("key derivation failed: {e}")))?;
    Ok(out)
}

/// The wrapping key from the factors the header names, given the passphrase's key.
fn wrapping_key(
    kek: Zeroizing<[u8; 32]>,
    header: &Header,
    lease: Option<&Lease>,
) -> Result<Zeroizing<[u8; 32]>> {
    if !header.factors.contains(&Factor::Lease) {
        return Ok(kek);
    }
    let lease = lease.ok_or(Error::LeaseExpired)?;
    use blake2::digest::{consts::U32, KeyInit, Mac};
    let mut mac = <blake2::Blake2bMac<U32> as KeyInit>::new_from_slice(kek.as_ref())
        .map_err(|_| Error::KeyFileDamaged("could not combine the factors".into()))?;
    mac.update(lease.secret.as_ref());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    Ok(out)
}

/// The wrapping key from the factors the header names.
fn derive_wrapping_key(
    passphrase: &str,
    salt: &[u8],
    header: &Header,
    lease: Option<&Lease>,
) -> Result<Zeroizing<[u8; 32]>> {
    wrapping_key(derive_kek(passphrase, salt, header.kdf)?, header, lease)
}

fn cipher(kek: &[u8; 32]) -> Result<XChaCha20Poly1305> {
    XChaCha20Poly1305::new_from_slice(kek)
        .map_err(|_| Error::KeyFileDamaged("the wrapping key has the wrong length".into()))
}

/// The associated data of a format 1 file: its header as serialised.
fn aad_v1(header: &Header) -> Vec<u8> {
    serde_json::to_vec(header).unwrap_or_default()
}

/// The seal over a format 2 header: BLAKE2b-256 keyed by the passphrase's key (not the lease),
/// so it can be checked while the lease has lapsed.
fn header_seal(kek: &[u8; 32], header: &[u8]) -> Result<String> {
    use blake2::digest::{consts::U32, KeyInit, Mac};
    let mut mac = <blake2::Blake2bMac<U32> as KeyInit>::new_from_slice(kek)
        .map_err(|_| Error::KeyFileDamaged("could not seal the header".into()))?;
    mac.update(b"feltkontor key file header\0");
    mac.update(header);
    Ok(hex::encode(mac.finalize().into_bytes()))
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file, never half.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            d.sync_all()?;
        }
    }
    Ok(())
}

/// The store's passphrase rule: at least [`MIN_PASSPHRASE_CHARS`] characters and hard to guess
/// by zxcvbn ([`feltkontor_domain::strength`]), the same estimate the app's meter shows.
pub fn check_passphrase_strength(passphrase: &str) -> Result<()> {
    if !feltkontor_domain::strength::strength(passphrase, &[]).acceptable {
        return Err(Error::WeakPassphrase {
            min: MIN_PASSPHRASE_CHARS,
        });
    }
    Ok(())
}

/// Wraps `key` under `passphrase` with a fresh salt and nonce and writes the key file (always
/// the current format).
fn wrap_to_file(
    key_path: &Path,
    mut header: Header,
    passphrase: &str,
    lease: Option<&Lease>,
    key: &[u8; 32],
) -> Result<()> {
    let mut rng = rand::rngs::OsRng;
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    header.salt = hex::encode(salt);
    header.format = KEY_FILE_FORMAT;
    let header_bytes = serde_json::to_string(&header).map_err(|e| Error::Corrupt(e.to_string()))?;
    let passphrase_key = derive_kek(passphrase, &salt, header.kdf)?;
    let header_mac = header_seal(&passphrase_key, header_bytes.as_bytes())?;
    let kek = wrapping_key(passphrase_key, &header, lease)?;
    let wrapped = cipher(&kek)?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: key,
                aad: header_bytes.as_bytes(),
            },
        )
        .map_err(|_| Error::KeyFileDamaged("could not wrap the key".into()))?;
    let file = KeyFileV2 {
        header_mac,
        header: header_bytes,
        nonce: hex::encode(nonce),
        wrapped_key: hex::encode(wrapped),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| Error::Corrupt(e.to_string()))?;
    write_atomically(key_path, &json)
}

/// Makes a new random database key, writes it wrapped under `passphrase` (and the lease, when
/// given) to `key_path`.
pub fn create(
    key_path: &Path,
    passphrase: &str,
    lease: Option<(&Lease, &str)>,
    device_id: DeviceId,
    worker_id: StaffId,
    kdf: KdfParams,
) -> Result<Unwrapped> {
    check_passphrase_strength(passphrase)?;
    if kdf.memory_kib < KdfParams::MIN_MEMORY_KIB {
        return Err(Error::KeyFileDamaged(
            "key derivation memory below 64 MiB".into(),
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(key.as_mut());
    let header = Header {
        format: KEY_FILE_FORMAT,
        device_id,
        worker_id,
        kdf,
        salt: String::new(),
        factors: if lease.is_some() {
            vec![Factor::Passphrase, Factor::Lease]
        } else {
            vec![Factor::Passphrase]
        },
        server_url: lease.map(|(_, url)| url.to_owned()),
    };
    wrap_to_file(key_path, header, passphrase, lease.map(|(l, _)| l), &key)?;
    Ok(Unwrapped {
        key,
        device_id,
        worker_id,
    })
}

fn read_key_file(key_path: &Path) -> Result<KeyFile> {
    let bytes = fs::read(key_path)?;
    let damaged = |e: serde_json::Error| Error::KeyFileDamaged(e.to_string());
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(damaged)?;
    let file = if value
        .get("header")
        .is_some_and(serde_json::Value::is_string)
    {
        let v2: KeyFileV2 = serde_json::from_value(value).map_err(damaged)?;
        KeyFile {
            header: serde_json::from_str(&v2.header).map_err(damaged)?,
            aad: v2.header.into_bytes(),
            header_mac: Some(v2.header_mac),
            nonce: v2.nonce,
            wrapped_key: v2.wrapped_key,
        }
    } else {
        let v1: KeyFileV1 = serde_json::from_value(value).map_err(damaged)?;
        if v1.header.format != 1 || v1.header.server_url.is_some() {
            return Err(Error::KeyFileDamaged(
                "a format 1 key file with a format 2 header".into(),
            ));
        }
        KeyFile {
            aad: aad_v1(&v1.header),
            header: v1.header,
            header_mac: None,
            nonce: v1.nonce,
            wrapped_key: v1.wrapped_key,
        }
    };
    if file.header.format > KEY_FILE_FORMAT {
        return Err(Error::KeyFileDamaged(format!(
            "unknown key file format {}",
            file.header.format
        )));
    }
    Ok(file)
}

/// Checks the attempts file's delay; the failure is counted by [`count_failure`].
fn check_delay(attempts: &Attempts, now_ms: u64) -> Result<()> {
    let wait_until = attempts
        .last_failure_ms
        .saturating_add(delay_after(attempts.failures) * 1000);
    if now_ms < wait_until {
        return Err(Error::Throttled {
            retry_after_secs: (wait_until - now_ms).div_ceil(1000),
        });
    }
    Ok(())
}

fn count_failure(attempts_path: &Path, mut attempts: Attempts, now_ms: u64) -> Result<()> {
    attempts.failures += 1;
    attempts.last_failure_ms = now_ms;
    let json = serde_json::to_vec(&attempts).map_err(|e| Error::Corrupt(e.to_string()))?;
    write_atomically(attempts_path, &json)?;
    tracing::warn!(failures = attempts.failures, "failed unlock attempt");
    Ok(())
}

/// The central service this device was enrolled with, as the key file's header records it,
/// checked with the passphrase alone (the lease may have lapsed): the only address a lapsed
/// lease is renewed at. `None` for a key file without one (a local-only profile, or a format
/// 1 file that no unlock has upgraded yet). A wrong passphrase counts as a failed attempt.
pub fn service_url(
    key_path: &Path,
    attempts_path: &Path,
    passphrase: &str,
    clock: &dyn Clock,
) -> Result<Option<String>> {
    let file = read_key_file(key_path)?;
    let Some(seal) = file.header_mac.as_deref() else {
        return Ok(None);
    };
    let attempts = read_attempts(attempts_path);
    let now_ms = clock.now_ms();
    check_delay(&attempts, now_ms)?;
    let salt = hex::decode(&file.header.salt).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    let kek = derive_kek(passphrase, &salt, file.header.kdf)?;
    let expected = header_seal(&kek, &file.aad)?;
    // Compared in constant time: the seal is a MAC.
    use subtle::ConstantTimeEq;
    if !bool::from(expected.as_bytes().ct_eq(seal.as_bytes())) {
        count_failure(attempts_path, attempts, now_ms)?;
        return Err(Error::WrongPassphrase);
    }
    if attempts.failures > 0 {
        let _ = fs::remove_file(attempts_path);
    }
    Ok(file.header.server_url)
}

/// Records the central service's address in the key file's header (a format 1 file, or one
/// made before addresses were recorded), re-wrapping the same key. Called after an unlock,
/// with the address from inside the encrypted store.
pub fn record_service_url(
    key_path: &Path,
    lease_path: &Path,
    unwrapped: &Unwrapped,
    passphrase: &str,
    server_url: &str,
) -> Result<()> {
    let file = read_key_file(key_path)?;
    if file.header_mac.is_some() && file.header.server_url.as_deref() == Some(server_url) {
        return Ok(());
    }
    let lease = read_lease_file(lease_path)?
        .map(|l| l.lease())
        .transpose()?
        .flatten();
    if file.header.factors.contains(&Factor::Lease) && lease.is_none() {
        return Ok(());
    }
    let mut header = file.header;
    header.server_url = Some(server_url.to_owned());
    wrap_to_file(key_path, header, passphrase, lease.as_ref(), &unwrapped.key)
}

fn read_attempts(path: &Path) -> Attempts {
    fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// How long the next attempt must wait after `failures` consecutive failures.
pub fn delay_after(failures: u32) -> u64 {
    if failures < FREE_ATTEMPTS {
        0
    } else {
        let exp = (failures - FREE_ATTEMPTS).min(16);
        (1u64 << exp).min(MAX_DELAY_SECS)
    }
}

/// Unwraps the database key with `passphrase` (and the lease in `lease_path` when the key file
/// needs it), enforcing the delay after repeated failures. A lease past its expiry is erased
/// before anything else is tried. A key file that needs only the passphrase on a device that
/// now holds a lease is re-wrapped to need both (a device connected before leases existed).
pub fn unwrap(
    key_path: &Path,
    attempts_path: &Path,
    lease_path: &Path,
    passphrase: &str,
    clock: &dyn Clock,
) -> Result<Unwrapped> {
    let file = read_key_file(key_path)?;
    let attempts = read_attempts(attempts_path);
    let now_ms = clock.now_ms();
    check_delay(&attempts, now_ms)?;
    let lease_file = read_lease_file(lease_path)?;
    let lease = match lease_file {
        Some(lf) if lf.secret.is_some() && i128::from(lf.expires_at_ms) <= i128::from(now_ms) => {
            tracing::warn!("the device lease has run out: its secret is erased");
            erase_lease(lease_path, lf)?;
            None
        }
        Some(lf) => lf.lease()?,
        None => None,
    };
    let needs_lease = file.header.factors.contains(&Factor::Lease);
    if needs_lease && lease.is_none() {
        return Err(Error::LeaseExpired);
    }
    let salt = hex::decode(&file.header.salt).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    let nonce = hex::decode(&file.nonce).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    let wrapped =
        hex::decode(&file.wrapped_key).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    if nonce.len() != 24 {
        return Err(Error::KeyFileDamaged("bad nonce length".into()));
    }
    let kek = derive_wrapping_key(passphrase, &salt, &file.header, lease.as_ref())?;
    let nonce = <&XNonce>::try_from(nonce.as_slice())
        .map_err(|_| Error::KeyFileDamaged("bad nonce length".into()))?;
    match cipher(&kek)?.decrypt(
        nonce,
        Payload {
            msg: &wrapped,
            aad: &file.aad,
        },
    ) {
        Ok(plain) => {
            let plain = Zeroizing::new(plain);
            if plain.len() != 32 {
                return Err(Error::KeyFileDamaged("bad key length".into()));
            }
            let mut key = Zeroizing::new([0u8; 32]);
            key.copy_from_slice(&plain);
            if attempts.failures > 0 {
                let _ = fs::remove_file(attempts_path);
            }
            if let (false, Some(lease)) = (needs_lease, lease.as_ref()) {
                let mut header = file.header.clone();
                header.factors.push(Factor::Lease);
                wrap_to_file(key_path, header, passphrase, Some(lease), &key)?;
            } else if file.header.format < KEY_FILE_FORMAT {
                // An old file is upgraded to the current format at its first unlock.
                wrap_to_file(
                    key_path,
                    file.header.clone(),
                    passphrase,
                    lease.as_ref(),
                    &key,
                )?;
            }
            Ok(Unwrapped {
                key,
                device_id: file.header.device_id,
                worker_id: file.header.worker_id,
            })
        }
        Err(_) => {
            count_failure(attempts_path, attempts, now_ms)?;
            Err(Error::WrongPassphrase)
        }
    }
}

/// Re-wraps the same database key under a new passphrase (the database is not re-encrypted);
/// a key file that needs the lease keeps needing it.
pub fn rewrap(
    key_path: &Path,
    lease_path: &Path,
    unwrapped: &Unwrapped,
    new_passphrase: &str,
) -> Result<()> {
    check_passphrase_strength(new_passphrase)?;
    let old = read_key_file(key_path)?;
    let lease = read_lease_file(lease_path)?
        .map(|l| l.lease())
        .transpose()?
        .flatten();
    wrap_to_file(
        key_path,
        old.header,
        new_passphrase,
        lease.as_ref(),
        &unwrapped.key,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    const PASS: &str = "en lang nok adgangssaetning";
    /// Cheap Argon2 for these tests (the 64 MiB floor is enforced by `create`, not here).
    const CHEAP: KdfParams = KdfParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    fn lease() -> Lease {
        Lease::from_hex(&"ab".repeat(32), i64::MAX / 2).unwrap()
    }

    fn header(server_url: Option<&str>) -> Header {
        Header {
            format: KEY_FILE_FORMAT,
            device_id: DeviceId::new(),
            worker_id: StaffId::new(),
            kdf: CHEAP,
            salt: String::new(),
            factors: vec![Factor::Passphrase, Factor::Lease],
            server_url: server_url.map(str::to_owned),
        }
    }

    struct Files {
        _dir: tempfile::TempDir,
        key: std::path::PathBuf,
        attempts: std::path::PathBuf,
        lease: std::path::PathBuf,
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let f = Files {
            key: dir.path().join("key.json"),
            attempts: dir.path().join("attempts.json"),
            lease: dir.path().join("lease.json"),
            _dir: dir,
        };
        write_lease(
            &f.lease,
            &f.key,
            &lease(),
            Some("https://feltkontor.aarhus.dk"),
        )
        .unwrap();
        f
    }

    /// A key file written as a build before format 2 wrote it: the header flattened into the
    /// file and authenticated as this struct serialises it.
    fn write_v1(path: &Path, key: &[u8; 32]) {
        let mut h = header(None);
        h.format = 1;
        h.salt = hex::encode([7u8; 16]);
        let kek = derive_wrapping_key(PASS, &[7u8; 16], &h, Some(&lease())).unwrap();
        let nonce = [9u8; 24];
        let wrapped = cipher(&kek)
            .unwrap()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: key,
                    aad: &aad_v1(&h),
                },
            )
            .unwrap();
        let file = KeyFileV1 {
            header: h,
            nonce: hex::encode(nonce),
            wrapped_key: hex::encode(wrapped),
        };
        fs::write(path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    }

    #[test]
    fn a_format_1_key_file_still_opens_and_is_upgraded() {
        let f = files();
        write_v1(&f.key, &[5u8; 32]);
        let opened = unwrap(&f.key, &f.attempts, &f.lease, PASS, &SystemClock).unwrap();
        assert_eq!(*opened.key, [5u8; 32]);
        let upgraded: serde_json::Value =
            serde_json::from_slice(&fs::read(&f.key).unwrap()).unwrap();
        assert!(upgraded["header"].is_string(), "rewritten in format 2");
        let again = unwrap(&f.key, &f.attempts, &f.lease, PASS, &SystemClock).unwrap();
        assert_eq!(*again.key, [5u8; 32]);
    }

    /// The associated data is the header as stored: a header with a field this build does not
    /// know (written by a later one) still opens, and any edit of the stored bytes is refused.
    #[test]
    fn the_authenticated_header_is_the_stored_bytes() {
        let f = files();
        let mut h = header(Some("https://feltkontor.aarhus.dk"));
        h.salt = hex::encode([3u8; 16]);
        let mut value = serde_json::to_value(&h).unwrap();
        value["added_by_a_later_version"] = serde_json::json!({ "x": 1 });
        let header_bytes = serde_json::to_string(&value).unwrap();
        let passphrase_key = derive_kek(PASS, &[3u8; 16], CHEAP).unwrap();
        let seal = header_seal(&passphrase_key, header_bytes.as_bytes()).unwrap();
        let kek = wrapping_key(passphrase_key, &h, Some(&lease())).unwrap();
        let wrapped = cipher(&kek)
            .unwrap()
            .encrypt(
                &XNonce::from([1u8; 24]),
                Payload {
                    msg: &[6u8; 32],
                    aad: header_bytes.as_bytes(),
                },
            )
            .unwrap();
        let file = KeyFileV2 {
            header: header_bytes.clone(),
            header_mac: seal,
            nonce: hex::encode([1u8; 24]),
            wrapped_key: hex::encode(&wrapped),
        };
        fs::write(&f.key, serde_json::to_vec(&file).unwrap()).unwrap();
        let opened = unwrap(&f.key, &f.attempts, &f.lease, PASS, &SystemClock).unwrap();
        assert_eq!(*opened.key, [6u8; 32]);

        // One byte of the stored header changed (the worker id's last hex digit): refused.
        let mut tampered = file.clone();
        // `worker_id":"` then 36 characters of uuid: the last one is at +47.
        let at = tampered.header.find("worker_id").unwrap() + 47;
        let flipped = if tampered.header.as_bytes()[at] == b'0' {
            "1"
        } else {
            "0"
        };
        tampered.header.replace_range(at..at + 1, flipped);
        fs::write(&f.key, serde_json::to_vec(&tampered).unwrap()).unwrap();
        assert!(matches!(
            unwrap(&f.key, &f.attempts, &f.lease, PASS, &SystemClock),
            Err(Error::WrongPassphrase)
        ));
    }

    /// Renewing a lapsed lease goes to the address the key file records, checked with the
    /// passphrase alone; an address edited into the lease file is never used, and an address
    /// edited into the key file's header breaks its seal.
    #[test]
    fn the_service_address_comes_from_the_sealed_header_not_the_lease_file() {
        let f = files();
        let u = create(
            &f.key,
            PASS,
            Some((&lease(), "https://feltkontor.aarhus.dk")),
            DeviceId::new(),
            StaffId::new(),
            KdfParams::default(),
        )
        .unwrap();
        drop(u);
        // Someone edits the lease file (readable without the passphrase).
        let mut lf = read_lease_file(&f.lease).unwrap().unwrap();
        lf.server_url = Some("https://evil.example".into());
        fs::write(&f.lease, serde_json::to_vec(&lf).unwrap()).unwrap();
        assert_eq!(
            service_url(&f.key, &f.attempts, PASS, &SystemClock)
                .unwrap()
                .as_deref(),
            Some("https://feltkontor.aarhus.dk")
        );
        assert!(matches!(
            service_url(&f.key, &f.attempts, "forkert adgangssaetning", &SystemClock),
            Err(Error::WrongPassphrase)
        ));
        let counted: Attempts = serde_json::from_slice(&fs::read(&f.attempts).unwrap()).unwrap();
        assert_eq!(
            counted.failures, 1,
            "a wrong passphrase counts as a failed attempt"
        );
        // The address edited in the key file itself: the seal no longer matches.
        let text = fs::read_to_string(&f.key).unwrap();
        fs::write(
            &f.key,
            text.replace("feltkontor.aarhus.dk", "evil.example.dk."),
        )
        .unwrap();
        assert!(service_url(&f.key, &f.attempts, PASS, &SystemClock).is_err());
    }

    #[test]
    fn delays_double_after_the_free_attempts_and_are_capped() {
        assert_eq!(
            (0..=3).map(delay_after).collect::<Vec<_>>(),
            vec![0, 0, 0, 1]
        );
        assert_eq!(delay_after(4), 2);
        assert_eq!(delay_after(8), 32);
        assert_eq!(delay_after(40), MAX_DELAY_SECS);
    }
}
