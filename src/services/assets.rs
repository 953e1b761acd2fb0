//! Assets and asset groups of an organization (administrators). `code` is the platform's
//! identifier of an asset (what the verification API receives) and is fixed once created;
//! names are for people. Deleting an asset or group removes it from every key limited to it;
//! the audit event lists those keys. A key limited only to deleted assets reaches nothing.

use crate::services::audit::AuditAction;
use diesel::{OptionalExtension, PgConnection};
use serde_json::json;

use crate::{
    db::models::asset::{Asset, AssetGroup, asset_ids_in_org, group_ids_in_org},
    domain::text::clean_line,
    error::{AppError, FieldErrors, invalid},
    services::{
        Actor,
        admin::require_admin,
        audit::{self, Entry, Target},
    },
};

/// Checks an asset code: 1–64 letters, digits and `._:-`, starting with a letter or digit.
pub fn parse_code(input: &str) -> Result<String, String> {
    let code = input.trim();
    let valid = !code.is_empty()
        && code.len() <= 64
        && code.as_bytes()[0].is_ascii_alphanumeric()
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:".contains(&b));
    if valid {
        Ok(code.to_string())
    } else {
        Err("Use 1–64 letters, digits, dots, dashes, underscores or colons.".into())
    }
}

fn asset_target(asset: &Asset) -> Target {
    Target::new("asset", &asset.code, &asset.name)
}

fn group_target(group: &AssetGroup) -> Target {
    Target::new("asset_group", group.id, &group.name)
}

pub fn create_asset(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    code: &str,
    name: &str,
    group_ids: &[i64],
) -> Result<Asset, AppError> {
    require_admin(conn, actor, organization_id)?;
    let mut errors = FieldErrors::new();
    let code = errors.take("code", parse_code(code));
    let name = errors.take("name", clean_line(name, 1, 100, "name"));
    if let Some(code) = &code
        && Asset::list_for_org(conn, organization_id)?.iter().any(|a| a.code == *code)
    {
        errors.add("code", "An asset with this code exists already.");
    }
    let (code, name) = errors.finish(code.zip(name))?;
    let asset = Asset::insert(conn, organization_id, &code, &name)?;
    let groups = group_ids_in_org(conn, organization_id, group_ids)?;
    AssetGroup::set_groups_of_asset(conn, organization_id, asset.id, &groups)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::AssetCreate)
            .organization(Some(organization_id))
            .target(asset_target(&asset))
            .details(json!({ "groups": groups })),
    )?;
    Ok(asset)
}

pub fn update_asset(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    asset_id: i64,
    name: &str,
    group_ids: &[i64],
) -> Result<Asset, AppError> {
    require_admin(conn, actor, organization_id)?;
    let asset = Asset::find_in_org(conn, organization_id, asset_id).optional()?.ok_or(AppError::NotFound)?;
    let name = clean_line(name, 1, 100, "name").map_err(|e| invalid("name", e))?;
    let renamed = Asset::rename(conn, asset.id, &name)?;
    let groups = group_ids_in_org(conn, organization_id, group_ids)?;
    AssetGroup::set_groups_of_asset(conn, organization_id, asset.id, &groups)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::AssetUpdate)
            .organization(Some(organization_id))
            .target(asset_target(&renamed))
            .details(json!({ "name": { "from": asset.name, "to": renamed.name }, "groups": groups })),
    )?;
    Ok(renamed)
}

pub fn delete_asset(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    asset_id: i64,
) -> Result<Asset, AppError> {
    require_admin(conn, actor, organization_id)?;
    let asset = Asset::find_in_org(conn, organization_id, asset_id).optional()?.ok_or(AppError::NotFound)?;
    let keys = Asset::keys_limited_to(conn, asset.id)?;
    Asset::delete(conn, asset.id)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::AssetDelete)
            .organization(Some(organization_id))
            .target(asset_target(&asset))
            .details(json!({ "keys_losing_it": keys })),
    )?;
    Ok(asset)
}

pub fn create_group(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    name: &str,
    asset_ids: &[i64],
) -> Result<AssetGroup, AppError> {
    require_admin(conn, actor, organization_id)?;
    let name = clean_line(name, 1, 100, "name").map_err(|e| invalid("name", e))?;
    if AssetGroup::list_for_org(conn, organization_id)?.iter().any(|g| g.name.eq_ignore_ascii_case(&name)) {
        return Err(invalid("name", "A group with this name exists already."));
    }
    let members = asset_ids_in_org(conn, organization_id, asset_ids)?;
    let group = AssetGroup::insert(conn, organization_id, &name, &members)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::AssetGroupCreate)
            .organization(Some(organization_id))
            .target(group_target(&group))
            .details(json!({ "assets": members })),
    )?;
    Ok(group)
}

pub fn update_group(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    group_id: i64,
    name: &str,
    asset_ids: &[i64],
) -> Result<AssetGroup, AppError> {
    require_admin(conn, actor, organization_id)?;
    let group = AssetGroup::find_in_org(conn, organization_id, group_id).optional()?.ok_or(AppError::NotFound)?;
    let name = clean_line(name, 1, 100, "name").map_err(|e| invalid("name", e))?;
    if AssetGroup::list_for_org(conn, organization_id)?
        .iter()
        .any(|g| g.id != group.id && g.name.eq_ignore_ascii_case(&name))
    {
        return Err(invalid("name", "A group with this name exists already."));
    }
    let renamed = AssetGroup::rename(conn, group.id, &name)?;
    let members = asset_ids_in_org(conn, organization_id, asset_ids)?;
    AssetGroup::set_members(conn, organization_id, group.id, &members)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::AssetGroupUpdate)
            .organization(Some(organization_id))
            .target(group_target(&renamed))
            .details(json!({ "name": { "from": group.name, "to": renamed.name }, "assets": members })),
    )?;
    Ok(renamed)
}

pub fn delete_group(
    conn: &mut PgConnection,
    actor: &Actor,
    organization_id: i64,
    group_id: i64,
) -> Result<AssetGroup, AppError> {
    require_admin(conn, actor, organization_id)?;
    let group = AssetGroup::find_in_org(conn, organization_id, group_id).optional()?.ok_or(AppError::NotFound)?;
    let keys = AssetGroup::keys_limited_to(conn, group.id)?;
    AssetGroup::delete(conn, group.id)?;
    audit::record(
        conn,
        actor,
        Entry::new(AuditAction::AssetGroupDelete)
            .organization(Some(organization_id))
            .target(group_target(&group))
            .details(json!({ "keys_losing_it": keys })),
    )?;
    Ok(group)
}

#[cfg(test)]
mod tests {
    use super::parse_code;

    #[test]
    fn asset_codes_are_checked() {
        assert_eq!(parse_code(" TRK-101 ").unwrap(), "TRK-101");
        assert!(parse_code("urn:vehicle:7.a_b").is_ok());
        for bad in ["", "-lead", "has space", "ümlaut", &"x".repeat(65)] {
            assert!(parse_code(bad).is_err(), "{bad:?}");
        }
    }
}
