//! Emails sent by the built-in mailer. (Being written.)
