//! Account settings of a web user: the overview, and whether they get key expiry reminders.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        CurrentUser,
        session::{self, FlashLevel},
    },
    domain::{Capability, Permission},
    error::AppResult,
    routes::extract::HtmlForm,
    services::users,
    state::AppState,
    views::{PageContext, Section, redirect, render, time::Stamp},
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
    receive_reminders: bool,
    receive_digest: bool,
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
        receive_reminders: user.user.receive_reminders,
        receive_digest: user.user.receive_digest,
    })
}

#[derive(Debug, Deserialize)]
pub struct NotificationsForm {
    /// A checkbox: present when ticked.
    #[serde(default)]
    receive_reminders: Option<String>,
    /// A checkbox administrators see; absent for others (who get no digest anyway).
    #[serde(default)]
    receive_digest: Option<String>,
}

#[post("/account/notifications")]
pub async fn notifications(
    user: CurrentUser,
    state: web::Data<AppState>,
    form: HtmlForm<NotificationsForm>,
) -> AppResult<HttpResponse> {
    let form = form.into_inner();
    let receive = form.receive_reminders.is_some();
    let digest = user.user.is_admin.then_some(form.receive_digest.is_some());
    let actor = user.actor();
    state
        .db
        .transaction(move |conn| {
            users::set_mail_preference(conn, &actor, users::MailPreference::Reminders, receive)?;
            if let Some(digest) = digest {
                users::set_mail_preference(conn, &actor, users::MailPreference::Digest, digest)?;
            }
            Ok(())
        })
        .await?;
    let mut message = if receive {
        "You will get reminders before your API keys expire.".to_string()
    } else {
        "You will no longer get reminders before your API keys expire. You are still told when a key is \
         deactivated, deleted or expires."
            .to_string()
    };
    match digest {
        Some(true) => message.push_str(" You will get the weekly digest."),
        Some(false) => message.push_str(" You will not get the weekly digest."),
        None => {}
    }
    session::flash(&user.session, FlashLevel::Success, message);
    Ok(redirect("/account"))
}
