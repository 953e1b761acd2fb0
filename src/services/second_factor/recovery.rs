//! Recovery codes: ten random codes of 50 bits each (`xxxxx-xxxxx` in Crockford's base32),
//! shown once and stored as HMAC-SHA-256 under a pepper derived from the master secret.
//!
//! A keyed hash rather than argon2: each code carries 50 random bits, not a person's
//! password, so slow hashing would add little, while the key (which never reaches the
//! database) leaves a stolen copy of the table nothing to guess against offline. Online
//! guessing meets the sign-in throttle.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secrets::fill_random;

/// How many codes an account gets at once.
pub const COUNT: usize = 10;
/// Characters per code (5 bits each).
const LEN: usize = 10;
/// Crockford's base32 in lower case: no i, l, o or u to confuse.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Hashes recovery codes with the pepper.
#[derive(Clone)]
pub struct RecoveryHasher {
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for RecoveryHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryHasher(…)")
    }
}

impl RecoveryHasher {
    pub fn new(pepper: &[u8; 32]) -> Self {
        Self { keyed: Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC accepts any key length") }
    }

    /// The stored hash of a normalized code (see [`normalize`]).
    pub fn hash(&self, normalized: &str) -> [u8; 32] {
        let mut mac = self.keyed.clone();
        mac.update(normalized.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// [`COUNT`] fresh codes as they are shown (`xxxxx-xxxxx`).
pub fn generate() -> Vec<String> {
    (0..COUNT)
        .map(|_| {
            let mut bytes = [0u8; LEN];
            fill_random(&mut bytes);
            // 256 is a multiple of 32: masking keeps every character equally likely.
            let chars: String = bytes.iter().map(|b| ALPHABET[usize::from(b & 31)] as char).collect();
            format!("{}-{}", &chars[..LEN / 2], &chars[LEN / 2..])
        })
        .collect()
}

/// A typed code in its stored form: lower case, without dashes or spaces, with the letters
/// Crockford's alphabet reads as digits (o → 0, i and l → 1); `None` if it cannot be a code.
pub fn normalize(input: &str) -> Option<String> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        })
        .collect();
    (code.len() == LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_distinct_and_normalize_to_themselves() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let mut normalized: Vec<String> = codes.iter().map(|c| normalize(c).expect("a valid code")).collect();
        normalized.sort();
        normalized.dedup();
        assert_eq!(normalized.len(), COUNT);
        assert!(codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
    }

    #[test]
    fn typing_variants_of_a_code_hash_alike() {
        let hasher = RecoveryHasher::new(&[3u8; 32]);
        let stored = hasher.hash(&normalize("ab0c1-defgh").unwrap());
        for typed in ["AB0C1-DEFGH", "abOcl defgh", " ab0c1defgh "] {
            assert_eq!(hasher.hash(&normalize(typed).unwrap()), stored, "{typed}");
        }
        assert_ne!(RecoveryHasher::new(&[4u8; 32]).hash("ab0c1defgh"), stored);
        for bad in ["ab0c1-defg", "ab0c1-defghj", "ab0c1-defg!", "123456"] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }
}
