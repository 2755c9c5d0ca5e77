//! Composing a queued email: the template of the recipient's language (or the default),
//! rendered with the event's record, the confirmation or reset link (`{{link}}`, the
//! configured URL with `{domain}` and `{token}` filled) and `{{app_name}}`, built as a
//! multipart message from the configured sender.

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

use super::Failure;
use crate::config;
use crate::events::templates::{Templates, render};

/// Event names whose record carries a token, and which link template it goes into.
pub(super) const CONFIRMATION_EVENT: &str = "system.user.email.confirmation.token";
const RESET_EVENT: &str = "system.user.password.reset.token";

/// Characters kept as they are in a token placed into a URL: RFC 3986 unreserved ones. A JWT
/// passes unchanged; anything else cannot break out of the query parameter.
const TOKEN_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What messages are made of: the templates (loaded once), the sender, the site.
pub(super) struct Composer {
    mail: config::Mail,
    app_name: String,
    domain: String,
    templates: Templates,
    from: Result<Mailbox, String>,
}

impl Composer {
    /// Loads the templates of `mail.templates_dir` and checks they cover `mail.events`;
    /// problems are logged once here, and each message they affect fails alone.
    pub(super) fn new(mail: &config::Mail, site: &config::App) -> Composer {
        let templates = Templates::load(&mail.templates_dir);
        templates.check(&mail.events, &mail.default_language);
        let mail_only: Vec<String> = crate::events::MAIL_ONLY
            .iter()
            .map(|e| e.to_string())
            .collect();
        templates.check(&mail_only, &mail.default_language);
        let from = sender(mail);
        if let Err(err) = &from {
            tracing::error!(error = %err, "mail: every message will fail");
        }
        Composer {
            mail: mail.clone(),
            app_name: site.name.clone(),
            domain: site.domain.clone(),
            templates,
            from,
        }
    }

    /// The message for one queued event: template chosen by language, rendered, built.
    /// `readable` keeps the text as it is (8bit) so that a developer reading the `.eml` file can
    /// copy the link; for a relay, lettre picks 7bit, quoted-printable or base64 as the
    /// standards ask (lines under 78 characters, no 8-bit data without 8BITMIME).
    pub(super) fn compose(
        &self,
        event: &str,
        payload: &Value,
        language: Option<&str>,
        readable: bool,
    ) -> Result<Composed, Failure> {
        let record = payload
            .get("record")
            .and_then(Value::as_object)
            .ok_or_else(|| Failure::message("payload has no record"))?;
        let email = record
            .get("user")
            .and_then(|u| u.get("email"))
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::message("record has no user.email"))?;
        let (chosen, template) = self
            .templates
            .find(event, language, &self.mail.default_language)
            .ok_or_else(|| Failure::message(format!("no template for {event}")))?;

        let token = record.get("token").and_then(Value::as_str);
        let link = match link_template(&self.mail, event) {
            Some(url) => {
                let token = token
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| Failure::message("record has no token"))?;
                let domain = record
                    .get("domain")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.domain);
                Some(fill_link(url, domain, token))
            }
            None => None,
        };
        let mut context = record.clone();
        if let Some(link) = &link {
            context.insert("link".into(), Value::String(link.clone()));
        }
        context.insert("app_name".into(), Value::String(self.app_name.clone()));
        let context = Value::Object(context);

        // A subject is one header line whatever a template or a value contains.
        let subject = render(&template.subject, &context, false)
            .replace(['\r', '\n'], " ")
            .trim()
            .to_string();
        let text = render(&template.text, &context, false);
        let html = render(&template.html, &context, true);

        let to: Address = email
            .parse()
            .map_err(|_| Failure::message("user.email is not a valid address"))?;
        let from = self.from.clone().map_err(Failure::message)?;
        let message = Message::builder()
            .from(from)
            .to(Mailbox::new(None, to))
            .subject(subject.clone())
            .message_id(None)
            .multipart(
                MultiPart::alternative()
                    .singlepart(part(ContentType::TEXT_PLAIN, text, readable))
                    .singlepart(part(ContentType::TEXT_HTML, html, readable)),
            )
            .map_err(|err| Failure::message(format!("message cannot be built: {err}")))?;
        let mut secrets = Vec::new();
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            secrets.push(token.to_string());
            secrets.push(utf8_percent_encode(token, TOKEN_SET).to_string());
        }
        Ok(Composed {
            message,
            subject,
            to: email.to_string(),
            language: chosen.to_string(),
            secrets,
        })
    }
}

/// One body part; 8bit when `readable` and no line passes RFC 5322's 998-octet limit.
fn part(content_type: ContentType, body: String, readable: bool) -> SinglePart {
    let builder = SinglePart::builder().header(content_type);
    if readable {
        let body = body.replace("\r\n", "\n").replace('\n', "\r\n");
        if !body.contains('\0') && body.split("\r\n").all(|line| line.len() <= 998) {
            return builder.body(Body::dangerous_pre_encoded(
                body.into_bytes(),
                ContentTransferEncoding::EightBit,
            ));
        }
        return builder.body(body);
    }
    builder.body(body)
}

