-- Identities at other providers bound to accounts. An Auth0 login binds the account to the
-- token's `sub` after the first verified login (decisions.md #25): from then on that subject
-- is the identity, and a token of another subject carrying the same email opens nothing.
CREATE TABLE user_identities (
    id         BIGSERIAL    PRIMARY KEY,
    user_id    BIGINT       NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   VARCHAR(32)  NOT NULL,
    subject    VARCHAR(255) NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    -- A subject belongs to one account, and an account has one subject per provider.
    CONSTRAINT user_identities_subject UNIQUE (provider, subject),
    CONSTRAINT user_identities_one_per_provider UNIQUE (user_id, provider)
);
