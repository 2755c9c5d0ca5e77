-- Documents' files live on object storage (`uploads` settings): `upload` holds the object's
-- key, which the API, the admin API and the KYC worker read the file by. A proof of address
-- keeps the address it was uploaded with (sealed: personal data), which the KYC worker sends
-- along with the files; the batch of files sharing an identificator is counted per user.
ALTER TABLE documents ADD COLUMN IF NOT EXISTS address_encrypted TEXT;
CREATE INDEX IF NOT EXISTS documents_user_identificator ON documents (user_id, identificator);
