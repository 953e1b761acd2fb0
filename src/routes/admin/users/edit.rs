//! Edit a user: name, and (for administrators) the administrator flag and roles.

use actix_web::{HttpResponse, get, http::StatusCode, post, web};

use super::{BASE, UserForm, UserPath, load_user, render_form};
use crate::{
    auth::session::{self, FlashLevel},
    db::models::Role,
    domain::Capability,
    error::{AppError, AppResult, FieldErrors},
    routes::extract::HtmlForm,
    services::users,
    state::AppState,
    views::redirect,
};

#[get("/admin/users/{id}/edit")]
pub async fn edit_form(UserPath { who: manager, id }: UserPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let user = load_user(&state, &manager, id, |allowed, _| allowed.profile).await?;
    let role_ids = state.db.run(move |conn| Ok(Role::ids_of_user(conn, id)?)).await?;
    let values = UserForm {
        display_name: user.display_name.clone(),
        is_admin: user.is_admin.then(|| "on".into()),
        role: role_ids.iter().map(|r| r.to_string()).collect(),
        ..UserForm::default()
    };
    render_form(&manager, &state, Some(&user), values, FieldErrors::new(), StatusCode::OK).await
}

#[post("/admin/users/{id}/edit")]
pub async fn edit(
    UserPath { who: manager, id }: UserPath,
    state: web::Data<AppState>,
    form: HtmlForm<UserForm>,
) -> AppResult<HttpResponse> {
    let values = form.into_inner();
    let admin = manager.can.allows(Capability::Administer);
    let (name, is_admin) = (values.display_name.clone(), admin.then(|| values.is_admin.is_some()));
    let role_ids = admin.then(|| values.role_ids());
    // Granting administrator rights is sensitive (sudo mode); keeping them is not.
    if is_admin == Some(true) && !load_user(&state, &manager, id, |allowed, _| allowed.profile).await?.is_admin {
        manager.0.require_recent(&format!("{BASE}/{id}/edit"))?;
    }
    let result = manager
        .change(&state, move |conn, actor, organization| {
            users::update(conn, actor, organization, id, &name, is_admin, role_ids)
        })
        .await;
    match result {
        Ok(user) => {
            session::flash(
                &manager.0.session,
                FlashLevel::Success,
                format!("Saved the changes to {}.", user.display_name),
            );
            Ok(redirect(&format!("{BASE}/{id}")))
        }
        Err(AppError::Conflict(message)) => {
            session::flash(&manager.0.session, FlashLevel::Error, message);
            Ok(redirect(&format!("{BASE}/{id}")))
        }
        Err(AppError::Invalid(errors)) => {
            let user = load_user(&state, &manager, id, |allowed, _| allowed.profile).await?;
            render_form(&manager, &state, Some(&user), values, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => Err(e),
    }
}
