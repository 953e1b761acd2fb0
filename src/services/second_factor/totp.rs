//! One-time codes (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, as every authenticator
//! app expects): new secrets, checking a code against the time steps around now, sealing the
//! secret for the database (AES-256-GCM bound to its account), and the `otpauth://` URI and
//! its QR code that an app scans.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Builder, Totp};

use crate::{db::models::second_factor::FactorOwner, error::AppError, secrets::fill_random};

/// Seconds per time step (RFC 6238's default; what apps assume without being told).
pub const STEP_SECS: i64 = 30;
/// Steps before and after the current one that are accepted (clock drift, typing time).
pub const SKEW_STEPS: i64 = 1;
/// RFC 4226 recommends 160-bit secrets.
pub const SECRET_BYTES: usize = 20;
/// The issuer apps show next to the account.
pub const ISSUER: &str = "Keyward";

const NONCE_BYTES: usize = 12;

/// A fresh secret from the operating system's RNG.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    fill_random(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, AppError> {
    // An email never contains ':' (the URI's label separator), but an account name that did
    // must not become a 500 with the secret in it.
    let account = account.replace(':', "");
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(SKEW_STEPS as u16)
        .with_step_duration(STEP_SECS as u64)
        .with_secret(secret.to_vec())
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| AppError::Internal(format!("TOTP parameters: {e}")))
}

/// The code of `secret` at unix time `at` (for tests and the operator's own checks).
pub fn code_at(secret: &[u8], at: i64) -> Result<String, AppError> {
    Ok(totp(secret, "")?.generate(at.max(0) as u64).to_string())
}

/// A typed code as six ASCII digits (spaces people type between groups removed).
pub fn parse_code(input: &str) -> Option<String> {
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// How a code compares with the secret around `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMatch {
    /// Correct, for this time step, which had not been used yet.
    Fresh(i64),
    /// Correct, but for a step already used (a replay, or a second sign-in within the step).
    Replayed,
    Wrong,
}

/// Compares `code` (six digits) with the codes of the steps within ±[`SKEW_STEPS`] of
/// `now` (unix seconds). Every step is compared, in constant time, whatever matches.
pub fn check(secret: &[u8], code: &str, now: i64, last_used_step: Option<i64>) -> Result<CodeMatch, AppError> {
    let totp = totp(secret, "")?;
    let current = now.div_euclid(STEP_SECS);
    let mut fresh = None;
    let mut replayed = false;
    for step in current - SKEW_STEPS..=current + SKEW_STEPS {
        let expected = totp.generate((step.max(0) * STEP_SECS) as u64).to_string();
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            if last_used_step.is_some_and(|used| step <= used) {
                replayed = true;
            } else if fresh.is_none() {
                fresh = Some(step);
            }
        }
    }
    Ok(match (fresh, replayed) {
        (Some(step), _) => CodeMatch::Fresh(step),
        (None, true) => CodeMatch::Replayed,
        (None, false) => CodeMatch::Wrong,
    })
}

/// What an authenticator app needs to be set up: the `otpauth://` URI (issuer "Keyward",
/// the account's email), that URI as a QR code image, and the secret typed by hand.
pub struct Provisioning {
    /// The secret in base32, in groups of four for reading aloud or typing.
    pub secret_grouped: String,
    pub uri: String,
    /// `data:image/svg+xml;base64,…`: allowed by the page's CSP (`img-src 'self' data:`),
    /// and no markup of ours is inserted into the page unescaped.
    pub qr_data_uri: String,
}

impl std::fmt::Debug for Provisioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Provisioning(…)")
    }
}

pub fn provisioning(secret: &[u8], account: &str) -> Result<Provisioning, AppError> {
    let totp = totp(secret, account)?;
    let uri = totp.to_url().map_err(|e| AppError::Internal(format!("otpauth URI: {e}")))?;
    let base32 = totp.secret().to_base32();
    let secret_grouped = base32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join(" ");
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| AppError::Internal(format!("QR code: {e}")))?;
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build();
    let qr_data_uri = format!("data:image/svg+xml;base64,{}", BASE64.encode(svg));
    Ok(Provisioning { secret_grouped, uri, qr_data_uri })
}

/// Seals and opens TOTP secrets for the database with a key derived from the master secret.
#[derive(Clone)]
pub struct SecretSeal {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretSeal(…)")
    }
}

impl SecretSeal {
    pub fn new(key: &[u8; 32]) -> Self {
        Self { cipher: Aes256Gcm::new(key.into()) }
    }

    /// `nonce || ciphertext || tag`; the account is authenticated data, so a sealed secret
    /// moved to another account's row does not open.
    pub fn seal(&self, owner: FactorOwner, secret: &[u8]) -> Result<Vec<u8>, AppError> {
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce);
        let label = owner.label();
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad: label.as_bytes() })
            .map_err(|_| AppError::Internal("cannot seal a TOTP secret".into()))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, owner: FactorOwner, sealed: &[u8]) -> Result<Vec<u8>, AppError> {
        if sealed.len() <= NONCE_BYTES {
            return Err(AppError::Internal("a sealed TOTP secret is truncated".into()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let label = owner.label();
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: label.as_bytes() })
            .map_err(|_| AppError::Internal(format!("the TOTP secret of {} does not open", owner.label())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B (SHA-1, 8 digits there; the last six digits are ours).
    #[test]
    fn codes_follow_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in
            [(59, "287082"), (1_111_111_109, "081804"), (1_234_567_890, "005924"), (2_000_000_000, "279037")]
        {
            assert_eq!(code_at(secret, time).unwrap(), code, "at {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_around_now_and_once() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let step = now / STEP_SECS;
        for offset in [-1, 0, 1] {
            let code = code_at(&secret, now + offset * STEP_SECS).unwrap();
            assert_eq!(check(&secret, &code, now, None).unwrap(), CodeMatch::Fresh(step + offset));
            assert_eq!(check(&secret, &code, now, Some(step + offset)).unwrap(), CodeMatch::Replayed);
        }
        let late = code_at(&secret, now - 2 * STEP_SECS).unwrap();
        assert_ne!(check(&secret, &late, now, None).unwrap(), CodeMatch::Fresh(step - 2));
    }

    #[test]
    fn sealed_secrets_open_only_for_their_account() {
        let seal = SecretSeal::new(&[7u8; 32]);
        let secret = new_secret();
        let sealed = seal.seal(FactorOwner::User(1), &secret).unwrap();
        assert_eq!(seal.open(FactorOwner::User(1), &sealed).unwrap(), secret);
        assert!(seal.open(FactorOwner::Staff(1), &sealed).is_err());
        assert!(SecretSeal::new(&[8u8; 32]).open(FactorOwner::User(1), &sealed).is_err());
    }

    #[test]
    fn the_uri_names_keyward_and_the_account() {
        let p = provisioning(&[1u8; 20], "ada@acme.test").unwrap();
        assert!(p.uri.starts_with("otpauth://totp/Keyward:ada%40acme.test?"), "{}", p.uri);
        assert!(p.uri.contains("issuer=Keyward"));
        assert!(p.qr_data_uri.starts_with("data:image/svg+xml;base64,"));
        assert_eq!(p.secret_grouped.replace(' ', ""), totp_rs::Secret::from(vec![1u8; 20]).to_base32());
    }

    #[test]
    fn only_six_digits_are_a_code() {
        assert_eq!(parse_code(" 123 456 ").as_deref(), Some("123456"));
        for bad in ["12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(parse_code(bad), None, "{bad}");
        }
    }
}
