//! The database key and how it is wrapped.
//!
//! The SQLCipher key is 32 random bytes, never derived from anything. It is stored only
//! wrapped (XChaCha20-Poly1305) in a small key file next to the database. The wrapping key is
//! built from *factors*: today the worker's passphrase through Argon2id; the central service's
//! lease secret will be a second factor, combined with the first through BLAKE2b keyed hashing
//! (`kek = BLAKE2b-256(key = argon2(passphrase), lease_secret)`), so that a key file records which
//! factors it needs and an old file still opens with its own list. The header (format, ids, KDF
//! parameters, factors) is authenticated as associated data: editing any of it makes unwrapping fail.
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
    key: &[u8; 32],
) -> Result<()> {
    let mut rng = rand::rngs::OsRng;
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    header.salt = hex::encode(salt);
    let kek = derive_kek(passphrase, &salt, header.kdf)?;
    let wrapped = XChaCha20Poly1305::new(kek.as_ref().into())
        .encrypt(
            XNonce::from_slice(&nonce),
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

/// Makes a new random database key, writes it wrapped under `passphrase` to `key_path`.
pub fn create(
    key_path: &Path,
    passphrase: &str,
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
        factors: vec![Factor::Passphrase],
    };
    wrap_to_file(key_path, header, passphrase, &key)?;
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

/// Unwraps the database key with `passphrase`, enforcing the delay after repeated failures.
pub fn unwrap(
    key_path: &Path,
    attempts_path: &Path,
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
    let salt = hex::decode(&file.header.salt).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    let nonce = hex::decode(&file.nonce).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    let wrapped =
        hex::decode(&file.wrapped_key).map_err(|e| Error::KeyFileDamaged(e.to_string()))?;
    if nonce.len() != 24 {
        return Err(Error::KeyFileDamaged("bad nonce length".into()));
    }
    let kek = derive_kek(passphrase, &salt, file.header.kdf)?;
    let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
    match cipher.decrypt(
        XNonce::from_slice(&nonce),
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

/// Re-wraps the same database key under a new passphrase (the database is not re-encrypted).
pub fn rewrap(key_path: &Path, unwrapped: &Unwrapped, new_passphrase: &str) -> Result<()> {
    check_passphrase_strength(new_passphrase)?;
    let old = read_key_file(key_path)?;
    wrap_to_file(key_path, old.header, new_passphrase, &unwrapped.key)
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
