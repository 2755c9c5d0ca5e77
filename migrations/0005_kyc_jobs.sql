-- Submissions to the KYC provider (KYCAID), written in the transaction of the change that asks
-- for them (a submitted profile, a complete document batch, an address) and sent by a worker:
-- the request never waits on KYCAID, and a submission survives KYCAID being down.
CREATE TABLE kyc_jobs (
    id              BIGSERIAL   PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- applicant | documents | address
    kind            VARCHAR(16) NOT NULL,
    -- The profile id (applicant) or the documents' identificator (documents, address).
    subject         VARCHAR(64) NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at         TIMESTAMPTZ,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error      TEXT
);
CREATE INDEX kyc_jobs_pending ON kyc_jobs (next_attempt_at) WHERE done_at IS NULL;

CREATE TRIGGER kyc_jobs_added AFTER INSERT ON kyc_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_queue();