pub(super) struct Composed {
    pub message: Message,
    pub subject: String,
    pub to: String,
    pub language: String,
    /// The forms of the token this message carries, kept out of every log line.
    pub secrets: Vec<String>,
}

fn sender(mail: &config::Mail) -> Result<Mailbox, String> {
    let address: Address = mail.sender_email.parse().map_err(|_| {
        format!(
            "mail.sender_email {:?} is not an address",
            mail.sender_email
        )
    })?;
    let name = mail.sender_name.trim();
    Ok(Mailbox::new(
        (!name.is_empty()).then(|| name.to_string()),
        address,
    ))
}

/// The configured URL whose `{{link}}` the event's email carries, if it carries one.
fn link_template<'a>(mail: &'a config::Mail, event: &str) -> Option<&'a str> {
    match event {
        CONFIRMATION_EVENT => Some(&mail.confirmation_url),
        RESET_EVENT => Some(&mail.reset_url),
        _ => None,
    }
}

/// `url` with `{token}` (percent-encoded) and `{domain}` filled. The token goes first: once
/// encoded it has no braces, so it cannot smuggle a `{domain}` in.
fn fill_link(url: &str, domain: &str, token: &str) -> String {
    url.replace(
        "{token}",
        &utf8_percent_encode(token, TOKEN_SET).to_string(),
    )
    .replace("{domain}", domain)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn settings(extra: &str) -> config::Settings {
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mail");
        config::Settings::from_toml(&format!(
            "[mail]\ntemplates_dir = {:?}\n{extra}",
            templates.display().to_string()
        ))
        .unwrap()
    }

    pub(in crate::events::mailer) fn confirmation(token: &str) -> Value {
        json!({"record": {
            "user": {"uid": "ID0000000001", "email": "alice@example.com", "role": "member",
                     "level": 0, "otp": false, "state": "pending"},
            "domain": "exchange.example",
            "token": token,
        }})
    }

    fn text_part(message: &Message) -> String {
        String::from_utf8(message.formatted()).unwrap()
    }

    #[test]
    fn links_carry_the_token_percent_encoded() {
        let url = "https://{domain}/accounts/confirmation?confirmation_token={token}";
        assert_eq!(
            fill_link(url, "x.example", "eyJh.bGc-i_O~"),
            "https://x.example/accounts/confirmation?confirmation_token=eyJh.bGc-i_O~"
        );
        assert_eq!(
            fill_link(url, "x.example", "a+b/c=&d={domain}"),
            "https://x.example/accounts/confirmation?confirmation_token=a%2Bb%2Fc%3D%26d%3D%7Bdomain%7D"
        );
    }

    #[test]
    fn shipped_templates_cover_every_configured_and_mail_only_event_in_every_language() {
        let settings = settings("");
        let templates = Templates::load(&settings.mail.templates_dir);
        let mail_only = crate::events::MAIL_ONLY.iter().map(|e| e.to_string());
        let events: Vec<String> = settings
            .mail
            .events
            .iter()
            .cloned()
            .chain(mail_only)
            .collect();
        for language in ["en", "ru"] {
            for event in &events {
                let (found, template) = templates
                    .find(event, Some(language), language)
                    .unwrap_or_else(|| panic!("{language} lacks {event}"));
                assert_eq!(found, language, "{event} falls back from {language}");
                assert!(!template.subject.trim().is_empty());
                let wants_link = link_template(&settings.mail, event).is_some();
                for body in [&template.text, &template.html] {
                    assert_eq!(
                        body.contains("{{link}}"),
                        wants_link,
                        "{language} {event}: a link exactly where there is a token"
                    );
                }
            }
        }
    }

    #[test]
    fn compose_fills_the_template_of_the_users_language() {
        let settings =
            settings("sender_email = \"noreply@x.example\"\nsender_name = \"X Exchange\"\n");
        let mailer = Composer::new(&settings.mail, &settings.app);
        let composed = mailer
            .compose(
                CONFIRMATION_EVENT,
                &confirmation("tok.en-1"),
                Some("ru"),
                false,
            )
            .unwrap();
        assert_eq!(composed.language, "ru");
        assert_eq!(composed.to, "alice@example.com");
        let raw = text_part(&composed.message);
        assert!(
            raw.contains("From: \"X Exchange\" <noreply@x.example>"),
            "{raw}"
        );
        assert!(raw.contains("To: alice@example.com"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");

        // A record without the token its link needs, and one without a recipient, fail.
        let mut no_token = confirmation("x");
        no_token["record"].as_object_mut().unwrap().remove("token");
        let err = mailer
            .compose(CONFIRMATION_EVENT, &no_token, None, false)
            .err()
            .unwrap();
        assert_eq!(err.reason, "record has no token");
        let err = mailer
            .compose(
                "system.user.password.change",
                &json!({"record": {"user": {}}}),
                None,
                false,
            )
            .err()
            .unwrap();
        assert_eq!(err.reason, "record has no user.email");
        let err = mailer
            .compose("system.unknown", &confirmation("x"), None, false)
            .err()
            .unwrap();
        assert_eq!(err.reason, "no template for system.unknown");
    }
}
