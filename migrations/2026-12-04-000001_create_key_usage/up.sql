-- Usage insight (issue 18): what each key does, per hour, aggregated in memory by every
-- instance and merged here by upserts that add counts, so any number of instances add up.
--
-- One row per key, hour, outcome code, action and secret (current, or the previous one
-- during its grace period). `action` is '' when the verification named none, and
-- '(other)' for actions folded together to bound the number of rows per key and hour.
CREATE TABLE key_usage_hourly (
    api_key_id bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    hour timestamptz NOT NULL CHECK (date_trunc('hour', hour) = hour),
    code text NOT NULL,
    action text NOT NULL,
    previous_secret boolean NOT NULL,
    count bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (api_key_id, hour, code, action, previous_secret)
);

-- Hourly rows past the hourly retention, rolled up per day (UTC), kept for the daily
-- retention.
CREATE TABLE key_usage_daily (
    api_key_id bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    day date NOT NULL,
    code text NOT NULL,
    action text NOT NULL,
    previous_secret boolean NOT NULL,
    count bigint NOT NULL CHECK (count > 0),
    PRIMARY KEY (api_key_id, day, code, action, previous_secret)
);

-- The most recent distinct client addresses that presented a key's secret (ten per key;
-- the flush trims the rest), with first and last seen and the last use of the previous
-- secret from that address.
CREATE TABLE key_usage_addresses (
    api_key_id bigint NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    address inet NOT NULL,
    first_seen_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    uses bigint NOT NULL,
    previous_secret_last_seen_at timestamptz,
    PRIMARY KEY (api_key_id, address)
);
CREATE INDEX key_usage_addresses_last_seen ON key_usage_addresses (last_seen_at);
