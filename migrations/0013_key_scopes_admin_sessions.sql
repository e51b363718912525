-- 0013: API keys carry scopes; admin sign-ins are server-side sessions signed with a
-- secret kept here.
--
-- Until now every API key could do everything: a key handed to a mailer for
-- POST /v1/render could download the unused codes, rewrite customers and sign in to the
-- admin pages. A key now names what it may do. Keys stored before this migration were
-- all-powerful and stay so, now explicitly: they get the `admin` scope (which implies
-- every other), so no deployed integration breaks on upgrade; `promopool keys list`
-- shows them as admin and `promopool keys scopes NAME render,issue` narrows one.
ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{admin}';
ALTER TABLE api_keys ALTER COLUMN scopes DROP DEFAULT;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_scopes_known CHECK (
    cardinality(scopes) >= 1
    AND scopes <@ ARRAY['render', 'issue', 'checkout', 'read', 'export', 'write', 'admin']::text[]);

-- Secrets the processes share, drawn at random by the first process that needs one
-- (INSERT … ON CONFLICT DO NOTHING, then read back: every web process ends up with the
-- same value). 'admin_session' signs the admin cookies and CSRF tokens unless
-- ADMIN_SESSION_SECRET is set; it is never derived from the admin password.
CREATE TABLE secrets (
    name       text        PRIMARY KEY,
    value      bytea       NOT NULL CHECK (octet_length(value) >= 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per admin sign-in. The cookie carries a random token; only its SHA-256 is
-- stored. The server decides expiry (expires_at, set once at sign-in) and revocation
-- (revoked_at: sign-out), whatever the cookie says. A session opened with the password
-- keeps a keyed hash of that password (password_tag) and ends when ADMIN_PASSWORD
-- changes; one opened with an API key names it (api_key_id for a stored key, key_name
-- for either) and ends when the key is revoked or loses its admin scope. user_id is for
-- named admin users (a later migration adds them and the foreign key); credential then
-- gains 'user'.
CREATE TABLE admin_sessions (
    id           bigserial   PRIMARY KEY,
    token_hash   bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    actor        text        NOT NULL CHECK (char_length(actor) BETWEEN 1 AND 200),
    credential   text        NOT NULL CHECK (credential IN ('password', 'api_key', 'static_key')),
    api_key_id   bigint      REFERENCES api_keys (id),
    key_name     text,
    user_id      bigint,
    password_tag bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    CHECK (expires_at > created_at),
    CHECK (credential <> 'password' OR password_tag IS NOT NULL),
    CHECK (credential <> 'api_key' OR api_key_id IS NOT NULL),
    CHECK (credential <> 'static_key' OR key_name IS NOT NULL)
);
-- Sign-in sweeps sessions long expired.
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);
