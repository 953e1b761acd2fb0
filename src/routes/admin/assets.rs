//! Admin → Assets: assets (vehicles, devices, sites…) and asset groups that keys can be
//! limited to. Administrators only.

use actix_web::{HttpResponse, get, post, web};
use askama::Template;
use serde::Deserialize;

use crate::{
    auth::{
        OrgAdmin,
        session::{self, FlashLevel},
    },
    db::models::asset::{Asset, AssetGroup},
    error::{AppResult, FieldErrors},
    routes::{
        extract::{HtmlForm, IdPath},
        keys::form::Choice,
        saved,
    },
    services::assets,
    state::AppState,
    views::{PageContext, Section, confirm::ConfirmPage, redirect, render, words::counted},
};

const BASE: &str = "/admin/assets";

/// A page of one asset or group: the administrator and its id.
type AdminPath = IdPath<OrgAdmin>;

fn ids(values: &[String]) -> Vec<i64> {
    values.iter().filter_map(|v| v.parse().ok()).collect()
}

struct AssetRow {
    id: i64,
    code: String,
    name: String,
    groups: Vec<String>,
}

struct GroupRow {
    id: i64,
    name: String,
    members: i64,
}

#[derive(Template)]
#[template(path = "admin/assets/list.html")]
struct ListPage {
    ctx: PageContext,
    assets: Vec<AssetRow>,
    groups: Vec<GroupRow>,
}

#[get("/admin/assets")]
pub async fn list(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (assets, groups, group_names, counts) = state
        .db
        .run(move |conn| {
            Ok((
                Asset::list_for_org(conn, organization_id)?,
                AssetGroup::list_for_org(conn, organization_id)?,
                Asset::group_names(conn, organization_id)?,
                AssetGroup::member_counts(conn, organization_id)?,
            ))
        })
        .await?;
    let mut group_names = group_names;
    let assets = assets
        .into_iter()
        .map(|a| AssetRow {
            groups: group_names.remove(&a.id).unwrap_or_default(),
            id: a.id,
            code: a.code,
            name: a.name,
        })
        .collect();
    let groups = groups
        .into_iter()
        .map(|g| GroupRow { members: counts.get(&g.id).copied().unwrap_or(0), id: g.id, name: g.name })
        .collect();
    let ctx = PageContext::for_user(&admin, "Assets", Section::AdminAssets)?;
    render(&ListPage { ctx, assets, groups })
}

// ---------------------------------------------------------------------------------------
// Assets

#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssetForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    group: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/assets/asset_form.html")]
struct AssetFormPage {
    ctx: PageContext,
    heading: String,
    action_url: String,
    creating: bool,
    values: AssetForm,
    errors: FieldErrors,
    groups: Vec<Choice>,
}

async fn asset_form(
    admin: &OrgAdmin,
    state: &AppState,
    editing: Option<i64>,
    values: AssetForm,
    errors: FieldErrors,
) -> AppResult<AssetFormPage> {
    let organization_id = admin.organization.id;
    let groups = state.db.run(move |conn| Ok(AssetGroup::list_for_org(conn, organization_id)?)).await?;
    let groups = groups.into_iter().map(|g| Choice::group(g, &values.group)).collect();
    let (heading, action_url) = match editing {
        None => ("New asset".to_string(), BASE.to_string()),
        Some(id) => (format!("Edit {}", values.code), format!("{BASE}/{id}/edit")),
    };
    let ctx = PageContext::for_user(admin, &heading, Section::AdminAssets)?;
    Ok(AssetFormPage { ctx, heading, action_url, creating: editing.is_none(), values, errors, groups })
}

#[get("/admin/assets/new")]
pub async fn new_asset(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    render(&asset_form(&admin, &state, None, AssetForm::default(), FieldErrors::new()).await?)
}

