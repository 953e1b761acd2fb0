//! A key's page: all its fields, grace state, history, and what the viewer may do.

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::{
    error::AppResult,
    routes::keys::{
        area::KeyArea,
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
}

pub async fn detail<A: KeyArea>(
    area: A,
    KeyPath(public_id): KeyPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    not_blocked(&area)?;
    let key = visible_key(&state, &area, public_id, KeyOp::View).await?;
    let base = area.base();
    let row_base = base.clone();
    let actor = area.actor();
    let detail = state.db.run(move |conn| view::detail(conn, &actor, &key, &row_base)).await?;
    let ctx = area.context(&detail.row.name)?;
    render(&DetailPage { ctx, base, detail })
}
