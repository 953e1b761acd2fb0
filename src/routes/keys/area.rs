//! Key areas: the places where keys are managed. The key pages are written once, generic over
//! [`KeyArea`]; an area says who is acting, which keys it lists, who owns the keys it
//! creates, and where its pages live.

use actix_session::Session;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use futures_util::future::LocalBoxFuture;

use crate::{
    auth::{CurrentStaff, CurrentUser, KeyManager, OrgAdmin},
    db::models::{ServiceProvider, User, api_key::KeyScope},
    domain::{Capability, Permission},
    error::{AppError, AppResult},
    routes::extract::who_then_id,
    services::{Actor, keys::NewKeyOwner},
    views::{PageContext, Section},
};

/// A place where keys are managed.
pub trait KeyArea: FromRequest<Error = AppError> + 'static {
    /// URL of the key list, e.g. `/account/keys`.
    fn base(&self) -> String;
    fn actor(&self) -> Actor;
    fn session(&self) -> &Session;
    fn context(&self, title: &str) -> AppResult<PageContext>;
    /// The keys this area lists.
    fn scope(&self) -> KeyScope;
    /// The owner of keys created here.
    fn new_owner(&self) -> NewKeyOwner;
    /// Heading of the list page.
    fn title(&self) -> String;
    /// Heading of the new-key dialog.
    fn new_key_heading(&self) -> String {
        "New API key".into()
    }
    /// A sentence under the heading.
    fn description(&self) -> &'static str;
    /// Whether the list shows whose each key is (areas with several owners).
    fn shows_owner(&self) -> bool;
    /// Why keys cannot be created or managed here, if they cannot.
    fn blocked_reason(&self) -> Option<String> {
        None
    }
    /// Where the dialogs of this area go back to (cancel, "Done" after a secret).
    fn return_href(&self) -> String {
        self.base()
    }
    /// Sudo mode for creating a key here (`auth::sudo`): areas whose new keys are sensitive
    /// enough (a service provider's) ask for a recent proof of the person, returning to
    /// `return_to`.
    fn require_recent_for_create(&self, _return_to: &str) -> AppResult<()> {
        Ok(())
    }
    /// The page of key `public_id`.
    fn key_href(&self, public_id: &str) -> String {
        format!("{}/{public_id}", self.base())
    }
}

/// Staff → Service providers → a provider's keys (support staff only).
pub struct ProviderKeys {
    pub staff: CurrentStaff,
    pub provider: ServiceProvider,
}

impl FromRequest for ProviderKeys {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let staff_and_id = who_then_id::<CurrentStaff>(req, payload, "provider_id");
        let state = req.app_data::<actix_web::web::Data<crate::state::AppState>>().cloned();
        Box::pin(async move {
            let (staff, provider_id) = staff_and_id.await?;
            let Some(state) = state else { return Err(AppError::NotFound) };
            let provider = state.db.run(move |conn| Ok(ServiceProvider::find(conn, provider_id)?)).await?;
            Ok(ProviderKeys { staff, provider })
        })
    }
}

impl KeyArea for ProviderKeys {
    fn require_recent_for_create(&self, return_to: &str) -> AppResult<()> {
        self.staff.require_recent(return_to)
    }
    fn base(&self) -> String {
        format!("/staff/providers/{}/keys", self.provider.id)
    }
    fn actor(&self) -> Actor {
        self.staff.actor()
    }
    fn session(&self) -> &Session {
        &self.staff.session
    }
    fn context(&self, title: &str) -> AppResult<PageContext> {
        // Every page and dialog here names the provider: staff switch between several.
        let name = &self.provider.name;
        let title = if title.contains(name.as_str()) { title.to_string() } else { format!("{title} · {name}") };
        Ok(PageContext::for_staff(&self.staff, &title, Section::StaffProviders)?.about(format!("Keys of {name}")))
    }
    fn scope(&self) -> KeyScope {
        KeyScope::ServiceProvider(self.provider.id)
    }
    fn new_owner(&self) -> NewKeyOwner {
        NewKeyOwner::ServiceProvider { service_provider_id: self.provider.id }
    }
    fn title(&self) -> String {
        format!("API keys of {}", self.provider.name)
    }
    fn new_key_heading(&self) -> String {
        format!("New API key for {}", self.provider.name)
    }
    fn description(&self) -> &'static str {
        "Keys of this service provider (its admin panel / Locator Control Manager). Only support staff create them."
    }
    fn shows_owner(&self) -> bool {
        false
    }
}

/// Account → API keys: a web user's own personal keys.
pub struct OwnKeys(pub CurrentUser);

/// Admin → API keys: every key of the organization (administrators and `keys.manage`).
pub struct OrganizationKeys(pub KeyManager);

impl FromRequest for OwnKeys {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = CurrentUser::from_request(req, payload);
        Box::pin(async move { Ok(OwnKeys(user.await?)) })
    }
}

impl FromRequest for OrganizationKeys {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let manager = KeyManager::from_request(req, payload);
        Box::pin(async move { Ok(OrganizationKeys(manager.await?)) })
    }
}

