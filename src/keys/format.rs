//! The key format: `kw_<env>_<id>_<secret><checksum>`.
//!
//! - `env` is `live` or `test`;
//! - `id` is the key's public identifier, 8 base62 characters (it stays the same when the
//!   key is re-keyed);
//! - `secret` is 32 bytes from the operating system's RNG, written as exactly 43 base62
//!   characters;
//! - `checksum` is CRC32 over everything before it, as 6 base62 characters, so typos and
//!   look-alikes are rejected offline, before any database work.
//!
//! The regex for secret scanners (see README): `\bkw_(live|test)_[0-9A-Za-z]{8}_[0-9A-Za-z]{49}\b`.

use std::fmt;

use crate::secrets::fill_random;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const PUBLIC_ID_LEN: usize = 8;
pub const SECRET_BYTES: usize = 32;
/// ⌈256 / log2(62)⌉: enough base62 digits for any 32-byte number.
pub const SECRET_LEN: usize = 43;
pub const CHECKSUM_LEN: usize = 6;
/// `kw_live_` + id + `_` + secret + checksum.
pub const KEY_LEN: usize = 3 + 5 + PUBLIC_ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
/// The regular expression matching every Keyward key (documented in the README).
pub const REGEX: &str = r"\bkw_(live|test)_[0-9A-Za-z]{8}_[0-9A-Za-z]{49}\b";

/// Whether a key is for production (`live`) or for testing integrations (`test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub fn code(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "live" => Some(Environment::Live),
            "test" => Some(Environment::Test),
            _ => None,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A freshly generated key. The full string is shown to its creator once and then dropped;
/// only its keyed hash is stored.
pub struct GeneratedKey {
    pub environment: Environment,
    pub public_id: String,
    full: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeneratedKey({}, {}, …)", self.environment, self.public_id)
    }
}

impl GeneratedKey {
    /// A new key with a new random public id.
    pub fn generate(environment: Environment) -> Self {
        Self::with_public_id(environment, &random_public_id())
    }

    /// A new secret for an existing public id (re-key).
    pub fn with_public_id(environment: Environment, public_id: &str) -> Self {
        Self { environment, public_id: public_id.to_string(), full: build(environment.code(), public_id) }
    }

    /// The whole key, to show once.
    pub fn expose(&self) -> &str {
        &self.full
    }

    /// The last four characters, kept for display (`kw_live_7Hq2xK9d…T4pz`).
    pub fn last4(&self) -> String {
        self.full[self.full.len() - 4..].to_string()
    }
}

/// A string that has the key format and a valid checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedKey<'a> {
    pub environment: Environment,
    pub public_id: &'a str,
    pub full: &'a str,
}

impl<'a> ParsedKey<'a> {
    /// Parses `candidate`; `None` for anything that is not a well-formed key with a valid
    /// checksum. No allocation, no database: this runs on every verification.
    pub fn parse(candidate: &'a str) -> Option<Self> {
        let (marker, public_id) = split(candidate)?;
        let environment = Environment::from_code(marker)?;
        Some(Self { environment, public_id, full: candidate })
    }
}

/// The marker of management tokens where keys have their environment: `kw_mgmt_…`. Tokens
/// are built exactly like keys (same length, alphabet, checksum, keyed hash) so that they get
/// the same offline checks; the marker lets secret scanners and leak reports tell a token
/// from a key, and makes the verification API refuse a token before any database work.
pub const TOKEN_MARKER: &str = "mgmt";
/// The regular expression matching every management token (documented in the README).
pub const TOKEN_REGEX: &str = r"\bkw_mgmt_[0-9A-Za-z]{8}_[0-9A-Za-z]{49}\b";

/// A freshly generated management token, shown to its creator once.
pub struct GeneratedToken {
    pub public_id: String,
    full: String,
}

impl fmt::Debug for GeneratedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GeneratedToken({}, …)", self.public_id)
    }
}

impl GeneratedToken {
    pub fn generate() -> Self {
        let public_id = random_public_id();
        let full = build(TOKEN_MARKER, &public_id);
        Self { public_id, full }
    }

    /// The whole token, to show once.
    pub fn expose(&self) -> &str {
        &self.full
    }

    pub fn last4(&self) -> String {
        self.full[self.full.len() - 4..].to_string()
    }
}

/// A string that has the management token format and a valid checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedToken<'a> {
    pub public_id: &'a str,
    pub full: &'a str,
}

