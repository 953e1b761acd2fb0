//! Concurrent changes of one key, released together: re-keys serialize (one wins, the others
//! get a clear conflict), a double-submitted form creates one key, and racing deletes,
//! renames and (de)activations never resurrect a deleted key or leave more than two secrets.

use diesel::prelude::*;
use futures_util::future::join_all;
use keyward::{
    db::schema::{api_keys, audit_events},
    keys::ParsedKey,
};
use reqwest::StatusCode;

use crate::{
    helpers::{TestApp, TestClient, audit_count, fixtures, keys, spawn_app, user},
    keys::{form_token, shown_secret},
};

async fn bob() -> (TestApp, TestClient) {
    let app = spawn_app().await;
    let org = fixtures::organization(&mut app.conn(), "acme");
    fixtures::key_owner(&mut app.conn(), &org, "bob@acme.test");
    let client = app.signed_in("bob@acme.test").await;
    (app, client)
}

/// `(status, body)` of each response.
async fn answers(responses: Vec<reqwest::Response>) -> Vec<(StatusCode, String)> {
    let mut answers = Vec::new();
    for response in responses {
        answers.push((response.status(), response.text().await.unwrap()));
    }
    answers
}

#[actix_web::test]
async fn concurrent_rekeys_serialize_and_all_but_one_get_a_conflict() {
    let (app, bob) = bob().await;
    let (key, original) = keys::personal(&mut app.conn(), &app.hasher, &user(&app, "bob@acme.test"), "Contended");
    let base = format!("/account/keys/{}", key.public_id);
    // Five people opened the re-key dialog before anyone submitted it.
    let mut tokens = Vec::new();
    let mut version = String::new();
    for _ in 0..5 {
        let (_, form) = bob.page(&format!("{base}/rekey")).await;
        tokens.push(form_token(&form));
        let marker = "name=\"secret_version\" value=\"";
        let start = form.find(marker).unwrap() + marker.len();
        version = form[start..start + form[start..].find('"').unwrap()].to_string();
    }
    let path = format!("{base}/rekey");
    let forms: Vec<[(&str, &str); 3]> = tokens
        .iter()
        .map(|token| [("grace_minutes", "60"), ("form_token", token), ("secret_version", &version)])
        .collect();
    let submitted = forms.iter().map(|fields| bob.post(&path, fields));
    let answers = answers(join_all(submitted).await).await;

    let winners: Vec<&String> = answers.iter().filter(|(s, _)| *s == StatusCode::OK).map(|(_, b)| b).collect();
    let conflicts =
        answers.iter().filter(|(s, b)| *s == StatusCode::CONFLICT && b.contains("re-keyed this key")).count();
    assert_eq!((winners.len(), conflicts), (1, 4), "{:?}", answers.iter().map(|a| a.0).collect::<Vec<_>>());
    let secret = shown_secret(winners[0]).unwrap();
    let now = keys::reload(&mut app.conn(), &key).unwrap();
    assert!(app.hasher.matches(&secret, &now.secret_hash), "the winner's secret is the key's");
    assert!(app.hasher.matches(&original, now.previous_secret_hash.as_ref().unwrap()), "the original is in grace");
    assert_eq!(audit_count(&app, "key.rekey"), 1);
}

#[actix_web::test]
async fn a_create_form_submitted_twice_at_once_creates_one_key() {
    let (app, bob) = bob().await;
    let (_, form) = bob.page("/account/keys/new").await;
    let token = form_token(&form);
    let expires = (chrono::Utc::now() + chrono::Duration::days(30)).date_naive().to_string();
    let fields = [
        ("form_token", token.as_str()),
        ("name", "Double click"),
        ("actions_mode", "selected"),
        ("action", "positions.read"),
        ("expires_on", expires.as_str()),
    ];
    let answers = answers(join_all((0..4).map(|_| bob.post("/account/keys", &fields))).await).await;
    assert!(
        answers.iter().all(|(status, _)| !status.is_server_error()),
        "{:?}",
        answers.iter().map(|a| a.0).collect::<Vec<_>>()
    );
    let shown: Vec<String> = answers.iter().filter_map(|(_, body)| shown_secret(body)).collect();
    assert_eq!(shown.len(), 1, "the secret is shown once");
    let count: i64 = api_keys::table.count().get_result(&mut *app.conn()).unwrap();
    assert_eq!(count, 1, "one key");
    let key = keys::find(&mut app.conn(), ParsedKey::parse(&shown[0]).unwrap().public_id).unwrap();
    assert!(key.is_some());
    assert_eq!(audit_count(&app, "key.create"), 1);
}

#[actix_web::test]
async fn racing_deletes_and_changes_never_resurrect_a_key() {
    let (app, bob) = bob().await;
    let owner = user(&app, "bob@acme.test");
    bob.page("/account/keys").await;
    for round in 0..4 {
        let (key, _) = keys::personal(&mut app.conn(), &app.hasher, &owner, &format!("Doomed {round}"));
        let base = format!("/account/keys/{}", key.public_id);
        let (rename, deactivate, reactivate, delete, end_grace) = (
            format!("{base}/rename"),
            format!("{base}/deactivate"),
            format!("{base}/reactivate"),
            format!("{base}/delete"),
            format!("{base}/end-grace"),
        );
        let mut requests = vec![
            bob.post(&rename, &[("name", "Renamed A")]),
            bob.post(&deactivate, &[]),
            bob.post(&delete, &[]),
            bob.post(&reactivate, &[]),
            bob.post(&rename, &[("name", "Renamed B")]),
            bob.post(&end_grace, &[]),
        ];
        // The delete takes a different place in each round.
        requests.rotate_left(round);
        let answers = answers(join_all(requests).await).await;
        for (status, _) in &answers {
            assert!(
                matches!(*status, StatusCode::SEE_OTHER | StatusCode::NOT_FOUND),
                "round {round}: {:?}",
                answers.iter().map(|a| a.0).collect::<Vec<_>>()
            );
        }
        assert!(keys::reload(&mut app.conn(), &key).is_none(), "round {round}: the key stays deleted");
        // Events are numbered as they are written, under the key's lock (timestamps are
        // those of their transactions' starts, which may be in another order).
        let deletion: i64 = audit_events::table
            .filter(audit_events::action.eq("key.delete"))
            .filter(audit_events::target_id.eq(&key.public_id))
            .select(audit_events::id)
            .first(&mut *app.conn())
            .unwrap();
        let later_changes: i64 = audit_events::table
            .filter(audit_events::target_id.eq(&key.public_id))
            .filter(audit_events::result.eq("success"))
            .filter(audit_events::id.gt(deletion))
            .count()
            .get_result(&mut *app.conn())
            .unwrap();
        assert_eq!(later_changes, 0, "round {round}: nothing changed the key after its deletion");
    }
}
