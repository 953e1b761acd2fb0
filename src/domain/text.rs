//! Short human-entered text fields (names, descriptions): trimmed, length-checked, and free
//! of control characters.

/// Trims `input` and checks it has `min..=max` characters and no control characters.
pub fn clean_line(input: &str, min: usize, max: usize, field: &str) -> Result<String, String> {
    let value = input.trim();
    let count = value.chars().count();
    if count < min {
        return Err(if min == 1 {
            format!("Enter a {field}.")
        } else {
            format!("The {field} needs at least {min} characters.")
        });
    }
    if count > max {
        return Err(format!("The {field} can have at most {max} characters."));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("The {field} cannot contain control characters."));
    }
    Ok(value.to_string())
}

/// Like [`clean_line`] for multi-line text: newlines and tabs are allowed.
pub fn clean_text(input: &str, max: usize, field: &str) -> Result<String, String> {
    let value = input.trim();
    if value.chars().count() > max {
        return Err(format!("The {field} can have at most {max} characters."));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(format!("The {field} cannot contain control characters."));
    }
    Ok(value.replace("\r\n", "\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_trimmed_and_bounded() {
        assert_eq!(clean_line("  Acme  ", 1, 10, "name").unwrap(), "Acme");
        assert!(clean_line("   ", 1, 10, "name").is_err());
        assert!(clean_line("abcdefghijk", 1, 10, "name").is_err());
        assert!(clean_line("a\u{0}b", 1, 10, "name").is_err());
    }

    #[test]
    fn text_keeps_newlines_but_not_other_controls() {
        assert_eq!(clean_text("a\r\nb", 10, "comment").unwrap(), "a\nb");
        assert!(clean_text("a\u{7}b", 10, "comment").is_err());
    }
}
