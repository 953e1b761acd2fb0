-- Passkeys (WebAuthn credentials, issue 17) as a second factor of web users and staff
-- accounts alike (exactly one of user_id, staff_id is set); several per account, each named.
--
-- `credential` is the verifier's record of the credential (webauthn-rs `Passkey`: its id,
-- public key, signature counter and backup flags) as JSON. It holds no secret: the private
-- key never leaves the authenticator. `credential_id` is unique across every account, so one
-- authenticator's credential cannot be registered to two accounts.
CREATE TABLE passkeys (
    id             bigserial PRIMARY KEY,
    user_id        bigint REFERENCES users (id) ON DELETE CASCADE,
    staff_id       bigint REFERENCES staff_accounts (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 60),
    credential_id  bytea NOT NULL UNIQUE CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
    credential     jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    CONSTRAINT passkeys_one_account CHECK (num_nonnulls(user_id, staff_id) = 1)
);
CREATE UNIQUE INDEX passkeys_user_name_idx ON passkeys (user_id, lower(name)) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX passkeys_staff_name_idx ON passkeys (staff_id, lower(name)) WHERE staff_id IS NOT NULL;
