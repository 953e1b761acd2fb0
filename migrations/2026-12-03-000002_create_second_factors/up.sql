-- Second factors (issue 17): one TOTP authenticator and ten recovery codes per account, for
-- web users and staff accounts alike (exactly one of user_id, staff_id is set).
--
-- The TOTP secret is sealed with AES-256-GCM under a key derived from the master secret
-- (nonce || ciphertext || tag), so a copy of the table alone yields no codes. A row whose
-- confirmed_at is NULL is an enrolment in progress: it counts only once a correct code
-- confirmed it. last_used_step is the RFC 6238 time step of the last accepted code, so a
-- code is accepted once.
CREATE TABLE totp_factors (
    id              bigserial PRIMARY KEY,
    user_id         bigint REFERENCES users (id) ON DELETE CASCADE,
    staff_id        bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    secret_sealed   bytea NOT NULL CHECK (octet_length(secret_sealed) BETWEEN 28 AND 128),
    confirmed_at    timestamptz,
    last_used_step  bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT totp_factors_one_account CHECK (num_nonnulls(user_id, staff_id) = 1)
);
CREATE UNIQUE INDEX totp_factors_user_id_idx ON totp_factors (user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX totp_factors_staff_id_idx ON totp_factors (staff_id) WHERE staff_id IS NOT NULL;

-- Recovery codes: only a keyed hash (HMAC-SHA-256) of each, used once.
CREATE TABLE recovery_codes (
    id          bigserial PRIMARY KEY,
    user_id     bigint REFERENCES users (id) ON DELETE CASCADE,
    staff_id    bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    code_hash   bytea NOT NULL CHECK (octet_length(code_hash) = 32),
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recovery_codes_one_account CHECK (num_nonnulls(user_id, staff_id) = 1)
);
CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX recovery_codes_staff_id_idx ON recovery_codes (staff_id) WHERE staff_id IS NOT NULL;

-- Wrong second-factor codes count against the sign-in throttle with failed passwords.
DROP INDEX audit_events_login_failures_by_account_idx;
DROP INDEX audit_events_login_failures_by_ip_idx;
CREATE INDEX audit_events_login_failures_by_account_idx ON audit_events (target_label, occurred_at)
    WHERE action IN ('login.failure', 'second_factor.failure');
CREATE INDEX audit_events_login_failures_by_ip_idx ON audit_events (client_ip, occurred_at)
    WHERE action IN ('login.failure', 'second_factor.failure');
