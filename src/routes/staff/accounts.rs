//! Staff → Staff accounts: list, create (with an initial password), deactivate (which ends
//! the account's sessions), reactivate, and reset another account's second factor.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        CurrentStaff,
        session::{self, FlashLevel},
    },
    db::models::StaffAccount,
    domain::NewPassword,
    error::{AppError, AppResult, FieldErrors},
    routes::{extract::HtmlForm, saved, staff::path_id},
    services::{platform, staff as staff_service},
    state::AppState,
    views::{PageContext, Section, confirm::ConfirmPage, redirect, render, time::Stamp},
};

const BASE: &str = "/staff/accounts";

struct AccountRow {
    id: i64,
    email: String,
    display_name: String,
    active: bool,
    last_login: Option<Stamp>,
    is_self: bool,
}

#[derive(Template)]
#[template(path = "staff/accounts.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<AccountRow>,
}

#[get("/staff/accounts")]
pub async fn list(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let accounts = state.db.run(|conn| Ok(StaffAccount::list_all(conn)?)).await?;
    let rows = accounts
        .into_iter()
        .map(|a| AccountRow {
            is_self: a.id == staff.staff.id,
            last_login: Stamp::maybe(a.last_login_at),
            id: a.id,
            email: a.email,
            display_name: a.display_name,
            active: a.active,
        })
        .collect();
    let ctx = PageContext::for_staff(&staff, "Staff accounts", Section::StaffAccounts)?;
    render(&ListPage { ctx, rows })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "staff/account_form.html")]
struct FormPage {
    ctx: PageContext,
    values: AccountForm,
    errors: FieldErrors,
}

#[get("/staff/accounts/new")]
pub async fn new_form(staff: CurrentStaff) -> AppResult<HttpResponse> {
    let ctx = PageContext::for_staff(&staff, "New staff account", Section::StaffAccounts)?;
    render(&FormPage { ctx, values: AccountForm::default(), errors: FieldErrors::new() })
}

#[post("/staff/accounts")]
pub async fn create(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    submitted: HtmlForm<AccountForm>,
) -> AppResult<HttpResponse> {
    let values = submitted.into_inner();
    let mut errors = FieldErrors::new();
    let password = errors.take("password", NewPassword::parse(&values.password));
    let result = match (password, errors.is_empty()) {
        (Some(password), true) => {
            let hash = state.passwords.hash(password).await?;
            let actor = staff.actor();
            let (email, name) = (values.email.clone(), values.display_name.clone());
            state.db.transaction(move |conn| staff_service::create(conn, &actor, &email, &name, Some(&hash))).await
        }
        _ => Err(AppError::Invalid(errors)),
    };
    saved::answer(
        &staff.session,
        result,
        |created| (format!("Created the staff account {}.", created.email), BASE.into()),
        |errors| async {
            let ctx = PageContext::for_staff(&staff, "New staff account", Section::StaffAccounts)?;
            Ok(FormPage { ctx, values: AccountForm { password: String::new(), ..values }, errors })
        },
    )
    .await
}

#[get("/staff/accounts/{id}/{change:deactivate|reactivate}")]
pub async fn active_form(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let activate = req.match_info().get("change") == Some("reactivate");
    let account = state.db.run(move |conn| Ok(StaffAccount::find(conn, id)?)).await?;
    let heading =
        if activate { format!("Reactivate {}?", account.email) } else { format!("Deactivate {}?", account.email) };
    let ctx = PageContext::for_staff(&staff, &heading, Section::StaffAccounts)?;
    render(&ConfirmPage {
        ctx,
        heading,
        message: if activate {
            "The account can sign in again.".into()
        } else {
            "The account is signed out everywhere at once and cannot sign in.".into()
        },
        note: None,
        detail: None,
        action_url: format!("{BASE}/{id}/{}", if activate { "reactivate" } else { "deactivate" }),
        button: if activate { "Reactivate" } else { "Deactivate" },
        danger: !activate,
        with_reason: false,
        hidden: vec![],
        cancel_href: BASE.into(),
        return_to: BASE.into(),
    })
}

#[post("/staff/accounts/{id}/{change:deactivate|reactivate}")]
pub async fn set_active(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let activate = req.match_info().get("change") == Some("reactivate");
    let actor = staff.actor();
    match state.db.transaction(move |conn| platform::set_staff_active(conn, &actor, id, activate)).await {
        Ok(account) => {
            let verb = if activate { "Reactivated" } else { "Deactivated" };
            session::flash(&staff.session, FlashLevel::Success, format!("{verb} {}.", account.email));
        }
        Err(AppError::Conflict(message)) => session::flash(&staff.session, FlashLevel::Error, message),
        Err(e) => return Err(e),
    }
    Ok(redirect(BASE))
}

#[get("/staff/accounts/{id}/reset-second-factor")]
pub async fn reset_factor_form(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let actor = staff.actor();
    let account = state.db.run(move |conn| platform::staff_for_factor_reset(conn, &actor, id)).await?;
    let heading = format!("Reset the second factor of {}?", account.email);
    let ctx = PageContext::for_staff(&staff, &heading, Section::StaffAccounts)?;
    render(&ConfirmPage {
        ctx,
        heading,
        message: "The account's authenticator app, passkeys and recovery codes stop working, and it is signed out \
                  everywhere at once. Its next sign-in sets up a new second factor."
            .into(),
        note: Some(
            "Make sure you are talking to the person: this is how an attacker with a stolen password would ask.".into(),
        ),
        detail: None,
        action_url: format!("{BASE}/{id}/reset-second-factor"),
        button: "Reset second factor",
        danger: true,
        with_reason: false,
        hidden: vec![],
        cancel_href: BASE.into(),
        return_to: BASE.into(),
    })
}

#[post("/staff/accounts/{id}/reset-second-factor")]
pub async fn reset_factor(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let actor = staff.actor();
    let account = state.db.transaction(move |conn| platform::reset_staff_second_factor(conn, &actor, id)).await?;
    let message = format!("Reset the second factor of {}: signed out everywhere.", account.email);
    session::flash(&staff.session, FlashLevel::Success, message);
    Ok(redirect(BASE))
}
