-- The platform-wide catalog of API privileges a key can be granted.

CREATE TABLE api_actions (
    id           bigserial PRIMARY KEY,
    code         text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND char_length(code) <= 64),
    description  text NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    retired_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO api_actions (code, description) VALUES
    ('positions.read',  'Read current and historical positions'),
    ('vehicles.read',   'Read vehicles and their details'),
    ('vehicles.write',  'Create and change vehicles'),
    ('dispatch.create', 'Create dispatch jobs'),
    ('reports.read',    'Read reports'),
    ('catalog.upload',  'Upload inventory data to the catalog');
