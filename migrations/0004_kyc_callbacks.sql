-- KYC callbacks, as typed columns: only what a KYCAID callback identifies and announces (see
-- src/domain/kyc.rs), once per callback. Rows are written only for callbacks whose signature
-- verified.
--
-- The old table held any JSON anyone posted, unauthenticated and up to 10 MB a row: nothing in
-- it can be trusted to have come from KYCAID, so none of it is carried over. Dropping the table
-- (rather than deleting its rows) also gives its disk space back at once.
DROP TABLE kyc_callbacks;

CREATE TABLE kyc_callbacks (
    id                  BIGSERIAL   PRIMARY KEY,
    -- KYCAID's id of the callback: a redelivery carries the same one and is stored once.
    request_id          VARCHAR(64) NOT NULL UNIQUE,
    type                VARCHAR(64) NOT NULL,
    applicant_id        VARCHAR(64) NOT NULL,
    verification_id     VARCHAR(64),
    verification_status VARCHAR(64),
    verified            BOOLEAN,
    received_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
