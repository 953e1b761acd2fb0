-- What the key flows need beyond the base schema:
-- * roles say which API actions their holders may put on keys (administrators: all), since
--   a key may never be granted more than its creator may do;
-- * idempotency tokens, so a double-submitted or replayed create / re-key form acts once
--   (and never shows a secret twice);
-- * the reason given when a key is deactivated (required for staff incident deactivation).

ALTER TABLE roles ADD COLUMN all_api_actions boolean NOT NULL DEFAULT false;

CREATE TABLE role_api_actions (
    role_id        bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    api_action_id  bigint NOT NULL REFERENCES api_actions (id) ON DELETE CASCADE,
    PRIMARY KEY (role_id, api_action_id)
);
CREATE INDEX role_api_actions_api_action_id_idx ON role_api_actions (api_action_id);

ALTER TABLE api_keys
    ADD COLUMN create_token text UNIQUE CHECK (char_length(create_token) BETWEEN 16 AND 64),
    ADD COLUMN rekey_token text CHECK (char_length(rekey_token) BETWEEN 16 AND 64),
    ADD COLUMN deactivation_reason text CHECK (char_length(deactivation_reason) <= 500);
