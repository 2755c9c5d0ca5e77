-- The KYC worker (src/services/kyc): a callback names its applicant, and the user behind it is
-- found by the profile's applicant_id; a job remembers what KYCAID already holds (uploaded
-- files, created documents) so that a retry after a partial failure does not send it twice.
CREATE INDEX profiles_applicant_id ON profiles (applicant_id) WHERE applicant_id IS NOT NULL;

ALTER TABLE kyc_jobs ADD COLUMN progress JSONB NOT NULL DEFAULT '{}';
