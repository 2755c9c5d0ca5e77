//! Grape-style readers of request parameters: each reader checks one parameter the way
//! Grape's `requires`/`optional` with a type and `allow_blank: false` would, and collects its
//! refusal (`<prefix>.missing_<name>`, `empty_`, `non_integer_`, `invalid_`) instead of
//! answering at once, so that one 422 carries every code, as Grape's does. Handlers call
//! [`refuse`] once they have read everything.

use crate::api::params::Params;

/// A required integer (`id`): absent → `<prefix>.missing_<name>` and `empty_<name>`, blank →
/// `empty_<name>`, not an integer → `<prefix>.non_integer_<name>`.
pub fn required_integer(
    params: &Params,
    prefix: &str,
    name: &str,
    codes: &mut Vec<String>,
) -> Option<i64> {
    let Some(text) = params.text(name) else {
        codes.push(format!("{prefix}.missing_{name}"));
        codes.push(format!("{prefix}.empty_{name}"));
        return None;
    };
    integer_text(&text, prefix, name, codes)
}

/// An optional integer: absent → `None`; otherwise as [`required_integer`].
pub fn optional_integer(
    params: &Params,
    prefix: &str,
    name: &str,
    codes: &mut Vec<String>,
) -> Option<i64> {
    integer_text(&params.text(name)?, prefix, name, codes)
}

fn integer_text(text: &str, prefix: &str, name: &str, codes: &mut Vec<String>) -> Option<i64> {
    if text.trim().is_empty() {
        codes.push(format!("{prefix}.empty_{name}"));
        return None;
    }
    let parsed = text.trim().parse::<i64>().ok();
    if parsed.is_none() {
        codes.push(format!("{prefix}.non_integer_{name}"));
    }
    parsed
}

/// A required text: absent → `missing_` and `empty_`, blank → `empty_` (Grape's
/// `requires …, allow_blank: false`).
pub fn required_text(
    params: &Params,
    prefix: &str,
    name: &str,
    codes: &mut Vec<String>,
) -> Option<String> {
    let Some(text) = params.text(name) else {
        codes.push(format!("{prefix}.missing_{name}"));
        codes.push(format!("{prefix}.empty_{name}"));
        return None;
    };
    non_blank(text, prefix, name, codes)
}

/// An optional text that may not be blank when given (`optional …, allow_blank: false`).
pub fn optional_text(
    params: &Params,
    prefix: &str,
    name: &str,
    codes: &mut Vec<String>,
) -> Option<String> {
    non_blank(params.text(name)?, prefix, name, codes)
}

/// Blank → `empty_<name>`; a NUL character → `invalid_<name>` (Postgres refuses NUL in text,
/// so it would otherwise surface as a database error, not the 4xx bad input deserves).
fn non_blank(text: String, prefix: &str, name: &str, codes: &mut Vec<String>) -> Option<String> {
    if text.trim().is_empty() {
        codes.push(format!("{prefix}.empty_{name}"));
        None
    } else if text.contains('\0') {
        codes.push(format!("{prefix}.invalid_{name}"));
        None
    } else {
        Some(text)
    }
}

/// The 422 of every collected code, if any.
pub fn refuse(codes: Vec<String>) -> crate::api::error::ApiResult<()> {
    crate::api::error::ApiError::unprocessable_all(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_report_grapes_codes() {
        let params = Params::from_query(Some("id=x&blank=&n=7&t=a&nul=a%00b"));
        let mut codes = Vec::new();
        assert_eq!(required_integer(&params, "p", "id", &mut codes), None);
        assert_eq!(required_integer(&params, "p", "none", &mut codes), None);
        assert_eq!(optional_integer(&params, "p", "blank", &mut codes), None);
        assert_eq!(optional_integer(&params, "p", "n", &mut codes), Some(7));
        assert_eq!(optional_integer(&params, "p", "absent", &mut codes), None);
        assert_eq!(optional_text(&params, "p", "blank", &mut codes), None);
        assert_eq!(
            required_text(&params, "p", "t", &mut codes).as_deref(),
            Some("a")
        );
        assert_eq!(optional_text(&params, "p", "nul", &mut codes), None);
        assert_eq!(
            codes,
            [
                "p.non_integer_id",
                "p.missing_none",
                "p.empty_none",
                "p.empty_blank",
                "p.empty_blank",
                "p.invalid_nul",
            ]
        );
    }
}
