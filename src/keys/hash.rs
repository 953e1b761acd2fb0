//! The keyed hash stored instead of a key: HMAC-SHA-256 with the server-side pepper (derived
//! from the master secret). A stolen table cannot be checked against guesses without the
//! pepper, and a fast HMAC (not a password hash) keeps verification cheap.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Hashes and checks keys with the pepper.
#[derive(Clone)]
pub struct KeyHasher {
    /// HMAC state already keyed with the pepper: cloning it saves hashing the key pads on
    /// every verification.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(…)")
    }
}

impl KeyHasher {
    pub fn new(pepper: [u8; 32]) -> Self {
        Self { keyed: Hmac::<Sha256>::new_from_slice(&pepper).expect("HMAC accepts any key length") }
    }

    /// HMAC-SHA-256 of the whole key string.
    pub fn hash(&self, key: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(key.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `key` hashes to `stored`, compared in constant time.
    pub fn matches(&self, key: &str, stored: &[u8]) -> bool {
        bool::from(self.hash(key).as_slice().ct_eq(stored))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_the_pepper_and_the_key() {
        let a = KeyHasher::new([1; 32]);
        let b = KeyHasher::new([2; 32]);
        assert_eq!(a.hash("k"), a.hash("k"));
        assert_ne!(a.hash("k"), b.hash("k"));
        assert_ne!(a.hash("k"), a.hash("l"));
        assert!(a.matches("k", &a.hash("k")));
        assert!(!a.matches("k", &b.hash("k")));
        assert!(!a.matches("k", &[0u8; 31]));
    }
}
