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

/// The two patterns a term matches by (the same twice for substring search), to be joined
/// with `OR` on each searched column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPatterns {
    pub first: String,
    pub second: String,
}

impl SearchPatterns {
    pub fn of(term: &str) -> Self {
        let escaped = term.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        if term.chars().count() >= 3 {
            let contains = format!("%{escaped}%");
            Self { first: contains.clone(), second: contains }
        } else {
            Self { first: format!("{escaped}%"), second: format!("% {escaped}%") }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SearchPatterns;

    #[test]
    fn long_terms_match_anywhere_short_ones_at_word_starts() {
        assert_eq!(SearchPatterns::of("export").first, "%export%");
        assert_eq!(SearchPatterns::of("export").second, "%export%");
        let short = SearchPatterns::of("qa");
        assert_eq!((short.first.as_str(), short.second.as_str()), ("qa%", "% qa%"));
        assert_eq!(SearchPatterns::of("50%_off").first, "%50\\%\\_off%", "wildcards are literal");
    }
}
