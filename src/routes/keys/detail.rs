//! A key's page: all its fields, grace state, usage, history, and what the viewer may do.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::{
    error::AppResult,
    routes::keys::{
        area::KeyArea,
        usage::{self, UsagePanel, UsageQuery},
        view::{self, KeyDetail},
    },
    services::keys::KeyOp,
    state::AppState,
    views::{PageContext, render},
};

use super::flow::{KeyPath, not_blocked, visible_key};

#[derive(Template)]
#[template(path = "keys/detail.html")]
struct DetailPage {
    ctx: PageContext,
    base: String,
    detail: KeyDetail,
    usage: UsagePanel,
}

pub async fn detail<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
    query: web::Query<UsageQuery>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let key = visible_key(&state, &area, public_id, KeyOp::View).await?;
    let base = area.base();
    let row_base = base.clone();
    let actor = area.actor();
    let period = query.into_inner().period.unwrap_or_default();
    let (detail, usage) = state
        .db
        .run(move |conn| {
            let detail = view::detail(conn, &actor, &key, &row_base)?;
            let granted = usage::granted_actions(conn, &key, &detail.row.actions)?;
            let usage = usage::panel(conn, &key, &granted, &detail.row.href, period, actor.now)?;
            Ok((detail, usage))
        })
        .await?;
    let ctx = area.context(&detail.row.name)?;
    render(&DetailPage { ctx, base, detail, usage })
}
