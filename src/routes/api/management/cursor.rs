//! Opaque cursors of the management API's lists: the sort position (`time`, `id`) of the last
//! item of a page, base64url-encoded, so the next page starts right after it even while
//! items are added.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};

use super::problem::Problem;

pub fn encode(at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{id}", at.timestamp_micros()))
}

pub fn decode(cursor: &str) -> Result<(DateTime<Utc>, i64), Problem> {
    let invalid = || Problem::invalid_field("cursor", "Use the next_cursor of a previous page.");
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('.').ok_or_else(invalid)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| invalid())?).ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_780_000_000_123_456).unwrap();
        assert_eq!(decode(&encode(at, 42)).unwrap(), (at, 42));
        assert_eq!(decode("not a cursor").unwrap_err().status, 422);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("1.x")).unwrap_err().status, 422);
    }
}
