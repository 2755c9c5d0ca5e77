-- Back Office refresh tokens (seed 003). A sign-in opens a family; every refresh token of
-- that sign-in belongs to it. Only a keyed digest of a token is stored
-- (crypto::SecretBox::blind_index), so a database reader cannot use one. A token is used
-- once: `used_at` marks it spent, and presenting a spent token again revokes the family
-- (`revoked_at` on all its rows), the theft signal of refresh-token rotation.
CREATE TABLE backoffice_refresh_tokens (
    id          BIGSERIAL PRIMARY KEY,
    digest      VARCHAR(64) NOT NULL UNIQUE,
    family      VARCHAR(64) NOT NULL,
    user_id     BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    revoked_at  TIMESTAMPTZ
);
CREATE INDEX backoffice_refresh_tokens_family ON backoffice_refresh_tokens (family);
CREATE INDEX backoffice_refresh_tokens_user ON backoffice_refresh_tokens (user_id);
CREATE INDEX backoffice_refresh_tokens_expiry ON backoffice_refresh_tokens (expires_at);
