-- 0018: named admin users with roles, and "who" with name and email.
--
-- Until now the admin pages knew one shared password (or an API key) and the activity
-- log's actor was a key name such as `admin`. People now sign in as themselves — with
-- the platform's identity provider (OpenID Connect) or a password of their own — and
-- every change records who made it: kind, user id, name and email as they were then.

-- The people who may sign in. Emails are stored lower-case (the identity provider's
-- email claim is matched against them); a user is never deleted, only disabled, so the
-- history that names them keeps pointing at a row. password_hash is an argon2id PHC
-- string (null: no password sign-in for this user). oidc_issuer/oidc_subject link the
-- user to their identity at the provider at first sign-in, so a later change of email
-- there does not lose them. session_epoch is bumped whenever what a session was opened
-- under changes (disabled, role changed, password changed): a session opened under an
-- older epoch no longer signs in.
CREATE TABLE admin_users (
    id            bigserial   PRIMARY KEY,
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254 AND email = lower(email) AND email LIKE '_%@_%'),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    role          text        NOT NULL CHECK (role IN ('viewer', 'marketer', 'admin')),
    password_hash text        CHECK (password_hash LIKE '$argon2id$%'),
    oidc_issuer   text,
    oidc_subject  text,
    session_epoch bigint      NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    disabled_at   timestamptz,
    CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL))
);
CREATE UNIQUE INDEX admin_users_email ON admin_users (email);
CREATE UNIQUE INDEX admin_users_oidc ON admin_users (oidc_issuer, oidc_subject) WHERE oidc_subject IS NOT NULL;

-- Sessions opened by a user name them and the epoch they were opened under.
ALTER TABLE admin_sessions DROP CONSTRAINT admin_sessions_credential_check;
ALTER TABLE admin_sessions ADD CONSTRAINT admin_sessions_credential_check
    CHECK (credential IN ('password', 'api_key', 'static_key', 'user'));
ALTER TABLE admin_sessions ADD COLUMN user_epoch bigint;
ALTER TABLE admin_sessions ADD CONSTRAINT admin_sessions_user_fk FOREIGN KEY (user_id) REFERENCES admin_users (id);
ALTER TABLE admin_sessions ADD CONSTRAINT admin_sessions_user_check
    CHECK (credential <> 'user' OR (user_id IS NOT NULL AND user_epoch IS NOT NULL));
CREATE INDEX admin_sessions_user ON admin_sessions (user_id) WHERE user_id IS NOT NULL;

-- Who acted: a user (user_id, name, email), an API key (its name; user_id and email are
-- those of the user who created it, if one did), the shared ADMIN_PASSWORD, the command
-- line (cli:$USER) or the system. Rows written before this migration have none of these
-- columns set and name only the old text actor.
CREATE DOMAIN actor_kind AS text CHECK (VALUE IN ('user', 'key', 'password', 'cli', 'system'));

ALTER TABLE activity
    ADD COLUMN actor_kind    actor_kind,
    ADD COLUMN actor_user_id bigint REFERENCES admin_users (id),
    ADD COLUMN actor_name    text,
    ADD COLUMN actor_email   text;

ALTER TABLE uploads
    ADD COLUMN actor_kind          actor_kind,
    ADD COLUMN actor_user_id       bigint REFERENCES admin_users (id),
    ADD COLUMN actor_name          text,
    ADD COLUMN actor_email         text,
    ADD COLUMN undone_by_kind      actor_kind,
    ADD COLUMN undone_by_user_id   bigint REFERENCES admin_users (id),
    ADD COLUMN undone_by_name      text,
    ADD COLUMN undone_by_email     text;

ALTER TABLE mailings
    ADD COLUMN created_by_kind     actor_kind,
    ADD COLUMN created_by_user_id  bigint REFERENCES admin_users (id),
    ADD COLUMN created_by_name     text,
    ADD COLUMN created_by_email    text;

-- A mailing's life as people steered it: created, started, paused, resumed, cancelled,
-- each with who and when. A pause for lack of codes is the system's.
CREATE TABLE mailing_events (
    id             bigserial   PRIMARY KEY,
    mailing_id     bigint      NOT NULL REFERENCES mailings (id) ON DELETE CASCADE,
    action         text        NOT NULL CHECK (action IN ('create', 'start', 'pause', 'resume', 'cancel')),
    actor_kind     actor_kind  NOT NULL,
    actor_user_id  bigint      REFERENCES admin_users (id),
    actor_name     text        NOT NULL,
    actor_email    text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mailing_events_mailing ON mailing_events (mailing_id, id);

-- An alert is acknowledged once, by someone: "seen, we are on it".
ALTER TABLE alerts
    ADD COLUMN acknowledged_at       timestamptz,
    ADD COLUMN acknowledged_kind     actor_kind,
    ADD COLUMN acknowledged_user_id  bigint REFERENCES admin_users (id),
    ADD COLUMN acknowledged_name     text,
    ADD COLUMN acknowledged_email    text,
    ADD CONSTRAINT alerts_acknowledged_by CHECK ((acknowledged_at IS NULL) = (acknowledged_kind IS NULL));

-- A key records who created it, as they were then.
ALTER TABLE api_keys
    ADD COLUMN created_by_kind     actor_kind,
    ADD COLUMN created_by_user_id  bigint REFERENCES admin_users (id),
    ADD COLUMN created_by_name     text,
    ADD COLUMN created_by_email    text;
