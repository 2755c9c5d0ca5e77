-- Emails to send, written with the event that asks for them; the mailer marks them sent.
CREATE TABLE mail_queue (
    id         BIGSERIAL    PRIMARY KEY,
    event_name VARCHAR(128) NOT NULL,
    payload    JSONB        NOT NULL,
    created_at TIMESTAMPTZ  NOT NULL DEFAULT now(),
    sent_at    TIMESTAMPTZ,
    attempts   INTEGER      NOT NULL DEFAULT 0,
    -- A failed message waits before its next try, alone: one bad address must not hold the queue.
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error TEXT
);
CREATE INDEX mail_queue_pending ON mail_queue (next_attempt_at) WHERE sent_at IS NULL;

-- KYC provider callbacks (KYCAID webhooks), kept as received.
CREATE TABLE kyc_callbacks (
    id          BIGSERIAL   PRIMARY KEY,
    provider    VARCHAR(32) NOT NULL,
    payload     JSONB       NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Wake the publisher and the mailer as soon as there is work.
CREATE FUNCTION portcullis_notify_queue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('portcullis_queue', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER event_outbox_added AFTER INSERT ON event_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_queue();
CREATE TRIGGER mail_queue_added AFTER INSERT ON mail_queue
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_notify_queue();
