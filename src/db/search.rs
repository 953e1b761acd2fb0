//! Search terms of the list pages as `ILIKE` patterns the trigram indexes can serve.
//!
//! A term of three characters or more matches anywhere in the text (`%term%`). Shorter terms
//! hold no whole trigram, so a substring search would read every row; they match the start
//! of the text or of a word instead (`term%`, `% term%`), which the same indexes answer.

/// The longest search term kept (in characters); the rest of what was typed is dropped.
pub const MAX_TERM_CHARS: usize = 100;

/// A search box's text as a term: trimmed and bounded (empty: no search).
pub fn term(typed: &str) -> String {
    typed.trim().chars().take(MAX_TERM_CHARS).collect()
}

/// The patterns a term matches by, to be joined with `OR` on each searched column: one for
/// substring search, two (start of the text, start of a word) for short terms. Testing a
/// column twice with the same pattern is not free: it doubled the trigram index scans and
/// the rechecks, and counting a term matching 5 % of 100,000 keys took 30-50 ms instead of 5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPatterns {
    pub first: String,
    pub second: Option<String>,
}

impl SearchPatterns {
    pub fn of(term: &str) -> Self {
        let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        if term.chars().count() >= 3 {
            Self { first: format!("%{escaped}%"), second: None }
        } else {
            Self { first: format!("{escaped}%"), second: Some(format!("% {escaped}%")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SearchPatterns;

    #[test]
    fn long_terms_match_anywhere_short_ones_at_word_starts() {
        assert_eq!(SearchPatterns::of("export").first, "%export%");
        assert_eq!(SearchPatterns::of("export").second, None, "one pattern, each column tested once");
        let short = SearchPatterns::of("qa");
        assert_eq!((short.first.as_str(), short.second.as_deref()), ("qa%", Some("% qa%")));
        assert_eq!(SearchPatterns::of("50%_off").first, "%50\\%\\_off%", "wildcards are literal");
    }
}
