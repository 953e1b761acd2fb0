//! Search plans at scale (issue 15): a selective search repeated on one pooled connection must
//! keep using the trigram indexes. PostgreSQL switches a prepared statement to a generic plan
//! after five executions; a generic plan cannot see the search pattern and scanned the whole
//! keys table (200 ms instead of 10). The pool's connections plan every execution with its
//! real values, and this test watches the plan PostgreSQL would actually use.
//!
//! How the plan is observed: the real list query (the finder the page calls) runs ten times
//! on one connection out of the application's own pool (so with its session settings), while
//! a Diesel instrumentation records the SQL and bind values it sent. The statement is then
//! looked up in that session's `pg_prepared_statements` (Diesel's statement cache), and
//! `EXPLAIN EXECUTE` of it with the same values shows the plan the plan cache picks for the
//! next execution: the generic one once PostgreSQL has switched, a custom one otherwise. A
//! statement Diesel did not keep prepared is planned afresh each time, so for it `EXPLAIN`
//! of the SQL with the values in place is the plan used.

use std::sync::{Arc, Mutex};

use diesel::{
    Connection, PgConnection, QueryableByName, RunQueryDsl,
    connection::{Instrumentation, InstrumentationEvent},
};
use keyward::{
    db::models::{
        ApiKey, User,
        api_key::{KeyListFilter, KeyScope},
        user::UserSort,
    },
    services::demo_bulk,
};

use crate::helpers::{fixtures, spawn_app};

/// Records the SQL and binds (`"<sql> -- binds: [..]"`) of every statement sent.
fn recorder(log: Arc<Mutex<Vec<String>>>) -> impl Instrumentation {
    move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            log.lock().unwrap().push(query.to_string());
        }
    }
}

#[derive(QueryableByName)]
struct Prepared {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    custom_plans: i64,
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = diesel::sql_types::Json, column_name = "QUERY PLAN")]
    plan: serde_json::Value,
}

/// The values of Diesel's debug list of binds (`[2, "%zzqx%", 10001]`) as SQL literals.
fn literals(binds: &str) -> Vec<String> {
    let inner = binds.trim().strip_prefix('[').and_then(|b| b.strip_suffix(']')).expect("a list of binds");
    let mut values = Vec::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | ',' => {}
            '"' => {
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => text.push(chars.next().expect("an escaped character")),
                        '"' => break,
                        c => text.push(c),
                    }
                }
                values.push(format!("'{}'", text.replace('\'', "''")));
            }
            c => {
                let mut token = c.to_string();
                while let Some(&c) = chars.peek() {
                    if c == ',' {
                        break;
                    }
                    token.push(c);
                    chars.next();
                }
                assert!(token.parse::<f64>().is_ok() || token == "true" || token == "false", "unexpected bind {token}");
                values.push(token);
            }
        }
    }
    values
}

