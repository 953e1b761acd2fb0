//! Account settings of a web user.

use actix_web::{HttpResponse, get};
use askama::Template;

use crate::{
    auth::CurrentUser,
    domain::{Capability, Permission},
    error::AppResult,
    views::{PageContext, Section, render, time::Stamp},
};

#[derive(Template)]
#[template(path = "account/overview.html")]
struct OverviewPage {
    ctx: PageContext,
    email: String,
    display_name: String,
    organization: String,
    is_admin: bool,
    may_own_keys: bool,
    permissions: Vec<&'static str>,
    last_login: Option<Stamp>,
}

#[get("/account")]
pub async fn overview(user: CurrentUser) -> AppResult<HttpResponse> {
    let ctx = PageContext::for_user(&user, "Account", Section::Account)?;
    render(&OverviewPage {
        ctx,
        email: user.user.email.clone(),
        display_name: user.user.display_name.clone(),
        organization: user.organization.name.clone(),
        is_admin: user.user.is_admin,
        may_own_keys: user.can.allows(Capability::OwnKeys),
        permissions: user.can.permissions().iter().map(Permission::label).collect(),
        last_login: Stamp::maybe(user.user.last_login_at),
    })
}
