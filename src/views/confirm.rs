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
