//! Actor extractors: a handler names the account it needs in its signature
//! (`user: CurrentUser`, `staff: CurrentStaff`, or a capability such as `admin: OrgAdmin`,
//! see [`super::granted`]) and only runs once that account is signed in, active, and of the
//! right kind. The account is re-read on every
//! request, so deactivation or a lost permission takes effect on the next request.

use crate::services::audit::AuditAction;
use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, http::Method, web};
use chrono::{DateTime, Utc};
use diesel::{OptionalExtension, PgConnection};
use futures_util::future::LocalBoxFuture;

use crate::{
    auth::session::{self, ActorKind as SessionKind, SessionActor},
    db::models::{Organization, StaffAccount, User},
    domain::{Capabilities, ClientIp},
    error::AppError,
    services::actor::{Actor, ActorKind},
    state::AppState,
};

/// A signed-in, active web user with their organization and capabilities (computed once, here).
#[derive(Clone)]
pub struct CurrentUser {
    pub user: User,
    pub organization: Organization,
    pub can: Capabilities,
    pub session: Session,
    pub client_ip: ClientIp,
    /// The application's clock at this request.
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for CurrentUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentUser").field("id", &self.user.id).field("organization", &self.organization.id).finish()
    }
}

impl std::fmt::Debug for CurrentStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentStaff").field("id", &self.staff.id).finish()
    }
}

impl CurrentUser {
    /// The user as the services and the audit log see them.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::User {
                id: self.user.id,
                organization_id: self.organization.id,
                email: self.user.email.clone(),
                is_admin: self.user.is_admin,
            },
            client_ip: self.client_ip,
            now: self.now,
        }
    }

    /// Runs `work` in a transaction as this user, in their organization: the actor and the
    /// organization's id are what every service that changes an organization's data takes.
    pub async fn change<T: Send + 'static>(
        &self,
        state: &AppState,
        work: impl FnOnce(&mut PgConnection, &Actor, i64) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let (actor, organization_id) = (self.actor(), self.organization.id);
        state.db.transaction(move |conn| work(conn, &actor, organization_id)).await
    }
}

/// A signed-in, active support specialist.
#[derive(Clone)]
pub struct CurrentStaff {
    pub staff: StaffAccount,
    pub session: Session,
    pub client_ip: ClientIp,
    /// The application's clock at this request.
    pub now: DateTime<Utc>,
}

impl CurrentStaff {
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Staff { id: self.staff.id, email: self.staff.email.clone() },
            client_ip: self.client_ip,
            now: self.now,
        }
    }
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>, AppError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| AppError::Internal("AppState is not registered".into()))
}

/// The session's actor, if it is of `kind` and within the absolute timeout. Otherwise
/// names the page (for GET) so that signing in returns to it.
fn session_actor(
    req: &HttpRequest,
    session: &Session,
    kind: SessionKind,
    state: &AppState,
) -> Result<SessionActor, AppError> {
    let Some(actor) = session::actor(session) else {
        // The page to come back to travels in the login URL, not the session: anonymous
        // requests must not create session rows.
        let next = (req.method() == Method::GET).then(|| req.uri().path_and_query().map(|p| p.as_str().to_string()));
        // Half-signed-in: the second factor is due, and nothing else opens meanwhile. The
        // same for a session that must set one up first.
        let now = state.clock.now();
        return Err(match (session::pending(session), session::enrolling(session)) {
            (Some(pending), _) if !pending.expired(now) => AppError::SecondFactorRequired,
            (None, Some(enrolling)) if !enrolling.enrolment_expired(now) => AppError::EnrolmentRequired,
            (Some(_), _) | (_, Some(_)) => {
                session::sign_out(session);
                AppError::LoginRequired(next.flatten())
            }
            (None, None) => AppError::LoginRequired(next.flatten()),
        });
    };
    let age = state.clock.now().timestamp() - actor.signed_in_at;
    if age < 0 || age as u64 > state.session_max.as_secs() {
        session::sign_out(session);
        return Err(AppError::LoginRequired(None));
    }
    if actor.kind != kind {
        return Err(AppError::Forbidden);
    }
    Ok(actor)
}

