//! How a create or edit form's submission ends, the same on every page: on success a flash
//! message and the next page; on invalid input the form again (422) with the user's values
//! and the field errors; any other error is answered as itself.

use std::future::Future;

use actix_session::Session;
use actix_web::{HttpResponse, http::StatusCode};
use askama::Template;

use crate::{
    auth::session::{self, FlashLevel},
    error::{AppError, AppResult, FieldErrors},
    views::{redirect, render_with_status},
};

/// Answers `result`: `done` gives the success message and the page to go to; `form_again`
/// builds the form page for the errors.
pub async fn answer<T, P: Template, F: Future<Output = AppResult<P>>>(
    session: &Session,
    result: AppResult<T>,
    done: impl FnOnce(T) -> (String, String),
    form_again: impl FnOnce(FieldErrors) -> F,
) -> AppResult<HttpResponse> {
    match result {
        Ok(value) => {
            let (message, next) = done(value);
            session::flash(session, FlashLevel::Success, message);
            Ok(redirect(&next))
        }
        Err(AppError::Invalid(errors)) => {
            render_with_status(&form_again(errors).await?, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => Err(e),
    }
}
