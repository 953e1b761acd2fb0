//! The confirmation page every "are you sure?" dialog uses (deactivate, delete, revoke…):
//! one template, a standalone page without JavaScript and a dialog with it.

use askama::Template;

use crate::views::PageContext;

/// A confirmation dialog.
#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub ctx: PageContext,
    pub heading: String,
    pub message: String,
    /// A highlighted remark under the message (e.g. what happens to existing keys).
    pub note: Option<String>,
    /// A monospace line identifying the object (e.g. the masked key).
    pub detail: Option<String>,
    pub action_url: String,
    pub button: &'static str,
    pub danger: bool,
    /// Offer an optional "reason" field, recorded in the audit log.
    pub with_reason: bool,
    /// Extra hidden fields the action needs (`name`, `value`).
    pub hidden: Vec<(&'static str, String)>,
    pub cancel_href: String,
    pub return_to: String,
}

impl ConfirmPage {
    /// The confirmation of a deletion asked from the list page `list`, where both answers
    /// return.
    pub fn deletion(
        ctx: PageContext,
        heading: String,
        message: String,
        note: Option<String>,
        action_url: String,
        button: &'static str,
        list: &str,
    ) -> Self {
        ConfirmPage {
            ctx,
            heading,
            message,
            note,
            detail: None,
            action_url,
            button,
            danger: true,
            with_reason: false,
            hidden: vec![],
            cancel_href: list.into(),
            return_to: list.into(),
        }
    }
}
