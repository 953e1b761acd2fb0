//! `Actor`: who is doing something, as the services and the audit log see it.

use chrono::{DateTime, Utc};

use crate::domain::{ClientIp, TokenScope, TokenScopes};

/// The party behind a change, for authorization and the audit log.
#[derive(Debug, Clone)]
pub enum ActorKind {
    /// A signed-in web user.
    User { id: i64, organization_id: i64, email: String, is_admin: bool },
    /// A signed-in support specialist.
    Staff { id: i64, email: String },
    /// An integration presenting an API key, attributed to a user (proxy or owner).
    Key { id: i64, name: String, organization_id: Option<i64>, attributed_user_id: Option<i64> },
    /// A script presenting a management token: it acts with the rights of the web user who
    /// created it (re-read at every use, so a demoted or deactivated creator leaves the token
    /// powerless), narrowed by the token's scopes.
    Token {
        id: i64,
        public_id: String,
        name: String,
        organization_id: i64,
        scopes: TokenScopes,
        /// The creator, as the services check them (their current administrator flag).
        user_id: i64,
        email: String,
        is_admin: bool,
    },
    /// A script presenting a service provider's management token: it acts with the rights of
    /// the support specialist who created it (active now), on that provider's keys only.
    ProviderToken {
        id: i64,
        public_id: String,
        name: String,
        service_provider_id: i64,
        scopes: TokenScopes,
        staff_id: i64,
        email: String,
    },
    /// The operator at the command line.
    System { command: &'static str },
    /// Nobody signed in (login attempts, leak reports).
    Anonymous,
}

/// The web user whose rights an actor uses (see [`Actor::acting_user`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActingUser {
    pub id: i64,
    pub organization_id: i64,
    pub is_admin: bool,
}

/// An actor and the address they came from.
#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub client_ip: ClientIp,
    /// When the actor acts: the application's clock at the request (see `clock`), against
    /// which the services judge expiry, grace periods and quotas.
    pub now: DateTime<Utc>,
}

impl Actor {
    pub fn system(command: &'static str) -> Self {
        Self { kind: ActorKind::System { command }, client_ip: ClientIp(None), now: Utc::now() }
    }

    pub fn anonymous(client_ip: ClientIp) -> Self {
        Self { kind: ActorKind::Anonymous, client_ip, now: Utc::now() }
    }

    /// The same actor acting at `now` (the application's clock).
    pub fn at(self, now: DateTime<Utc>) -> Self {
        Self { now, ..self }
    }

    /// The organization a web user or key acts in.
    pub fn organization_id(&self) -> Option<i64> {
        match &self.kind {
            ActorKind::User { organization_id, .. } => Some(*organization_id),
            ActorKind::Key { organization_id, .. } => *organization_id,
            ActorKind::Token { organization_id, .. } => Some(*organization_id),
            _ => None,
        }
    }

    /// The service provider a provider's token acts for (its changes are recorded there).
    pub fn service_provider_id(&self) -> Option<i64> {
        match &self.kind {
            ActorKind::ProviderToken { service_provider_id, .. } => Some(*service_provider_id),
            _ => None,
        }
    }

    /// The web user whose rights apply: the signed-in user, or a token's creator.
    pub fn acting_user(&self) -> Option<ActingUser> {
        match &self.kind {
            ActorKind::User { id, organization_id, is_admin, .. } => {
                Some(ActingUser { id: *id, organization_id: *organization_id, is_admin: *is_admin })
            }
            ActorKind::Token { user_id, organization_id, is_admin, .. } => {
                Some(ActingUser { id: *user_id, organization_id: *organization_id, is_admin: *is_admin })
            }
            _ => None,
        }
    }

    /// Whether the actor's scopes allow `scope`: always for anyone but a token, whose rights
    /// are its creator's narrowed by its scopes.
    pub fn has_scope(&self, scope: TokenScope) -> bool {
        match &self.kind {
            ActorKind::Token { scopes, .. } | ActorKind::ProviderToken { scopes, .. } => scopes.contains(scope),
            _ => true,
        }
    }

    /// `(type, id, label)` as the audit log records them.
    pub fn audit_identity(&self) -> (&'static str, Option<i64>, String) {
        match &self.kind {
            ActorKind::User { id, email, .. } => ("user", Some(*id), email.clone()),
            ActorKind::Staff { id, email } => ("staff", Some(*id), email.clone()),
            ActorKind::Key { id, name, .. } => ("key", Some(*id), name.clone()),
            ActorKind::Token { id, public_id, name, email, .. } => {
                ("token", Some(*id), format!("token \"{name}\" ({public_id}) of {email}"))
            }
            ActorKind::ProviderToken { id, public_id, name, email, .. } => {
                ("token", Some(*id), format!("token \"{name}\" ({public_id}) of {email} (support staff)"))
            }
            ActorKind::System { command } => ("system", None, format!("keyward {command}")),
            ActorKind::Anonymous => ("anonymous", None, String::new()),
        }
    }
}
