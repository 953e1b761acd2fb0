//! Email addresses, normalized to lower case (logins are case-insensitive).

use std::fmt;

/// A syntactically plausible email address in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let email = input.trim().to_lowercase();
        if email.is_empty() {
            return Err("Enter an email address.");
        }
        if email.chars().count() > 254 {
            return Err("That email address is too long.");
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return Err("Enter an email address like name@example.com.");
        };
        let valid_domain = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.chars().all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        if local.is_empty() || local.contains(char::is_whitespace) || local.contains('@') || !valid_domain {
            return Err("Enter an email address like name@example.com.");
        }
        if email.chars().any(char::is_control) {
            return Err("Enter an email address like name@example.com.");
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(Email::parse("  Alice@Example.COM ").unwrap().as_str(), "alice@example.com");
    }

    #[test]
    fn implausible_emails_are_refused() {
        for bad in
            ["", "alice", "alice@", "@example.com", "a b@example.com", "alice@example", "a@b@c.com", "alice@.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