async fn save_asset(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    editing: Option<i64>,
    values: AssetForm,
) -> AppResult<HttpResponse> {
    let submitted = values.clone();
    let result = admin
        .change(&state, move |conn, actor, organization_id| {
            let groups = ids(&submitted.group);
            match editing {
                None => assets::create_asset(conn, actor, organization_id, &submitted.code, &submitted.name, &groups),
                Some(id) => assets::update_asset(conn, actor, organization_id, id, &submitted.name, &groups),
            }
        })
        .await;
    let verb = if editing.is_some() { "Saved" } else { "Added" };
    saved::answer(
        &admin.session,
        result,
        |asset| (format!("{verb} {} ({}).", asset.name, asset.code), BASE.into()),
        |errors| asset_form(&admin, &state, editing, values, errors),
    )
    .await
}

#[post("/admin/assets")]
pub async fn create_asset(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    form: HtmlForm<AssetForm>,
) -> AppResult<HttpResponse> {
    save_asset(admin, state, None, form.into_inner()).await
}

#[get("/admin/assets/{id}/edit")]
pub async fn edit_asset_form(
    IdPath { who: admin, id: asset_id }: AdminPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (asset, groups) = state
        .db
        .run(move |conn| {
            let asset = Asset::find_in_org(conn, organization_id, asset_id)?;
            Ok((asset, AssetGroup::ids_of_asset(conn, asset_id)?))
        })
        .await?;
    let values =
        AssetForm { code: asset.code, name: asset.name, group: groups.iter().map(|g| g.to_string()).collect() };
    render(&asset_form(&admin, &state, Some(asset_id), values, FieldErrors::new()).await?)
}

#[post("/admin/assets/{id}/edit")]
pub async fn edit_asset(
    IdPath { who: admin, id }: AdminPath,
    state: web::Data<AppState>,
    form: HtmlForm<AssetForm>,
) -> AppResult<HttpResponse> {
    save_asset(admin, state, Some(id), form.into_inner()).await
}

#[get("/admin/assets/{id}/delete")]
pub async fn delete_asset_form(
    IdPath { who: admin, id: asset_id }: AdminPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (asset, keys) = state
        .db
        .run(move |conn| {
            Ok((Asset::find_in_org(conn, organization_id, asset_id)?, Asset::keys_limited_to(conn, asset_id)?.len()))
        })
        .await?;
    let heading = format!("Delete {} ({})?", asset.name, asset.code);
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminAssets)?;
    render(&ConfirmPage::deletion(
        ctx,
        heading,
        "The asset leaves its groups and every key limited to it.".into(),
        (keys > 0).then(|| format!("Keys limited to this asset ({}) lose access to it at once.", counted(keys, "key"))),
        format!("{BASE}/{asset_id}/delete"),
        "Delete asset",
        BASE,
    ))
}

#[post("/admin/assets/{id}/delete")]
pub async fn delete_asset(IdPath { who: admin, id }: AdminPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let asset = admin
        .change(&state, move |conn, actor, organization| assets::delete_asset(conn, actor, organization, id))
        .await?;
    session::flash(&admin.session, FlashLevel::Success, format!("Deleted {} ({}).", asset.name, asset.code));
    Ok(redirect(BASE))
}

// ---------------------------------------------------------------------------------------
// Groups

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GroupForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    asset: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/assets/group_form.html")]
struct GroupFormPage {
    ctx: PageContext,
    heading: String,
    action_url: String,
    values: GroupForm,
    errors: FieldErrors,
    assets: Vec<Choice>,
}

async fn group_form(
    admin: &OrgAdmin,
    state: &AppState,
    editing: Option<i64>,
    values: GroupForm,
    errors: FieldErrors,
) -> AppResult<GroupFormPage> {
    let organization_id = admin.organization.id;
    let assets = state.db.run(move |conn| Ok(Asset::list_for_org(conn, organization_id)?)).await?;
    let assets = assets.into_iter().map(|a| Choice::asset(a, &values.asset)).collect();
    let (heading, action_url) = match editing {
        None => ("New asset group".to_string(), format!("{BASE}/groups")),
        Some(id) => (format!("Edit {}", values.name), format!("{BASE}/groups/{id}/edit")),
    };
    let ctx = PageContext::for_user(admin, &heading, Section::AdminAssets)?;
    Ok(GroupFormPage { ctx, heading, action_url, values, errors, assets })
}