impl KeyArea for OwnKeys {
    fn base(&self) -> String {
        "/account/keys".into()
    }
    fn actor(&self) -> Actor {
        self.0.actor()
    }
    fn session(&self) -> &Session {
        &self.0.session
    }
    fn context(&self, title: &str) -> AppResult<PageContext> {
        PageContext::for_user(&self.0, title, Section::AccountKeys)
    }
    fn scope(&self) -> KeyScope {
        KeyScope::OwnedBy { organization_id: self.0.organization.id, user_id: self.0.user.id }
    }
    fn new_owner(&self) -> NewKeyOwner {
        NewKeyOwner::Personal { user_id: self.0.user.id, organization_id: self.0.organization.id }
    }
    fn title(&self) -> String {
        "API keys".into()
    }
    fn description(&self) -> &'static str {
        "Your personal keys. Calls made with them are attributed to you."
    }
    fn shows_owner(&self) -> bool {
        false
    }
    fn blocked_reason(&self) -> Option<String> {
        (!self.0.can.allows(Capability::OwnKeys)).then(|| {
            format!(
                "API key access has not been granted to you, so you cannot create or manage API keys. \
                 Ask an administrator of {} to turn it on for your account.",
                self.0.organization.name
            )
        })
    }
}

impl KeyArea for OrganizationKeys {
    fn base(&self) -> String {
        "/admin/keys".into()
    }
    fn actor(&self) -> Actor {
        self.0.actor()
    }
    fn session(&self) -> &Session {
        &self.0.session
    }
    fn context(&self, title: &str) -> AppResult<PageContext> {
        PageContext::for_user(&self.0, title, Section::AdminKeys)
    }
    fn scope(&self) -> KeyScope {
        KeyScope::Organization(self.0.organization.id)
    }
    fn new_owner(&self) -> NewKeyOwner {
        NewKeyOwner::Organization { organization_id: self.0.organization.id }
    }
    fn title(&self) -> String {
        "Organization API keys".into()
    }
    fn description(&self) -> &'static str {
        "Every key of the organization: members' personal keys and organization keys, which act \
         through a proxy user."
    }
    fn shows_owner(&self) -> bool {
        true
    }
}

/// Admin → Users → a user → "Add key": an administrator creates a personal key owned by one
/// user of the organization. Only administrators: a secret of someone else's personal key acts
/// as that person, and the ceiling rule gives such a secret to administrators only (a
/// `keys.manage` holder would be refused by the key service anyway). Only the create dialog
/// lives here; the key's own page is in Admin → API keys.
pub struct UserKeys {
    pub admin: OrgAdmin,
    pub user: User,
    /// Whether the user may have personal keys (active, with API key access).
    pub has_access: bool,
}

impl FromRequest for UserKeys {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let admin_and_id = who_then_id::<OrgAdmin>(req, payload, "user_id");
        let state = req.app_data::<actix_web::web::Data<crate::state::AppState>>().cloned();
        Box::pin(async move {
            let (admin, user_id) = admin_and_id.await?;
            let Some(state) = state else { return Err(AppError::NotFound) };
            let organization_id = admin.organization.id;
            // A user of another organization is "not found", like any missing one.
            let (user, has_access) = state
                .db
                .run(move |conn| {
                    let user = User::find_in_org(conn, organization_id, user_id)?;
                    let has_access = user.active && user.effective_permissions(conn)?.contains(Permission::KeysOwn);
                    Ok((user, has_access))
                })
                .await?;
            Ok(UserKeys { admin, user, has_access })
        })
    }
}

impl KeyArea for UserKeys {
    fn base(&self) -> String {
        format!("/admin/users/{}/keys", self.user.id)
    }
    fn actor(&self) -> Actor {
        self.admin.actor()
    }
    fn session(&self) -> &Session {
        &self.admin.session
    }
    fn context(&self, title: &str) -> AppResult<PageContext> {
        PageContext::for_user(&self.admin, title, Section::AdminUsers)
    }
    fn scope(&self) -> KeyScope {
        KeyScope::OwnedBy { organization_id: self.admin.organization.id, user_id: self.user.id }
    }
    fn new_owner(&self) -> NewKeyOwner {
        NewKeyOwner::Personal { user_id: self.user.id, organization_id: self.admin.organization.id }
    }
    fn title(&self) -> String {
        format!("API keys of {}", self.user.display_name)
    }
    fn new_key_heading(&self) -> String {
        format!("New API key for {}", self.user.display_name)
    }
    fn description(&self) -> &'static str {
        "A personal key owned by this user: calls made with it are attributed to them, and it \
         never does more than their roles allow."
    }
    fn shows_owner(&self) -> bool {
        false
    }
    fn blocked_reason(&self) -> Option<String> {
        (!self.has_access).then(|| format!("{} does not have API key access.", self.user.display_name))
    }
    fn return_href(&self) -> String {
        format!("/admin/users/{}", self.user.id)
    }
    fn key_href(&self, public_id: &str) -> String {
        format!("/admin/keys/{public_id}")
    }
}
