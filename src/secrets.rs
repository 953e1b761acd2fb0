//! The master secret and the keys derived from it (HKDF-SHA-256): the pepper of the API-key
//! HMAC, the key that protects session cookies, and the second factor's keys (the one that
//! seals TOTP secrets at rest and the recovery-code pepper). Deriving them means operators keep one
//! secret, and a leak of one derived key says nothing about the other.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hkdf::Hkdf;
use rand::{TryRng, rngs::SysRng};
use sha2::Sha256;

/// At least 32 bytes of key material, from `KEYWARD_SECRET` or generated.
#[derive(Clone)]
pub struct MasterSecret(Vec<u8>);

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret(…)")
    }
}

impl MasterSecret {
    pub const MIN_LEN: usize = 32;

    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text.trim())
            .map_err(|_| "KEYWARD_SECRET must be base64 (e.g. `head -c 32 /dev/urandom | base64`)".to_string())?;
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.len() < Self::MIN_LEN {
            return Err(format!("KEYWARD_SECRET must decode to at least 32 bytes; it has {}", bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// 32 fresh bytes from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; Self::MIN_LEN];
        fill_random(&mut bytes);
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Derives every application key from this secret.
    pub fn derive(&self) -> DerivedKeys {
        let hkdf = Hkdf::<Sha256>::new(Some(b"keyward"), &self.0);
        let mut key_pepper = [0u8; 32];
        let mut cookie_key = [0u8; 64];
        hkdf.expand(b"keyward api-key pepper v1", &mut key_pepper)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        hkdf.expand(b"keyward cookie key v1", &mut cookie_key).expect("64 bytes is a valid HKDF-SHA-256 output length");
        let mut totp_seal_key = [0u8; 32];
        let mut recovery_pepper = [0u8; 32];
        hkdf.expand(b"keyward totp seal key v1", &mut totp_seal_key)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        hkdf.expand(b"keyward recovery-code pepper v1", &mut recovery_pepper)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        let mut passkey_handle_key = [0u8; 32];
        hkdf.expand(b"keyward passkey user handle v1", &mut passkey_handle_key)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        let mut webhook_seal_key = [0u8; 32];
        hkdf.expand(b"keyward webhook secret seal key v1", &mut webhook_seal_key)
            .expect("32 bytes is a valid HKDF-SHA-256 output length");
        DerivedKeys { key_pepper, cookie_key, totp_seal_key, recovery_pepper, passkey_handle_key, webhook_seal_key }
    }
}

/// Keys derived from the master secret.
#[derive(Clone)]
pub struct DerivedKeys {
    pub key_pepper: [u8; 32],
    pub cookie_key: [u8; 64],
    /// AES-256-GCM key that seals TOTP secrets in the database.
    pub totp_seal_key: [u8; 32],
    /// HMAC-SHA-256 key of the stored recovery-code hashes.
    pub recovery_pepper: [u8; 32],
    /// HMAC-SHA-256 key of the opaque account handle passkeys carry (WebAuthn's user id).
    pub passkey_handle_key: [u8; 32],
    /// AES-256-GCM key that seals webhook signing secrets in the database (they must be
    /// readable to sign, unlike hashed secrets).
    pub webhook_seal_key: [u8; 32],
}

impl std::fmt::Debug for DerivedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DerivedKeys(…)")
    }
}

/// Fills `buf` from the operating system's RNG. A failing OS RNG leaves no safe way to go
/// on, so it aborts the request (or start-up) rather than handing out weak secrets.
pub fn fill_random(buf: &mut [u8]) {
    SysRng.try_fill_bytes(buf).expect("the operating system's random number generator failed");
}

/// A random token of `bytes` bytes, URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fill_random(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_keys_are_stable_and_distinct() {
        let secret = MasterSecret::from_bytes(vec![1u8; 32]).unwrap();
        let a = secret.derive();
        let b = secret.derive();
        assert_eq!(a.key_pepper, b.key_pepper);
        assert_ne!(a.key_pepper[..], a.cookie_key[..32]);
        assert_ne!(a.key_pepper, a.totp_seal_key);
        assert_ne!(a.totp_seal_key, a.recovery_pepper);
        assert_ne!(a.totp_seal_key, a.webhook_seal_key);
        let other = MasterSecret::from_bytes(vec![2u8; 32]).unwrap().derive();
        assert_ne!(a.key_pepper, other.key_pepper);
    }

    #[test]
    fn generated_secrets_differ() {
        assert_ne!(MasterSecret::generate().as_bytes(), MasterSecret::generate().as_bytes());
    }
}
