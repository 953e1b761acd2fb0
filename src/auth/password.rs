//! Password hashing with argon2id. Hashing takes tens of milliseconds of CPU, so callers
//! run it on the blocking pool (`hash_blocking`, `verify_blocking`), never on the executor.

use std::sync::LazyLock;

use argon2::{
    Argon2,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

use crate::{domain::NewPassword, error::AppError};

/// Hash compared against when the account does not exist or has no password, so that the
/// response time does not reveal which emails have accounts.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_now(&NewPassword::parse(&crate::secrets::random_token(24)).expect("random tokens are long enough"))
});

/// Hashes synchronously (commands and seeding run outside the async executor).
pub fn hash_now(password: &NewPassword) -> String {
    Argon2::default()
        .hash_password(password.expose().as_bytes())
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// Verifies synchronously; `None` (no such account, or no password set) burns the same time
/// on the dummy hash and fails.
pub fn verify_now(stored: Option<&str>, candidate: &str) -> bool {
    let (hash, real) = match stored {
        Some(hash) => (hash, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = Argon2::default().verify_password(candidate.as_bytes(), &parsed).is_ok();
    ok && real
}

/// [`hash_now`] on the blocking pool.
pub async fn hash_blocking(password: NewPassword) -> Result<String, AppError> {
    actix_web::web::block(move || hash_now(&password))
        .await
        .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))
}

/// [`verify_now`] on the blocking pool.
pub async fn verify_blocking(stored: Option<String>, candidate: String) -> Result<bool, AppError> {
    actix_web::web::block(move || verify_now(stored.as_deref(), &candidate))
        .await
        .map_err(|e| AppError::Internal(format!("password verification failed: {e}")))
}

/// Warms the dummy hash so the first failed login is not measurably slower.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_now(&NewPassword::parse("correct horse battery").unwrap());
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_now(Some(&hash), "correct horse battery"));
        assert!(!verify_now(Some(&hash), "wrong horse battery"));
    }

    #[test]
    fn missing_accounts_never_verify() {
        assert!(!verify_now(None, "anything at all"));
        assert!(!verify_now(Some("not a phc string"), "anything at all"));
    }
}
