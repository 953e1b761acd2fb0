//! `Granted<R>`: a signed-in web user who holds the capability `R` names. A handler that
//! takes `admin: OrgAdmin` or `manager: UserManager` states its requirement in its signature
//! and runs only once the check has passed; there is no other way to obtain the value.

use std::marker::PhantomData;

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::future::LocalBoxFuture;

use crate::{auth::CurrentUser, domain::Capability, error::AppError};

/// A requirement a handler can name: one capability.
pub trait Requirement: 'static {
    const CAPABILITY: Capability;
}

macro_rules! requirements {
    ($($(#[$doc:meta])* $name:ident => $capability:ident;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;
            impl Requirement for $name {
                const CAPABILITY: Capability = Capability::$capability;
            }
        )*
    };
}

requirements! {
    /// An organization administrator.
    Administer => Administer;
    /// Someone who may manage the organization's users.
    ManageUsers => ManageUsers;
    /// Someone who may manage every key of the organization.
    ManageKeys => ManageKeys;
    /// Someone who may read the audit log.
    ReadAudit => ReadAudit;
    /// Someone to whom any part of the Admin area is open.
    EnterAdmin => EnterAdmin;
}

/// A signed-in web user holding `R`'s capability.
pub struct Granted<R: Requirement>(pub CurrentUser, PhantomData<R>);

impl<R: Requirement> std::fmt::Debug for Granted<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Granted").field(&R::CAPABILITY).field(&self.0).finish()
    }
}

impl<R: Requirement> Clone for Granted<R> {
    fn clone(&self) -> Self {
        Granted(self.0.clone(), PhantomData)
    }
}

impl<R: Requirement> std::ops::Deref for Granted<R> {
    type Target = CurrentUser;
    fn deref(&self) -> &CurrentUser {
        &self.0
    }
}

impl<R: Requirement> FromRequest for Granted<R> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.can.allows(R::CAPABILITY) { Ok(Granted(user, PhantomData)) } else { Err(AppError::Forbidden) }
        })
    }
}

/// A signed-in organization administrator.
pub type OrgAdmin = Granted<Administer>;
/// A signed-in user who may manage users.
pub type UserManager = Granted<ManageUsers>;
/// A signed-in user who may manage every key of the organization.
pub type KeyManager = Granted<ManageKeys>;
/// A signed-in user who may read the audit log.
pub type AuditReader = Granted<ReadAudit>;
/// A signed-in user to whom the Admin area is open.
pub type AdminVisitor = Granted<EnterAdmin>;
