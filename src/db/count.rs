//! Counting the rows of a list up to a bound: `SELECT count(*) FROM (<query> LIMIT n)`.
//! An exact count of 100,000 keys costs more than the whole rest of the page, and nobody
//! pages through more than [`crate::views::pager::MAX_COUNTED`] rows: beyond that the list
//! says "more than" and asks for a narrower filter.

use diesel::{
    PgConnection,
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId},
    query_dsl::RunQueryDsl,
    result::QueryResult,
    sql_types::BigInt,
};

/// The number of rows `0` returns (give it a `LIMIT`).
#[derive(Debug, Clone, Copy, QueryId)]
pub struct CountRows<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for CountRows<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT count(*) FROM (");
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(") AS counted");
        Ok(())
    }
}

impl<Q> Query for CountRows<Q> {
    type SqlType = BigInt;
}

impl<Q> RunQueryDsl<PgConnection> for CountRows<Q> {}
