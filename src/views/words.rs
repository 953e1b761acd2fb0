//! Counted nouns in the text people read: "1 key", "3 keys" — never "key(s)".

/// `n` and the noun, singular for one and with an "s" otherwise (every noun counted in
/// Keyward's text takes one).
pub fn counted(n: impl std::fmt::Display, singular: &str) -> String {
    let n = n.to_string();
    if n == "1" { format!("1 {singular}") } else { format!("{n} {singular}s") }
}

#[cfg(test)]
mod tests {
    use super::counted;

    #[test]
    fn one_is_singular_and_every_other_count_plural() {
        assert_eq!(counted(1, "API key"), "1 API key");
        assert_eq!(counted(0, "API key"), "0 API keys");
        assert_eq!(counted(12usize, "day"), "12 days");
    }
}
