//! `management_rate_windows`: the requests of each management token per fixed minute, counted
//! in the database so that every instance enforces one shared rate limit.

use chrono::{DateTime, Utc};
use diesel::{PgConnection, QueryResult, prelude::*};

use crate::db::schema::management_rate_windows;

/// Counts one request of `token_id` in the window starting at `window_start`, in one upsert
/// (two instances at once both add theirs): the requests of the window, this one included.
pub fn count_request(conn: &mut PgConnection, token_id: i64, window_start: DateTime<Utc>) -> QueryResult<i32> {
    use management_rate_windows::dsl;
    diesel::insert_into(dsl::management_rate_windows)
        .values((dsl::token_id.eq(token_id), dsl::window_start.eq(window_start), dsl::requests.eq(1)))
        .on_conflict((dsl::token_id, dsl::window_start))
        .do_update()
        .set(dsl::requests.eq(dsl::requests + 1))
        .returning(dsl::requests)
        .get_result(conn)
}

/// Deletes the windows that started before `before`; how many.
pub fn delete_before(conn: &mut PgConnection, before: DateTime<Utc>) -> QueryResult<usize> {
    use management_rate_windows::dsl;
    diesel::delete(dsl::management_rate_windows.filter(dsl::window_start.lt(before))).execute(conn)
}
