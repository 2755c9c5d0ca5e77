-- Phone verification codes (resource API, §8.5). Barong kept the code in clear text in
-- `phones.code`; here only a keyed digest is stored (crypto::SecretBox::blind_index, bound to
-- the phone row), so a database reader cannot use a pending code, and a code expires.
-- `code` stays, unused, for rows imported from Barong.
ALTER TABLE phones
    ADD COLUMN code_digest     VARCHAR(64),
    ADD COLUMN code_expires_at TIMESTAMPTZ;

-- A number is verified by one account at most (`resource.phone.number_exist`), and listed once
-- per account (`resource.phone.exists`): the checks in the handlers answer the codes, these
-- make two concurrent requests unable to both pass them.
CREATE UNIQUE INDEX phones_verified_number ON phones (number_index) WHERE validated_at IS NOT NULL;
CREATE UNIQUE INDEX phones_user_number ON phones (user_id, number_index);