impl<'a> ParsedToken<'a> {
    /// Parses `candidate`; `None` for anything but a well-formed token (keys included).
    pub fn parse(candidate: &'a str) -> Option<Self> {
        let (marker, public_id) = split(candidate)?;
        (marker == TOKEN_MARKER).then_some(Self { public_id, full: candidate })
    }
}

/// `kw_<marker>_<public id>_` followed by a new secret and the checksum.
fn build(marker: &str, public_id: &str) -> String {
    let mut secret = [0u8; SECRET_BYTES];
    fill_random(&mut secret);
    let mut full = format!("kw_{marker}_{public_id}_");
    full.push_str(&base62_fixed(&secret, SECRET_LEN));
    let checksum = checksum(&full);
    full.push_str(&checksum);
    full
}

/// The marker (environment) and public id of a string of the format with a valid checksum.
fn split(candidate: &str) -> Option<(&str, &str)> {
    if candidate.len() != KEY_LEN || !candidate.is_ascii() {
        return None;
    }
    let rest = candidate.strip_prefix("kw_")?;
    let marker = &rest[..4];
    let rest = rest[4..].strip_prefix('_')?;
    let (public_id, rest) = rest.split_at(PUBLIC_ID_LEN);
    let body = rest.strip_prefix('_')?;
    if !marker.bytes().all(|b| b.is_ascii_lowercase())
        || !public_id.bytes().chain(body.bytes()).all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (signed, sum) = candidate.split_at(candidate.len() - CHECKSUM_LEN);
    if checksum(signed) != sum {
        return None;
    }
    Some((marker, public_id))
}

/// A random public identifier (8 base62 characters, about 47 bits).
pub fn random_public_id() -> String {
    let mut bytes = [0u8; 8];
    fill_random(&mut bytes);
    base62_fixed(&bytes, PUBLIC_ID_LEN)
}

/// Whether `public_id` has the form of a public identifier.
pub fn is_public_id(public_id: &str) -> bool {
    public_id.len() == PUBLIC_ID_LEN && public_id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// CRC32 of `text` as 6 base62 characters.
fn checksum(text: &str) -> String {
    base62_fixed(&crc32fast::hash(text.as_bytes()).to_be_bytes(), CHECKSUM_LEN)
}

/// `bytes` as a big-endian number in base62, left-padded (or cut) to exactly `len` digits.
/// Written here rather than taken from a crate because the base62 crates either stop at
/// u128 or produce variable-length output, and a fixed width is what makes the format regular.
fn base62_fixed(bytes: &[u8], len: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = vec![b'0'; len];
    for digit in digits.iter_mut().rev() {
        // One long division of `number` by 62; the remainder is the next digit.
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let acc = (remainder << 8) | u32::from(*byte);
            *byte = (acc / 62) as u8;
            remainder = acc % 62;
        }
        *digit = ALPHABET[remainder as usize];
    }
    String::from_utf8(digits).expect("the alphabet is ASCII")
}