#[get("/admin/assets/groups/new")]
pub async fn new_group(admin: OrgAdmin, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    render(&group_form(&admin, &state, None, GroupForm::default(), FieldErrors::new()).await?)
}

async fn save_group(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    editing: Option<i64>,
    values: GroupForm,
) -> AppResult<HttpResponse> {
    let submitted = values.clone();
    let result = admin
        .change(&state, move |conn, actor, organization_id| {
            let members = ids(&submitted.asset);
            match editing {
                None => assets::create_group(conn, actor, organization_id, &submitted.name, &members),
                Some(id) => assets::update_group(conn, actor, organization_id, id, &submitted.name, &members),
            }
        })
        .await;
    let verb = if editing.is_some() { "Saved" } else { "Created" };
    saved::answer(
        &admin.session,
        result,
        |group| (format!("{verb} the group {}.", group.name), BASE.into()),
        |errors| group_form(&admin, &state, editing, values, errors),
    )
    .await
}

#[post("/admin/assets/groups")]
pub async fn create_group(
    admin: OrgAdmin,
    state: web::Data<AppState>,
    form: HtmlForm<GroupForm>,
) -> AppResult<HttpResponse> {
    save_group(admin, state, None, form.into_inner()).await
}

#[get("/admin/assets/groups/{id}/edit")]
pub async fn edit_group_form(
    IdPath { who: admin, id: group_id }: AdminPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (group, members) = state
        .db
        .run(move |conn| {
            Ok((AssetGroup::find_in_org(conn, organization_id, group_id)?, AssetGroup::member_ids(conn, group_id)?))
        })
        .await?;
    let values = GroupForm { name: group.name, asset: members.iter().map(|m| m.to_string()).collect() };
    render(&group_form(&admin, &state, Some(group_id), values, FieldErrors::new()).await?)
}

#[post("/admin/assets/groups/{id}/edit")]
pub async fn edit_group(
    IdPath { who: admin, id }: AdminPath,
    state: web::Data<AppState>,
    form: HtmlForm<GroupForm>,
) -> AppResult<HttpResponse> {
    save_group(admin, state, Some(id), form.into_inner()).await
}

#[get("/admin/assets/groups/{id}/delete")]
pub async fn delete_group_form(
    IdPath { who: admin, id: group_id }: AdminPath,
    state: web::Data<AppState>,
) -> AppResult<HttpResponse> {
    let organization_id = admin.organization.id;
    let (group, keys) = state
        .db
        .run(move |conn| {
            Ok((
                AssetGroup::find_in_org(conn, organization_id, group_id)?,
                AssetGroup::keys_limited_to(conn, group_id)?.len(),
            ))
        })
        .await?;
    let heading = format!("Delete the group {}?", group.name);
    let ctx = PageContext::for_user(&admin, &heading, Section::AdminAssets)?;
    render(&ConfirmPage::deletion(
        ctx,
        heading,
        "The assets themselves stay; only the group goes.".into(),
        (keys > 0).then(|| {
            format!("Keys limited to this group ({}) lose access to its assets at once.", counted(keys, "key"))
        }),
        format!("{BASE}/groups/{group_id}/delete"),
        "Delete group",
        BASE,
    ))
}

#[post("/admin/assets/groups/{id}/delete")]
pub async fn delete_group(IdPath { who: admin, id }: AdminPath, state: web::Data<AppState>) -> AppResult<HttpResponse> {
    let group = admin
        .change(&state, move |conn, actor, organization| assets::delete_group(conn, actor, organization, id))
        .await?;
    session::flash(&admin.session, FlashLevel::Success, format!("Deleted the group {}.", group.name));
    Ok(redirect(BASE))
}
