//! The database key and how it is wrapped.
//!
//! The SQLCipher key is 32 random bytes, never derived from anything. It is stored only
//! wrapped (XChaCha20-Poly1305) in a small key file next to the database. The wrapping key is
//! built from *factors*: the worker's passphrase through Argon2id and, on a device connected to
//! the central service, the service's **lease** secret, combined through BLAKE2b keyed hashing
//! (`kek = BLAKE2b-256(key = argon2(passphrase), lease_secret)`). A key file records which
//! factors it needs, so an old file still opens with its own list. The header (format, ids, KDF
//! parameters, factors) is authenticated as associated data: editing any of it makes unwrapping fail.
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

pub const KEY_FILE_FORMAT: u32 = 1;
pub const MIN_PASSPHRASE_CHARS: usize = 10;
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
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyFile {
    #[serde(flatten)]
    header: Header,
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

/// The wrapping key from the factors the header names.
fn derive_wrapping_key(
    passphrase: &str,
    salt: &[u8],
    header: &Header,
    lease: Option<&Lease>,
) -> Result<Zeroizing<[u8; 32]>> {
    let kek = derive_kek(passphrase, salt, header.kdf)?;
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

fn cipher(kek: &[u8; 32]) -> Result<XChaCha20Poly1305> {
    XChaCha20Poly1305::new_from_slice(kek)
        .map_err(|_| Error::KeyFileDamaged("the wrapping key has the wrong length".into()))
}

fn aad(header: &Header) -> Vec<u8> {
    serde_json::to_vec(header).unwrap_or_default()
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

pub fn check_passphrase_strength(passphrase: &str) -> Result<()> {
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(Error::WeakPassphrase {
            min: MIN_PASSPHRASE_CHARS,
        });
    }
    Ok(())
}

/// Wraps `key` under `passphrase` with a fresh salt and nonce and writes the key file.
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
    let kek = derive_wrapping_key(passphrase, &salt, &header, lease)?;
    let wrapped = cipher(&kek)?
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: key,
                aad: &aad(&header),
            },
        )
        .map_err(|_| Error::KeyFileDamaged("could not wrap the key".into()))?;
    let file = KeyFile {
        header,
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
    lease: Option<&Lease>,
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
    };
    wrap_to_file(key_path, header, passphrase, lease, &key)?;
    Ok(Unwrapped {
        key,
        device_id,
        worker_id,
    })
}

fn read_key_file(key_path: &Path) -> Result<KeyFile> {
    let bytes = fs::read(key_path)?;
    let file: KeyFile =
        serde_json::from_slice(&bytes).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    if file.header.format > KEY_FILE_FORMAT {
        return Err(Error::KeyFileDamaged(format!(
            "unknown key file format {}",
            file.header.format
        )));
    }
    Ok(file)
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
    let mut attempts = read_attempts(attempts_path);
    let now_ms = clock.now_ms();
    let wait_until = attempts
        .last_failure_ms
        .saturating_add(delay_after(attempts.failures) * 1000);
    if now_ms < wait_until {
        return Err(Error::Throttled {
            retry_after_secs: (wait_until - now_ms).div_ceil(1000),
        });
    }
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
            aad: &aad(&file.header),
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
            }
            Ok(Unwrapped {
                key,
                device_id: file.header.device_id,
                worker_id: file.header.worker_id,
            })
        }
        Err(_) => {
            attempts.failures += 1;
            attempts.last_failure_ms = now_ms;
            let json = serde_json::to_vec(&attempts).map_err(|e| Error::Corrupt(e.to_string()))?;
            write_atomically(attempts_path, &json)?;
            tracing::warn!(failures = attempts.failures, "failed unlock attempt");
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