/// Every `(node type, relation)` of an `EXPLAIN (FORMAT JSON)` plan.
fn nodes(plan: &serde_json::Value, out: &mut Vec<(String, String)>) {
    match plan {
        serde_json::Value::Object(map) => {
            if let Some(node) = map.get("Node Type").and_then(|v| v.as_str()) {
                let relation = map.get("Relation Name").and_then(|v| v.as_str()).unwrap_or_default();
                out.push((node.to_string(), relation.to_string()));
            }
            map.values().for_each(|v| nodes(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| nodes(v, out)),
        _ => {}
    }
}

/// The plan the connection would use for the next execution of `recorded` (see the module
/// comment), and a description of how it was planned.
fn plan_in_use(conn: &mut PgConnection, recorded: &str) -> (serde_json::Value, String) {
    let (sql, binds) = recorded.rsplit_once(" -- binds: ").expect("a statement with its binds");
    let values = literals(binds);
    let prepared: Option<Prepared> =
        diesel::sql_query("SELECT name, generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1")
            .bind::<diesel::sql_types::Text, _>(sql)
            .get_result(conn)
            .ok();
    let (explain, how) = match prepared {
        Some(p) => (
            format!("EXPLAIN (FORMAT JSON) EXECUTE {}({})", p.name, values.join(", ")),
            format!("prepared as {}: {} generic and {} custom plans so far", p.name, p.generic_plans, p.custom_plans),
        ),
        None => {
            let mut inlined = sql.to_string();
            for (i, value) in values.iter().enumerate().rev() {
                inlined = inlined.replace(&format!("${}", i + 1), value);
            }
            (format!("EXPLAIN (FORMAT JSON) {inlined}"), "not kept prepared: planned on each execution".into())
        }
    };
    let plan: Plan = diesel::sql_query(explain).get_result(conn).expect("explain the statement");
    (plan.plan, how)
}

/// Runs `search` ten times on `conn` and asserts that none of the statements of its tenth run
/// would scan `api_keys` or `users` sequentially.
fn assert_indexed(
    conn: &mut PgConnection,
    log: &Arc<Mutex<Vec<String>>>,
    what: &str,
    mut search: impl FnMut(&mut PgConnection),
) {
    for _ in 0..9 {
        search(conn);
    }
    log.lock().unwrap().clear();
    search(conn);
    let tenth: Vec<String> = log.lock().unwrap().drain(..).collect();
    assert!(!tenth.is_empty(), "{what}: the search ran statements");
    for recorded in tenth.iter().filter(|sql| sql.contains("ILIKE")) {
        let (plan, how) = plan_in_use(conn, recorded);
        let mut found = Vec::new();
        nodes(&plan, &mut found);
        let scans: Vec<_> = found
            .iter()
            .filter(|(node, relation)| node == "Seq Scan" && (relation == "api_keys" || relation == "users"))
            .collect();
        assert!(
            scans.is_empty(),
            "{what}: on its tenth run, {recorded}\nis planned with a sequential scan of {scans:?} ({how}):\n{plan:#}"
        );
    }
}

#[actix_web::test]
async fn selective_searches_keep_their_indexes_on_the_tenth_run_of_a_connection() {
    let app = spawn_app().await;
    let mut owner = app.owner_conn();
    let org = fixtures::organization(&mut owner, "bulk");
    fixtures::UserBuilder::new(&org, "admin@bulk.test").admin().insert(&mut owner);
    demo_bulk::fill(&mut owner, org.id, 10_000, 100_000).expect("seed 10,000 users and 100,000 keys");
    // As autovacuum leaves a table in steady state: statistics, and the trigram indexes'
    // pending lists merged (a bulk load leaves them long, which makes every index scan
    // look, and be, expensive until a vacuum).
    diesel::sql_query("VACUUM ANALYZE api_keys, users").execute(&mut owner).unwrap();
    drop(owner);

    // One connection of the application's pool, set up as the pages get theirs.
    let mut pooled = app.conn();
    let conn: &mut PgConnection = &mut pooled;
    let log = Arc::new(Mutex::new(Vec::new()));
    conn.set_instrumentation(recorder(Arc::clone(&log)));

    let [(nothing, _), (rare, _), ..] = demo_bulk::TERMS.keys;
    for term in [nothing, rare] {
        let filter = KeyListFilter { search: Some(term.to_string()), per_page: 25, ..KeyListFilter::default() };
        assert_indexed(conn, &log, &format!("the key search {term:?}"), |conn| {
            let (rows, _) = ApiKey::list(conn, KeyScope::Organization(org.id), &filter).unwrap();
            assert!(term != nothing || rows.is_empty());
        });
    }
    let [(nothing, _), (rare, _), ..] = demo_bulk::TERMS.users;
    for term in [nothing, rare] {
        assert_indexed(conn, &log, &format!("the user search {term:?}"), |conn| {
            User::list_for_admin(conn, org.id, term, UserSort::Name, 0, 25).unwrap();
        });
    }
    // The rare terms do match (so their plans were made for real, selective searches).
    let filter = KeyListFilter { search: Some(demo_bulk::TERMS.keys[1].0.into()), per_page: 25, ..Default::default() };
    let (_, total) = ApiKey::list(conn, KeyScope::Organization(org.id), &filter).unwrap();
    assert!((50..=200).contains(&total), "the rare key term matches about 0.1 % of 100,000 keys, not {total}");
    let (_, total) = User::list_for_admin(conn, org.id, demo_bulk::TERMS.users[1].0, UserSort::Name, 0, 25).unwrap();
    assert!((5..=40).contains(&total), "the rare user term matches about 0.15 % of 10,000 users, not {total}");
    // The connection goes back to the pool: give it back its request counting.
    conn.set_instrumentation(keyward::db::query_count::instrumentation());
}