/// The session's actor for `kind`; an account of the other kind trying to change something
/// here (a support specialist posting to an organization's pages, say) is refused and the
/// attempt recorded as denied in the audit log.
async fn signed_in_as(
    req: &HttpRequest,
    session: &Session,
    kind: SessionKind,
    state: &AppState,
) -> Result<SessionActor, AppError> {
    match session_actor(req, session, kind, state) {
        Err(AppError::Forbidden) if !matches!(*req.method(), Method::GET | Method::HEAD) => {
            if let Some(actor) = session::actor(session) {
                record_wrong_area(state, req, actor).await;
            }
            Err(AppError::Forbidden)
        }
        other => other,
    }
}

async fn record_wrong_area(state: &AppState, req: &HttpRequest, actor: SessionActor) {
    let client_ip = ClientIp::of(req);
    let now = state.clock.now();
    let details = serde_json::json!({ "method": req.method().as_str(), "path": req.path() });
    let result = state
        .db
        .transaction(move |conn| {
            let actor = match actor.kind {
                SessionKind::User => {
                    let user = User::find(conn, actor.id)?;
                    Actor {
                        kind: ActorKind::User {
                            id: user.id,
                            organization_id: user.organization_id,
                            email: user.email,
                            is_admin: user.is_admin,
                        },
                        client_ip,
                        now,
                    }
                }
                SessionKind::Staff => {
                    let staff = StaffAccount::find(conn, actor.id)?;
                    Actor { kind: ActorKind::Staff { id: staff.id, email: staff.email }, client_ip, now }
                }
            };
            crate::services::audit::record(
                conn,
                &actor,
                crate::services::audit::Entry::new(AuditAction::AccessDenied)
                    .outcome(crate::services::audit::Outcome::Denied)
                    .details(details),
            )?;
            Ok(())
        })
        .await;
    if let Err(e) = result {
        log::warn!("cannot record a denied attempt: {e}");
    }
}

/// A signed-in account of `kind` as `load` reads it, with the request's session, address and
/// time. `load` gives `None` for an account that is gone or deactivated: the session is
/// signed out and the page asks to sign in again.
async fn signed_in_account<T: Send + 'static>(
    req: HttpRequest,
    kind: SessionKind,
    load: impl FnOnce(&mut PgConnection, i64) -> Result<Option<T>, AppError> + Send + 'static,
) -> Result<(T, Session, ClientIp, DateTime<Utc>), AppError> {
    let state = state(&req)?;
    let session = req.get_session();
    let actor = signed_in_as(&req, &session, kind, &state).await?;
    let Some(account) = state.db.run(move |conn| load(conn, actor.id)).await? else {
        session::sign_out(&session);
        return Err(AppError::LoginRequired(None));
    };
    Ok((account, session, ClientIp::of(&req), state.clock.now()))
}

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let account = signed_in_account(req.clone(), SessionKind::User, |conn, id| {
            let Some(user) = User::find(conn, id).optional()?.filter(|user| user.active) else { return Ok(None) };
            let organization = Organization::find(conn, user.organization_id)?;
            let permissions = user.effective_permissions(conn)?;
            Ok(Some((user, organization, permissions)))
        });
        Box::pin(async move {
            let ((user, organization, permissions), session, client_ip, now) = account.await?;
            let can = Capabilities::new(user.is_admin, permissions);
            Ok(CurrentUser { user, organization, can, session, client_ip, now })
        })
    }
}

impl FromRequest for CurrentStaff {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let account = signed_in_account(req.clone(), SessionKind::Staff, |conn, id| {
            Ok(StaffAccount::find(conn, id).optional()?.filter(|staff| staff.active))
        });
        Box::pin(async move {
            let (staff, session, client_ip, now) = account.await?;
            Ok(CurrentStaff { staff, session, client_ip, now })
        })
    }
}