/// Whether `text` contains something that looks like a key or a secret: a Keyward key
/// prefix, or a long unbroken run of letters and digits that reads like random characters (a
/// token of some other system). Key names and comments are shown in tables and logs, so
/// secrets must not hide there.
///
/// A run of 32 or more counts when it holds a digit or at least 16 different characters:
/// random tokens (hex, base62, base64) all but always do, while a long word, or a key held
/// down, does not.
pub fn looks_like_secret(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if lower.contains("kw_live_") || lower.contains("kw_test_") || lower.contains("kw_mgmt_") {
        return true;
    }
    text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|run| run.len() >= 32).any(|run| {
        let mut seen = [false; 128];
        run.bytes().for_each(|b| seen[usize::from(b)] = true);
        run.bytes().any(|b| b.is_ascii_digit()) || seen.iter().filter(|&&s| s).count() >= 16
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = GeneratedKey::generate(Environment::Live);
        let text = key.expose();
        assert_eq!(text.len(), KEY_LEN);
        assert!(text.starts_with(&format!("kw_live_{}_", key.public_id)));
        assert!(is_public_id(&key.public_id));
        assert!(text[17..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(key.last4(), &text[text.len() - 4..]);
    }

    #[test]
    fn generated_keys_parse_back() {
        for env in [Environment::Live, Environment::Test] {
            let key = GeneratedKey::generate(env);
            let parsed = ParsedKey::parse(key.expose()).expect("a generated key parses");
            assert_eq!(parsed.environment, env);
            assert_eq!(parsed.public_id, key.public_id);
        }
    }

    #[test]
    fn keys_are_unique_and_rekeys_keep_the_public_id() {
        let a = GeneratedKey::generate(Environment::Live);
        let b = GeneratedKey::with_public_id(Environment::Live, &a.public_id);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.public_id, b.public_id);
    }

    #[test]
    fn look_alikes_are_rejected() {
        let key = GeneratedKey::generate(Environment::Live);
        let good = key.expose().to_string();
        let mut flipped = good.clone().into_bytes();
        let i = 30;
        flipped[i] = if flipped[i] == b'a' { b'b' } else { b'a' };
        let cases = vec![
            String::from_utf8(flipped).unwrap(),      // one character changed
            good.replacen("kw_live_", "kw_prod_", 1), // unknown environment
            good.replacen("kw_live_", "KW_live_", 1), // wrong prefix case
            format!("{good}x"),                       // too long
            good[..good.len() - 1].to_string(),       // too short
            good.replacen('_', "-", 1),               // wrong separator
            format!("{}é", &good[..good.len() - 2]),  // non-ASCII
            String::new(),
            "kw_live_".to_string(),
        ];
        for case in cases {
            assert!(ParsedKey::parse(&case).is_none(), "{case:?} must be rejected");
        }
        // A look-alike built to the format with a made-up checksum.
        let fake = format!("kw_live_{}_{}", "ABCDEFGH", "a".repeat(49));
        assert!(ParsedKey::parse(&fake).is_none());
    }

    #[test]
    fn the_checksum_covers_the_environment_and_the_id() {
        let key = GeneratedKey::generate(Environment::Live);
        let as_test = key.expose().replacen("kw_live_", "kw_test_", 1);
        assert!(ParsedKey::parse(&as_test).is_none());
    }

    #[test]
    fn base62_is_fixed_width_and_correct() {
        assert_eq!(base62_fixed(&[0], 3), "000");
        assert_eq!(base62_fixed(&[61], 2), "0z");
        assert_eq!(base62_fixed(&[0, 62], 3), "010");
        assert_eq!(base62_fixed(&[0xff; 32], SECRET_LEN).len(), SECRET_LEN);
        assert_ne!(&base62_fixed(&[0xff; 32], SECRET_LEN)[..1], "0", "43 digits are needed for 256 bits");
    }

    #[test]
    fn the_regex_in_the_readme_matches_the_format() {
        // Hand-checked equivalent of REGEX: the character classes and lengths above.
        assert_eq!(REGEX, r"\bkw_(live|test)_[0-9A-Za-z]{8}_[0-9A-Za-z]{49}\b");
        assert_eq!(SECRET_LEN + CHECKSUM_LEN, 49);
    }

    #[test]
    fn tokens_and_keys_never_parse_as_each_other() {
        let token = GeneratedToken::generate();
        assert_eq!(token.expose().len(), KEY_LEN);
        assert!(token.expose().starts_with(&format!("kw_mgmt_{}_", token.public_id)));
        assert_eq!(ParsedToken::parse(token.expose()).map(|t| t.public_id), Some(token.public_id.as_str()));
        assert!(ParsedKey::parse(token.expose()).is_none(), "a token is no key");
        let key = GeneratedKey::generate(Environment::Live);
        assert!(ParsedToken::parse(key.expose()).is_none(), "a key is no token");
        let relabelled = token.expose().replacen("kw_mgmt_", "kw_live_", 1);
        assert!(ParsedKey::parse(&relabelled).is_none(), "the checksum covers the marker");
        assert!(looks_like_secret(&format!("see {}", token.expose())));
    }

    #[test]
    fn secrets_in_names_are_recognized() {
        let key = GeneratedKey::generate(Environment::Test);
        assert!(looks_like_secret(&format!("prod {}", key.expose())));
        assert!(looks_like_secret("see KW_LIVE_abc"));
        assert!(looks_like_secret("token ghp_0123456789abcdefghijABCDEFGHIJ0123"));
        assert!(!looks_like_secret("Production integration (dispatch) 2026"));
        // Random characters, with or without digits, and hex.
        assert!(looks_like_secret("sk_abcdefghijklmnopqrstuvwxyzABCDEFGH"));
        assert!(looks_like_secret("note 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"));
        // Not random: a key held down, a long word.
        assert!(!looks_like_secret(&"N".repeat(100)));
        assert!(!looks_like_secret("pneumonoultramicroscopicsilicovolcanoconiosis monitor"));
    }
}
