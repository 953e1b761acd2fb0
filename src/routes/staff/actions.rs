//! Staff → API actions: the platform-wide catalog of privileges keys can be granted. Add,
//! describe, and retire (after a confirmation that says how many keys use the action).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        CurrentStaff,
        session::{self, FlashLevel},
    },
    db::models::ApiAction,
    error::{AppError, AppResult, FieldErrors},
    routes::{extract::HtmlForm, saved, staff::path_id},
    services::platform,
    state::AppState,
    views::{PageContext, Section, confirm::ConfirmPage, redirect, render, words::counted},
};

const BASE: &str = "/staff/actions";

struct ActionRow {
    action: ApiAction,
    keys: i64,
}

#[derive(Template)]
#[template(path = "staff/actions.html")]
struct ListPage {
    ctx: PageContext,
    rows: Vec<ActionRow>,
}

#[get("/staff/actions")]
pub async fn list(staff: CurrentStaff, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let (actions, counts) = state.db.run(|conn| Ok((ApiAction::list_all(conn)?, ApiAction::key_counts(conn)?))).await?;
    let rows =
        actions.into_iter().map(|a| ActionRow { keys: counts.get(&a.id).copied().unwrap_or(0), action: a }).collect();
    let ctx = PageContext::for_staff(&staff, "API actions", Section::StaffActions)?;
    render(&ListPage { ctx, rows })
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    description: String,
}

#[derive(Template)]
#[template(path = "staff/action_form.html")]
struct FormPage {
    ctx: PageContext,
    heading: String,
    action_url: String,
    creating: bool,
    values: ActionForm,
    errors: FieldErrors,
}

fn form(staff: &CurrentStaff, editing: Option<i64>, values: ActionForm, errors: FieldErrors) -> AppResult<FormPage> {
    let (heading, action_url) = match editing {
        None => ("New API action".to_string(), BASE.to_string()),
        Some(id) => (format!("Describe {}", values.code), format!("{BASE}/{id}/edit")),
    };
    let ctx = PageContext::for_staff(staff, &heading, Section::StaffActions)?;
    Ok(FormPage { ctx, heading, action_url, creating: editing.is_none(), values, errors })
}

#[get("/staff/actions/new")]
pub async fn new_form(staff: CurrentStaff) -> AppResult<HttpResponse> {
    render(&form(&staff, None, ActionForm::default(), FieldErrors::new())?)
}

async fn save(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    editing: Option<i64>,
    values: ActionForm,
) -> AppResult<HttpResponse> {
    let actor = staff.actor();
    let submitted = values.clone();
    let result = state
        .db
        .transaction(move |conn| match editing {
            None => platform::create_action(conn, &actor, &submitted.code, &submitted.description),
            Some(id) => platform::describe_action(conn, &actor, id, &submitted.description),
        })
        .await;
    saved::answer(
        &staff.session,
        result,
        |action| (format!("Saved the action {}.", action.code), BASE.into()),
        |errors| async { form(&staff, editing, values, errors) },
    )
    .await
}

#[post("/staff/actions")]
pub async fn create(
    staff: CurrentStaff,
    state: web::Data<AppState>,
    submitted: HtmlForm<ActionForm>,
) -> AppResult<HttpResponse> {
    save(staff, state, None, submitted.into_inner()).await
}

#[get("/staff/actions/{id}/edit")]
pub async fn edit_form(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let action = state.db.run(move |conn| Ok(ApiAction::find(conn, id)?)).await?;
    render(&form(
        &staff,
        Some(id),
        ActionForm { code: action.code, description: action.description },
        FieldErrors::new(),
    )?)
}

#[post("/staff/actions/{id}/edit")]
pub async fn edit(
    staff: CurrentStaff,
    req: HttpRequest,
    state: web::Data<AppState>,
    submitted: HtmlForm<ActionForm>,
) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    save(staff, state, Some(id), submitted.into_inner()).await
}

#[get("/staff/actions/{id}/retire")]
pub async fn retire_form(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let (action, keys) = state
        .db
        .run(move |conn| Ok((ApiAction::find(conn, id)?, ApiAction::key_counts(conn)?.get(&id).copied().unwrap_or(0))))
        .await?;
    let heading = format!("Retire {}?", action.code);
    let ctx = PageContext::for_staff(&staff, &heading, Section::StaffActions)?;
    render(&ConfirmPage {
        ctx,
        heading,
        message: format!(
            "Keys listing this action ({}) lose it at once, in every organization; roles stop offering it, and it can no longer be chosen. Keys allowed all actions no longer get it either.",
            counted(keys, "key")
        ),
        note: None,
        detail: None,
        action_url: format!("{BASE}/{id}/retire"),
        button: "Retire action",
        danger: true,
        with_reason: false,
        hidden: vec![],
        cancel_href: BASE.into(),
        return_to: BASE.into(),
    })
}

#[post("/staff/actions/{id}/retire")]
pub async fn retire(staff: CurrentStaff, req: HttpRequest, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let id = path_id(&req, "id")?;
    let actor = staff.actor();
    match state.db.transaction(move |conn| platform::retire_action(conn, &actor, id)).await {
        Ok((action, keys)) => {
            session::flash(
                &staff.session,
                FlashLevel::Success,
                format!("Retired {}; {} lost it.", action.code, counted(keys, "key")),
            );
        }
        Err(AppError::Conflict(message)) => session::flash(&staff.session, FlashLevel::Error, message),
        Err(e) => return Err(e),
    }
    Ok(redirect(BASE))
}
