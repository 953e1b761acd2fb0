//! The key list of an area: filters, search and pages.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Duration, Utc};
use diesel::OptionalExtension;
use serde::Deserialize;

use crate::{
    db::models::{
        ApiKey, User,
        api_key::{KeyListFilter, KeyScope, OwnerFilter, StateFilter, Unused},
    },
    error::{AppError, AppResult},
    routes::keys::{
        area::KeyArea,
        view::{self, KeyRow},
    },
    state::AppState,
    views::{
        PageContext,
        pager::{Pager, page_index},
        render,
    },
};

use super::flow::PER_PAGE;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    owner: Option<String>,
    /// One user's personal keys (from their page, "All keys of …").
    owner_user: Option<String>,
    state: Option<String>,
    expiring: Option<String>,
    /// Keys not used for this many days (`90`; never used: created that long ago), or
    /// `never` used at all.
    unused: Option<String>,
    q: Option<String>,
    page: Option<i64>,
}

/// The list's filter bar.
pub struct ListView {
    pub owner: String,
    /// The user whose keys alone are listed, as given (empty: anyone's).
    pub owner_user: String,
    /// That user's name, if they are of this organization.
    pub owner_user_name: Option<String>,
    pub state: String,
    pub expiring: bool,
    /// The "unused" filter as applied: empty, a number of days, or `never`.
    pub unused: String,
    /// The choices of the "unused" filter: `(value, label)`, the applied one among them.
    pub unused_choices: Vec<(String, String)>,
    pub q: String,
    pub filtered: bool,
}

#[derive(Template)]
#[template(path = "keys/list.html")]
struct ListPage {
    ctx: PageContext,
    base: String,
    title: String,
    description: &'static str,
    shows_owner: bool,
    blocked: Option<String>,
    rows: Vec<KeyRow>,
    list: ListView,
    pager: Pager,
}

/// The spans the filter bar offers for "unused" (a link may name any other number of days).
const UNUSED_CHOICES: [i64; 2] = [30, 90];

/// The `unused` filter: none when empty, `never`, or a whole number of days up to ten years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnusedFilter {
    Days(i64),
    Never,
}

impl UnusedFilter {
    fn parse(value: Option<&str>) -> AppResult<Option<Self>> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some("never") => Ok(Some(Self::Never)),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|days| (1..=3650).contains(days))
                .map(|days| Some(Self::Days(days)))
                .ok_or_else(|| {
                    AppError::BadRequest("The unused filter must be a number of days, such as 90, or \"never\".".into())
                }),
        }
    }

    /// The query parameter's value.
    fn param(self) -> String {
        match self {
            Self::Days(days) => days.to_string(),
            Self::Never => "never".into(),
        }
    }

    /// The model's filter, at the application's time `now`.
    fn at(self, now: DateTime<Utc>) -> Unused {
        match self {
            Self::Days(days) => Unused::Since(now - Duration::days(days)),
            Self::Never => Unused::Never,
        }
    }
}

/// The filter bar's "unused" options, with the applied number of days if it is not one of them.
fn unused_choices(applied: Option<UnusedFilter>) -> Vec<(String, String)> {
    let mut days: Vec<i64> = UNUSED_CHOICES.to_vec();
    if let Some(UnusedFilter::Days(n)) = applied
        && !days.contains(&n)
    {
        days.push(n);
        days.sort_unstable();
    }
    let mut choices = vec![(String::new(), "Any time".to_string())];
    choices.extend(days.into_iter().map(|n| (n.to_string(), format!("Not in the last {n} days"))));
    choices.push(("never".into(), "Never".into()));
    choices
}

pub async fn list<A: KeyArea>(
    area: A,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> AppResult<HttpResponse> {
    let ctx = area.context(&area.title())?;
    let base = area.base();
    let query = query.into_inner();
    let blocked = area.blocked_reason();
    let page = page_index(query.page, PER_PAGE);
    let unused = UnusedFilter::parse(query.unused.as_deref())?;
    let now = state.clock.now();
    // Anything but a positive id names nobody, whose keys are none: better an empty list than
    // every key under a filter that looks applied.
    let owner_user = query.owner_user.as_deref().filter(|s| !s.is_empty()).map(|s| s.parse::<i64>().unwrap_or(0));
    let filter = KeyListFilter {
        owner: match (query.owner.as_deref(), owner_user) {
            // A user's keys: the scope still bounds the list to the area's organization.
            (_, Some(id)) if area.shows_owner() => OwnerFilter::User(id),
            (Some("organization"), _) if area.shows_owner() => OwnerFilter::Organization,
            (Some("personal"), _) if area.shows_owner() => OwnerFilter::Personal,
            _ => OwnerFilter::Any,
        },
        state: match query.state.as_deref() {
            Some("active") => StateFilter::Active,
            Some("inactive") => StateFilter::Inactive,
            Some("expired") => StateFilter::Expired,
            Some("disabled") => StateFilter::Disabled,
            _ => StateFilter::Any,
        },
        expiring_soon: query.expiring.is_some(),
        unused: unused.map(|u| u.at(now)),
        search: query.q.as_deref().map(crate::db::search::term),
        page,
        per_page: PER_PAGE,
    };
    let (rows, total, owner_user_name) = if blocked.is_some() {
        (Vec::new(), 0, None)
    } else {
        let scope = area.scope();
        let row_base = base.clone();
        let filter = filter.clone();
        state
            .db
            .run(move |conn| {
                let (keys, total) = ApiKey::list(conn, scope, &filter)?;
                // Whose keys these are, named only within the list's own organization.
                let owner_user_name = match (scope, filter.owner) {
                    (KeyScope::Organization(organization_id), OwnerFilter::User(id)) => {
                        User::find_in_org(conn, organization_id, id).optional()?.map(|u| u.display_name)
                    }
                    _ => None,
                };
                Ok((view::rows(conn, &keys, &row_base, now)?, total, owner_user_name))
            })
            .await?
    };
    let list = ListView {
        owner: query.owner.clone().unwrap_or_default(),
        owner_user: owner_user.filter(|_| area.shows_owner()).map(|id| id.to_string()).unwrap_or_default(),
        owner_user_name,
        state: query.state.clone().unwrap_or_default(),
        expiring: filter.expiring_soon,
        unused: unused.map(UnusedFilter::param).unwrap_or_default(),
        unused_choices: unused_choices(unused),
        q: query.q.clone().unwrap_or_default(),
        filtered: filter.owner != OwnerFilter::Any
            || filter.state != StateFilter::Any
            || filter.expiring_soon
            || filter.unused.is_some()
            || filter.search.as_deref().is_some_and(|s| !s.is_empty()),
    };
    let params = [
        ("owner", list.owner.as_str()),
        ("owner_user", list.owner_user.as_str()),
        ("state", list.state.as_str()),
        ("expiring", query.expiring.as_deref().unwrap_or_default()),
        ("unused", list.unused.as_str()),
        ("q", list.q.as_str()),
    ];
    let pager = Pager::new(&base, &params, page, PER_PAGE, rows.len(), total);
    render(&ListPage {
        pager,
        ctx,
        base,
        title: area.title(),
        description: area.description(),
        shows_owner: area.shows_owner(),
        blocked,
        rows,
        list,
    })
}
