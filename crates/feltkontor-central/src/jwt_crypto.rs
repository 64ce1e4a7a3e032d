//! The cryptography under `jsonwebtoken`: HMAC (HS256, and HS384/HS512 so that a token signed
//! with them is read and refused as the wrong algorithm rather than not understood) by ring,
//! the library the service's and the app's TLS already use. jsonwebtoken's own backends bring
//! either RustCrypto's RSA, elliptic-curve and Edwards crates (a second version of a dozen
//! crates already in the lock, and RSA, which the service never uses) or aws-lc; the service
//! signs only HS256 tokens with a secret of its own. Every other algorithm is refused.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes ring's HMAC jsonwebtoken's cryptography in this process (once; later calls do nothing).
pub fn install() {
    let _ = PROVIDER.install_default();
}

struct Hmac {
    algorithm: Algorithm,
    key: ring::hmac::Key,
}

fn hmac(algorithm: &Algorithm, secret: &[u8]) -> Result<Hmac> {
    let ring_algorithm = match algorithm {
        Algorithm::HS256 => ring::hmac::HMAC_SHA256,
        Algorithm::HS384 => ring::hmac::HMAC_SHA384,
        Algorithm::HS512 => ring::hmac::HMAC_SHA512,
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Hmac {
        algorithm: *algorithm,
        key: ring::hmac::Key::new(ring_algorithm, secret),
    })
}

fn signer(algorithm: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(hmac(algorithm, key.as_bytes())?))
}

fn verifier(algorithm: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    if key.family() != AlgorithmFamily::Hmac {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(hmac(algorithm, key.try_get_as_bytes()?)?))
}

impl Signer<Vec<u8>> for Hmac {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        Ok(ring::hmac::sign(&self.key, msg).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hmac {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        // Constant-time comparison.
        ring::hmac::verify(&self.key, msg, signature).map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Hmac {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl JwtVerifier for Hmac {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, encode, Header, Validation};

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Claims {
        sub: String,
        exp: u64,
    }

    #[test]
    fn hs256_round_trips_and_nothing_else_passes() {
        install();
        let secret = b"a secret of the service, 32 bytes";
        let claims = Claims {
            sub: "worker".into(),
            exp: jsonwebtoken::get_current_timestamp() + 600,
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap();
        let hs256 = Validation::new(Algorithm::HS256);
        let read = decode::<Claims>(&token, &DecodingKey::from_secret(secret).unwrap(), &hs256);
        assert_eq!(read.unwrap().claims, claims);
        // Another key.
        let other = DecodingKey::from_secret(b"another secret").unwrap();
        assert!(decode::<Claims>(&token, &other, &hs256).is_err());
        // A flipped bit in the signature.
        let mut bad = token.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        let key = DecodingKey::from_secret(secret).unwrap();
        assert!(decode::<Claims>(&bad, &key, &hs256).is_err());
        // A token signed with HS512 is not an HS256 token.
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap();
        assert!(decode::<Claims>(&hs512, &key, &hs256).is_err());
        // No RSA, EC or EdDSA here.
        assert!(encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_secret(secret).unwrap()
        )
        .is_err());
    }
}
