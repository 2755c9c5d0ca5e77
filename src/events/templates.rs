//! Mail templates: one TOML file per language (`en.toml`, `ru.toml`, …; the file name is the
//! language), a table per event name, loaded once at start; and their rendering.
//!
//! ```toml
//! ["system.user.email.confirmation.token"]
//! subject = "Email Confirmation"
//! text = "Open {{link}} to confirm {{user.email}}."
//! html = "<a href=\"{{link}}\">Confirm</a>"
//! ```
//!
//! `{{path}}` reads the event's record by a dotted path; the mailer adds `{{link}}` and
//! `{{app_name}}`. Unknown placeholders render empty; values are HTML-escaped in `html`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// One email of one language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Templates by language, then by event name.
#[derive(Debug, Default)]
pub struct Templates {
    by_language: HashMap<String, HashMap<String, Template>>,
}

impl Templates {
    /// Reads every `<language>.toml` of `dir`. A missing directory or a bad file is logged and
    /// counted (`portcullis_mail_template_errors_total`), never fatal: the node keeps serving,
    /// and the emails that lack a template fail (and are counted) one by one.
    pub fn load(dir: &Path) -> Templates {
        let errors = metrics::counter!("portcullis_mail_template_errors_total");
        let mut templates = Templates::default();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) => {
                tracing::error!(dir = %dir.display(), error = %err, "mail templates cannot be read");
                errors.increment(1);
                return templates;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let Some(language) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let parsed = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| Templates::parse(&text));
            match parsed {
                Ok(events) => {
                    templates
                        .by_language
                        .insert(language.to_ascii_lowercase(), events);
                }
                Err(err) => {
                    tracing::error!(path = %path.display(), error = %err, "mail templates file is invalid; its language is not used");
                    errors.increment(1);
                }
            }
        }
        templates
    }

    /// One language's file: a table per event name.
    pub fn parse(text: &str) -> Result<HashMap<String, Template>, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Logs the configured events that no template of the default language (or English)
    /// covers: they would fail for every user.
    pub fn check(&self, events: &[String], default_language: &str) {
        for event in events {
            if self.find(event, None, default_language).is_none() {
                tracing::error!(event = %event, "mail: no template for this event in the default language or en");
            }
        }
    }

    /// The template of `event` in `language`, else in `default_language`, else in `en`;
    /// with the language chosen.
    pub fn find<'a>(
        &'a self,
        event: &str,
        language: Option<&'a str>,
        default_language: &'a str,
    ) -> Option<(&'a str, &'a Template)> {
        [language, Some(default_language), Some("en")]
            .into_iter()
            .flatten()
            .find_map(|lang| {
                self.by_language
                    .get(lang)
                    .and_then(|events| events.get(event))
                    .map(|template| (lang, template))
            })
    }
}

/// Replaces each `{{path}}` of `template` by the value at the dotted `path` of `context`
/// (strings as they are, numbers and booleans written out, anything else empty), HTML-escaped
/// when `html`. An unclosed `{{` is kept as text.
pub fn render(template: &str, context: &Value, html: bool) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let value = lookup(context, after[..end].trim());
        if html {
            escape_html(&value, &mut out);
        } else {
            out.push_str(&value);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn lookup(context: &Value, path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let mut value = context;
    for segment in path.split('.') {
        value = match value {
            Value::Object(map) => match map.get(segment) {
                Some(v) => v,
                None => return String::new(),
            },
            Value::Array(items) => match segment.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(v) => v,
                None => return String::new(),
            },
            _ => return String::new(),
        };
    }
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

fn escape_html(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn render_reads_dotted_paths_and_leaves_unknown_ones_empty() {
        let context = json!({"user": {"email": "a@b.c", "level": 2, "otp": true,
                                      "tags": ["x", "y"], "nested": {"k": 1}},
                             "domain": "d.example"});
        assert_eq!(
            render(
                "{{user.email}} {{ domain }} {{user.level}} {{user.otp}} {{user.tags.1}}",
                &context,
                false
            ),
            "a@b.c d.example 2 true y"
        );
        assert_eq!(
            render(
                "[{{nope}}][{{user.nope}}][{{user.email.x}}][{{user.nested}}][{{}}]",
                &context,
                false
            ),
            "[][][][][]"
        );
        assert_eq!(render("a {{user.email", &context, false), "a {{user.email");
        assert_eq!(
            render("no placeholders", &context, false),
            "no placeholders"
        );
    }

    #[test]
    fn render_escapes_values_in_html_only() {
        let context = json!({"name": "<b>\"Tom\" & 'Jerry'</b>"});
        assert_eq!(
            render("<p>{{name}}</p>", &context, true),
            "<p>&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;</p>"
        );
        assert_eq!(
            render("{{name}}", &context, false),
            "<b>\"Tom\" & 'Jerry'</b>"
        );
    }

    #[test]
    fn a_missing_or_invalid_templates_file_is_not_fatal() {
        let dir =
            std::env::temp_dir().join(format!("pc-mail-{}", crate::crypto::random_hex::<6>()));
        assert!(Templates::load(&dir).by_language.is_empty());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("en.toml"),
            "[\"e\"]\nsubject = \"S\"\ntext = \"T\"\nhtml = \"H\"\n",
        )
        .unwrap();
        std::fs::write(dir.join("ru.toml"), "[\"e\"]\nsubject = \"S\"\n").unwrap();
        std::fs::write(dir.join("de.toml"), "not toml [").unwrap();
        let templates = Templates::load(&dir);
        let mut languages: Vec<&String> = templates.by_language.keys().collect();
        languages.sort();
        assert_eq!(languages, ["en"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn language_falls_back_to_the_default_then_to_english() {
        let mut templates = Templates::default();
        let t = |s: &str| Template {
            subject: s.into(),
            text: String::new(),
            html: String::new(),
        };
        templates.by_language.insert(
            "en".into(),
            HashMap::from([("a".into(), t("en a")), ("b".into(), t("en b"))]),
        );
        templates
            .by_language
            .insert("de".into(), HashMap::from([("a".into(), t("de a"))]));
        templates
            .by_language
            .insert("ru".into(), HashMap::from([("b".into(), t("ru b"))]));
        let subject = |event, language| {
            templates
                .find(event, language, "de")
                .map(|(lang, t)| format!("{lang}:{}", t.subject))
        };
        assert_eq!(subject("b", Some("ru")).as_deref(), Some("ru:ru b"));
        assert_eq!(subject("a", Some("ru")).as_deref(), Some("de:de a"));
        assert_eq!(subject("a", Some("fr")).as_deref(), Some("de:de a"));
        assert_eq!(subject("b", None).as_deref(), Some("en:en b"));
        assert_eq!(subject("c", Some("ru")), None);
    }
}
