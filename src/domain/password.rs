//! A new password, checked against the length rules before it is hashed.

/// A password that satisfies the policy: 10 to 256 characters.
#[derive(Clone)]
pub struct NewPassword(String);

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

impl NewPassword {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_CHARS: usize = 256;

    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let count = input.chars().count();
        if count < Self::MIN_CHARS {
            return Err("Use at least 10 characters.");
        }
        if count > Self::MAX_CHARS {
            return Err("Use at most 256 characters.");
        }
        if input.trim().is_empty() {
            return Err("A password cannot be only spaces.");
        }
        Ok(Self(input.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::NewPassword;

    #[test]
    fn short_and_blank_passwords_are_refused() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("          ").is_err());
        assert!(NewPassword::parse(&"x".repeat(257)).is_err());
        assert!(NewPassword::parse("correct horse").is_ok());
    }
}
