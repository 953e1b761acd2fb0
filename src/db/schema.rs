// @generated automatically by Diesel CLI.

diesel::table! {
    api_actions (id) {
        id -> Int8,
        code -> Text,
        description -> Text,
        retired_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    api_key_actions (api_key_id, api_action_id) {
        api_key_id -> Int8,
        api_action_id -> Int8,
    }
}

diesel::table! {
    api_key_asset_groups (api_key_id, asset_group_id) {
        organization_id -> Int8,
        api_key_id -> Int8,
        asset_group_id -> Int8,
    }
}

diesel::table! {
    api_key_assets (api_key_id, asset_id) {
        organization_id -> Int8,
        api_key_id -> Int8,
        asset_id -> Int8,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        public_id -> Text,
        environment -> Text,
        organization_id -> Nullable<Int8>,
        owner_user_id -> Nullable<Int8>,
        owner_organization_id -> Nullable<Int8>,
        owner_service_provider_id -> Nullable<Int8>,
        name -> Text,
        comment -> Text,
        all_actions -> Bool,
        all_assets -> Bool,
        allowed_cidrs -> Array<Nullable<Cidr>>,
        expires_at -> Nullable<Timestamptz>,
        proxy_user_id -> Nullable<Int8>,
        active -> Bool,
        secret_hash -> Bytea,
        secret_last4 -> Text,
        previous_secret_hash -> Nullable<Bytea>,
        previous_secret_last4 -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        previous_secret_last_used_at -> Nullable<Timestamptz>,
        rekeyed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        created_by_user_id -> Nullable<Int8>,
        created_by_staff_id -> Nullable<Int8>,
        updated_at -> Timestamptz,
        deactivated_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        last_used_ip -> Nullable<Inet>,
        create_token -> Nullable<Text>,
        rekey_token -> Nullable<Text>,
        deactivation_reason -> Nullable<Text>,
    }
}

diesel::table! {
    asset_group_members (asset_group_id, asset_id) {
        organization_id -> Int8,
        asset_group_id -> Int8,
        asset_id -> Int8,
    }
}

diesel::table! {
    asset_groups (id) {
        id -> Int8,
        organization_id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    assets (id) {
        id -> Int8,
        organization_id -> Int8,
        code -> Text,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Int8,
        occurred_at -> Timestamptz,
        organization_id -> Nullable<Int8>,
        service_provider_id -> Nullable<Int8>,
        actor_type -> Text,
        actor_id -> Nullable<Int8>,
        actor_label -> Text,
        action -> Text,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        target_label -> Nullable<Text>,
        result -> Text,
        client_ip -> Nullable<Inet>,
        details -> Jsonb,
    }
}

diesel::table! {
    jobs (name) {
        name -> Text,
        next_run_at -> Timestamptz,
        last_run_at -> Nullable<Timestamptz>,
        last_outcome -> Text,
    }
}

diesel::table! {
    key_usage_addresses (api_key_id, address) {
        api_key_id -> Int8,
        address -> Inet,
        first_seen_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        uses -> Int8,
        previous_secret_last_seen_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    key_expiry_changes (api_key_id) {
        api_key_id -> Int8,
        changed_at -> Timestamptz,
    }
}

diesel::table! {
    key_usage_daily (api_key_id, day, code, action, previous_secret) {
        api_key_id -> Int8,
        day -> Date,
        code -> Text,
        action -> Text,
        previous_secret -> Bool,
        count -> Int8,
    }
}

diesel::table! {
    key_usage_hourly (api_key_id, hour, code, action, previous_secret) {
        api_key_id -> Int8,
        hour -> Timestamptz,
        code -> Text,
        action -> Text,
        previous_secret -> Bool,
        count -> Int8,
    }
}

diesel::table! {
    mail_messages (id) {
        id -> Int8,
        event_id -> Nullable<Int8>,
        organization_id -> Nullable<Int8>,
        service_provider_id -> Nullable<Int8>,
        recipient_user_id -> Nullable<Int8>,
        recipient_staff_id -> Nullable<Int8>,
        recipient_email -> Text,
        subject -> Text,
        body -> Text,
        link_path -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        send_attempts -> Int4,
        send_error -> Nullable<Text>,
        next_send_at -> Nullable<Timestamptz>,
        digest_week -> Nullable<Date>,
        digest -> Nullable<Jsonb>,
    }
}

diesel::table! {
    management_idempotency (token_id, key) {
        token_id -> Int8,
        key -> Text,
        request_hash -> Bytea,
        status -> Int2,
        body -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    management_rate_windows (token_id, window_start) {
        token_id -> Int8,
        window_start -> Timestamptz,
        requests -> Int4,
    }
}

diesel::table! {
    management_tokens (id) {
        id -> Int8,
        public_id -> Text,
        organization_id -> Nullable<Int8>,
        created_by_user_id -> Nullable<Int8>,
        name -> Text,
        scopes -> Array<Nullable<Text>>,
        allowed_cidrs -> Array<Nullable<Cidr>>,
        secret_hash -> Bytea,
        secret_last4 -> Text,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
        service_provider_id -> Nullable<Int8>,
        created_by_staff_id -> Nullable<Int8>,
        last_used_at -> Nullable<Timestamptz>,
        last_used_ip -> Nullable<Inet>,
    }
}

diesel::table! {
    organizations (id) {
        id -> Int8,
        slug -> Text,
        name -> Text,
        service_provider_id -> Nullable<Int8>,
        key_default_lifetime_days -> Int4,
        key_max_lifetime_days -> Nullable<Int4>,
        key_allow_never_expires -> Bool,
        key_default_grace_minutes -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        key_quota_per_user -> Int4,
        key_quota_per_organization -> Int4,
        key_creations_per_hour -> Int4,
        second_factor_required_for -> Text,
        deactivate_unused_after_days -> Nullable<Int4>,
        key_reminder_days -> Array<Nullable<Int4>>,
        notify_admins_of_keys -> Bool,
    }
}

diesel::table! {
    outbox_deliveries (id) {
        id -> Int8,
        event_id -> Int8,
        channel -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    outbox_events (id) {
        id -> Int8,
        event_type -> Text,
        organization_id -> Nullable<Int8>,
        service_provider_id -> Nullable<Int8>,
        api_key_id -> Nullable<Int8>,
        user_id -> Nullable<Int8>,
        occasion -> Nullable<Text>,
        key_expires_at -> Nullable<Timestamptz>,
        payload -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        staff_id -> Nullable<Int8>,
        name -> Text,
        credential_id -> Bytea,
        credential -> Jsonb,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    password_links (id) {
        id -> Int8,
        token_hash -> Text,
        user_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        staff_id -> Nullable<Int8>,
        purpose -> Text,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        staff_id -> Nullable<Int8>,
        code_hash -> Bytea,
        used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    role_api_actions (role_id, api_action_id) {
        role_id -> Int8,
        api_action_id -> Int8,
    }
}

diesel::table! {
    role_permissions (role_id, permission) {
        role_id -> Int8,
        permission -> Text,
    }
}

diesel::table! {
    roles (id) {
        id -> Int8,
        organization_id -> Int8,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        all_api_actions -> Bool,
    }
}

diesel::table! {
    service_providers (id) {
        id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<Int8>,
        staff_id -> Nullable<Int8>,
        state -> Jsonb,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        public_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        client_label -> Nullable<Text>,
        signed_in_at -> Nullable<Timestamptz>,
        last_seen_at -> Timestamptz,
    }
}

diesel::table! {
    staff_accounts (id) {
        id -> Int8,
        email -> Text,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        active -> Bool,
        last_login_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    totp_factors (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        staff_id -> Nullable<Int8>,
        secret_sealed -> Bytea,
        confirmed_at -> Nullable<Timestamptz>,
        last_used_step -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    user_roles (user_id, role_id) {
        organization_id -> Int8,
        user_id -> Int8,
        role_id -> Int8,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        organization_id -> Int8,
        email -> Text,
        display_name -> Text,
        password_hash -> Nullable<Text>,
        is_admin -> Bool,
        api_key_access -> Bool,
        active -> Bool,
        last_login_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        receive_reminders -> Bool,
        receive_digest -> Bool,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Int8,
        event_id -> Int8,
        endpoint_id -> Int8,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_attempt_at -> Nullable<Timestamptz>,
        response_status -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Int8,
        organization_id -> Int8,
        url -> Text,
        description -> Text,
        event_types -> Array<Text>,
        secret_sealed -> Bytea,
        enabled -> Bool,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        consecutive_failures -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_key_actions -> api_actions (api_action_id));
diesel::joinable!(api_key_actions -> api_keys (api_key_id));
diesel::joinable!(api_keys -> service_providers (owner_service_provider_id));
diesel::joinable!(api_keys -> staff_accounts (created_by_staff_id));
diesel::joinable!(asset_groups -> organizations (organization_id));
diesel::joinable!(assets -> organizations (organization_id));
diesel::joinable!(key_usage_addresses -> api_keys (api_key_id));
diesel::joinable!(key_usage_daily -> api_keys (api_key_id));
diesel::joinable!(key_usage_hourly -> api_keys (api_key_id));
diesel::joinable!(key_expiry_changes -> api_keys (api_key_id));
diesel::joinable!(mail_messages -> organizations (organization_id));
diesel::joinable!(mail_messages -> outbox_events (event_id));
diesel::joinable!(mail_messages -> service_providers (service_provider_id));
diesel::joinable!(mail_messages -> staff_accounts (recipient_staff_id));
diesel::joinable!(mail_messages -> users (recipient_user_id));
diesel::joinable!(management_idempotency -> management_tokens (token_id));
diesel::joinable!(management_rate_windows -> management_tokens (token_id));
diesel::joinable!(management_tokens -> organizations (organization_id));
diesel::joinable!(management_tokens -> service_providers (service_provider_id));
diesel::joinable!(management_tokens -> staff_accounts (created_by_staff_id));
diesel::joinable!(management_tokens -> users (created_by_user_id));
diesel::joinable!(organizations -> service_providers (service_provider_id));
diesel::joinable!(outbox_deliveries -> outbox_events (event_id));
diesel::joinable!(outbox_events -> organizations (organization_id));
diesel::joinable!(outbox_events -> service_providers (service_provider_id));
diesel::joinable!(outbox_events -> users (user_id));
diesel::joinable!(passkeys -> staff_accounts (staff_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(password_links -> staff_accounts (staff_id));
diesel::joinable!(password_links -> users (user_id));
diesel::joinable!(recovery_codes -> staff_accounts (staff_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(role_api_actions -> api_actions (api_action_id));
diesel::joinable!(role_api_actions -> roles (role_id));
diesel::joinable!(role_permissions -> roles (role_id));
diesel::joinable!(roles -> organizations (organization_id));
diesel::joinable!(sessions -> staff_accounts (staff_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(totp_factors -> staff_accounts (staff_id));
diesel::joinable!(totp_factors -> users (user_id));
diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(webhook_deliveries -> outbox_events (event_id));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::joinable!(webhook_endpoints -> organizations (organization_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_actions,
    api_key_actions,
    api_key_asset_groups,
    api_key_assets,
    api_keys,
    asset_group_members,
    asset_groups,
    assets,
    audit_events,
    jobs,
    key_usage_addresses,
    key_usage_daily,
    key_usage_hourly,
    key_expiry_changes,
    mail_messages,
    management_idempotency,
    management_rate_windows,
    management_tokens,
    organizations,
    outbox_deliveries,
    outbox_events,
    passkeys,
    password_links,
    recovery_codes,
    role_api_actions,
    role_permissions,
    roles,
    service_providers,
    sessions,
    staff_accounts,
    totp_factors,
    user_roles,
    users,
    webhook_deliveries,
    webhook_endpoints,
);
