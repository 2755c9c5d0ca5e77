-- The Barong data model, in PostgreSQL.
-- Secrets and personal data are stored sealed (columns ending in _encrypted, see src/crypto.rs);
-- *_index columns are keyed digests for equality lookups on sealed values.

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    uid             VARCHAR(32)  NOT NULL UNIQUE,
    username        VARCHAR(64),
    email           VARCHAR(255) NOT NULL,
    password_digest VARCHAR(255) NOT NULL,
    role            VARCHAR(64)  NOT NULL DEFAULT 'member',
    data            TEXT,
    level           INTEGER      NOT NULL DEFAULT 0,
    otp             BOOLEAN      NOT NULL DEFAULT FALSE,
    otp_secret_encrypted TEXT,
    state           VARCHAR(16)  NOT NULL DEFAULT 'pending',
    referral_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- Emails are kept as typed but unique and looked up without regard to case.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
CREATE UNIQUE INDEX users_username ON users (username) WHERE username IS NOT NULL;
CREATE INDEX users_role ON users (role);
CREATE INDEX users_state ON users (state);
CREATE INDEX users_created_at ON users (created_at);

CREATE TABLE levels (
    id          INTEGER      PRIMARY KEY,
    key         VARCHAR(255) NOT NULL,
    value       VARCHAR(255) NOT NULL,
    description VARCHAR(255),
    created_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE TABLE labels (
    id          BIGSERIAL    PRIMARY KEY,
    user_id     BIGINT       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key         VARCHAR(255) NOT NULL,
    value       VARCHAR(255) NOT NULL,
    scope       VARCHAR(16)  NOT NULL DEFAULT 'public',
    description VARCHAR(255),
    created_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    UNIQUE (user_id, key, scope)
);
CREATE INDEX labels_key_value ON labels (key, value);

CREATE TABLE profiles (
    id                   BIGSERIAL   PRIMARY KEY,
    user_id              BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author               VARCHAR(32),
    applicant_id         VARCHAR(255),
    first_name_encrypted TEXT,
    last_name_encrypted  TEXT,
    dob_encrypted        TEXT,
    address_encrypted    TEXT,
    postcode             VARCHAR(255),
    city                 VARCHAR(255),
    country              VARCHAR(255),
    metadata             TEXT,
    state                VARCHAR(16) NOT NULL DEFAULT 'drafted',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX profiles_user_id ON profiles (user_id);

CREATE TABLE phones (
    id               BIGSERIAL   PRIMARY KEY,
    user_id          BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    country          VARCHAR(8)  NOT NULL,
    code             VARCHAR(16),
    number_encrypted TEXT        NOT NULL,
    number_index     VARCHAR(64) NOT NULL,
    validated_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX phones_user_id ON phones (user_id);
CREATE INDEX phones_number_index ON phones (number_index);

CREATE TABLE documents (
    id                   BIGSERIAL    PRIMARY KEY,
    user_id              BIGINT       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    upload               VARCHAR(1024),
    doc_type             VARCHAR(64),
    doc_number_encrypted TEXT,
    doc_number_index     VARCHAR(64),
    doc_expire           DATE,
    doc_category         VARCHAR(32),
    identificator        VARCHAR(64),
    metadata             TEXT,
    created_at           TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX documents_user_id ON documents (user_id);

CREATE TABLE data_storages (
    id         BIGSERIAL    PRIMARY KEY,
    user_id    BIGINT       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      VARCHAR(64)  NOT NULL,
    data       TEXT         NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX data_storages_user_title ON data_storages (user_id, lower(title));

CREATE TABLE comments (
    id         BIGSERIAL   PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    author_uid VARCHAR(32) NOT NULL,
    title      VARCHAR(64) NOT NULL,
    data       TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX comments_user_id ON comments (user_id);

CREATE TABLE service_accounts (
    id         BIGSERIAL    PRIMARY KEY,
    uid        VARCHAR(32)  NOT NULL UNIQUE,
    owner_id   BIGINT       REFERENCES users (id) ON DELETE SET NULL,
    email      VARCHAR(255) NOT NULL,
    role       VARCHAR(64)  NOT NULL DEFAULT 'service_account',
    level      INTEGER      NOT NULL DEFAULT 0,
    state      VARCHAR(16)  NOT NULL DEFAULT 'pending',
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX service_accounts_email_lower ON service_accounts (lower(email));
CREATE INDEX service_accounts_owner_id ON service_accounts (owner_id);

CREATE TABLE api_keys (
    id                      BIGSERIAL    PRIMARY KEY,
    key_holder_account_id   BIGINT       NOT NULL,
    key_holder_account_type VARCHAR(32)  NOT NULL CHECK (key_holder_account_type IN ('User', 'ServiceAccount')),
    kid                     VARCHAR(255) NOT NULL UNIQUE,
    algorithm               VARCHAR(16)  NOT NULL,
    scope                   TEXT         NOT NULL DEFAULT '[]',
    secret_encrypted        TEXT         NOT NULL,
    state                   VARCHAR(16)  NOT NULL DEFAULT 'active',
    created_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_holder ON api_keys (key_holder_account_type, key_holder_account_id);

CREATE TABLE permissions (
    id         BIGSERIAL    PRIMARY KEY,
    action     VARCHAR(16)  NOT NULL,
    role       VARCHAR(64)  NOT NULL,
    verb       VARCHAR(16)  NOT NULL,
    path       VARCHAR(255) NOT NULL,
    topic      VARCHAR(64),
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX permissions_role ON permissions (role);
CREATE INDEX permissions_topic ON permissions (topic);

CREATE TABLE restrictions (
    id         BIGSERIAL   PRIMARY KEY,
    category   VARCHAR(16) NOT NULL CHECK (category IN ('whitelist', 'maintenance', 'blacklist', 'blocklogin')),
    scope      VARCHAR(64) NOT NULL CHECK (scope IN ('all', 'ip', 'ip_subnet', 'continent', 'country')),
    value      VARCHAR(64) NOT NULL,
    code       INTEGER,
    state      VARCHAR(16) NOT NULL DEFAULT 'enabled' CHECK (state IN ('enabled', 'disabled')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (category, scope, value)
);

-- Pass and block rules (Barong's authz_rules.yml), kept in the database so every node shares them.
CREATE TABLE authz_rules (
    id         BIGSERIAL    PRIMARY KEY,
    kind       VARCHAR(8)   NOT NULL CHECK (kind IN ('pass', 'block')),
    path       VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    UNIQUE (kind, path)
);

-- Admin abilities (Barong's abilities.yml): role may `action` (read, manage, ...) on `subject`.
CREATE TABLE admin_abilities (
    id         BIGSERIAL   PRIMARY KEY,
    role       VARCHAR(64) NOT NULL,
    action     VARCHAR(16) NOT NULL,
    subject    VARCHAR(64) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (role, action, subject)
);

CREATE TABLE activities (
    id              BIGSERIAL    PRIMARY KEY,
    user_id         BIGINT       REFERENCES users (id) ON DELETE CASCADE,
    target_uid      VARCHAR(32),
    category        VARCHAR(16)  NOT NULL CHECK (category IN ('admin', 'user')),
    user_ip         VARCHAR(64)  NOT NULL,
    user_ip_country VARCHAR(64),
    user_agent      VARCHAR(1024) NOT NULL,
    topic           VARCHAR(64)  NOT NULL,
    action          VARCHAR(64)  NOT NULL,
    result          VARCHAR(16)  NOT NULL CHECK (result IN ('succeed', 'failed', 'denied')),
    data            TEXT,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX activities_user_id ON activities (user_id, id);
CREATE INDEX activities_category_id ON activities (category, id);
CREATE INDEX activities_created_at ON activities (created_at);

-- Events written in the same transaction as the change they describe; a publisher delivers them.
CREATE TABLE event_outbox (
    id           BIGSERIAL    PRIMARY KEY,
    name         VARCHAR(128) NOT NULL,
    payload      JSONB        NOT NULL,
    created_at   TIMESTAMPTZ  NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ,
    attempts     INTEGER      NOT NULL DEFAULT 0
);
CREATE INDEX event_outbox_pending ON event_outbox (id) WHERE published_at IS NULL;

-- Change notices. Every node LISTENs and drops or rebuilds what it caches; triggers make direct
-- SQL edits propagate exactly like edits through the API or the command line.
CREATE FUNCTION portcullis_notify_policy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_policy', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER permissions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON permissions
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_policy();
CREATE TRIGGER restrictions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON restrictions
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_policy();
CREATE TRIGGER authz_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON authz_rules
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_policy();

CREATE FUNCTION portcullis_notify_subject() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_uid TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN row_uid := OLD.uid; ELSE row_uid := NEW.uid; END IF;
    PERFORM pg_notify('portcullis_subject', TG_TABLE_NAME || ':' || row_uid);
    RETURN NULL;
END $$;

CREATE TRIGGER users_changed AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_subject();
CREATE TRIGGER service_accounts_changed AFTER UPDATE OR DELETE ON service_accounts
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_subject();

CREATE FUNCTION portcullis_notify_api_key() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_kid TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN row_kid := OLD.kid; ELSE row_kid := NEW.kid; END IF;
    PERFORM pg_notify('portcullis_subject', 'api_keys:' || row_kid);
    RETURN NULL;
END $$;

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION portcullis_notify_api_key();
