//! Validation of what people type: email addresses (Barong's strict `email_validator` rules)
//! and usernames.

/// `local@domain`, Barong's strict mode (§7.7): the local part is 1–64 "atom" characters
/// (letters, digits and ``-+_!"'#$%^&*{}/=?`|~``) with single dots between them; the domain
/// is labels of letters, digits and inner hyphens (≤ 63 each), the last of letters only.
pub fn email_valid(email: &str) -> bool {
    let email = email.trim();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    if local.is_empty() || local.chars().count() > 64 || domain.is_empty() || email.len() > 255 {
        return false;
    }
    let atom = |c: char| c.is_alphanumeric() || "-+_!\"'#$%^&*{}/=?`|~".contains(c);
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    if !local.chars().all(|c| c == '.' || atom(c)) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let Some((last, rest)) = labels.split_last() else {
        return false;
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    rest.iter().all(|l| label_ok(l))
        && !last.is_empty()
        && last.len() <= 63
        && last.chars().all(|c| c.is_alphabetic())
}

/// Username codes for `username` (4–12 of `[a-zA-Z0-9]`), all that apply.
pub fn username_errors(username: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    let len = username.chars().count();
    if len < 4 {
        errors.push("username.too_short");
    }
    if len > 12 {
        errors.push("username.too_long");
    }
    if username.is_empty() || !username.chars().all(|c| c.is_ascii_alphanumeric()) {
        errors.push("username.invalid");
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "user@example.com",
            "a.b+c@sub.example.org",
            "user@localhost",
            "o'neil@x.io",
        ] {
            assert!(email_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "user",
            "@x.com",
            "user@",
            ".a@x.com",
            "a.@x.com",
            "a..b@x.com",
            "a@-x.com",
            "a@x.c0m",
            "a b@x.com",
            "a@x..com",
        ] {
            assert!(!email_valid(bad), "{bad}");
        }
    }

    #[test]
    fn usernames() {
        assert!(username_errors("alice1").is_empty());
        assert_eq!(
            username_errors(""),
            vec!["username.too_short", "username.invalid"]
        );
        assert_eq!(username_errors("abcdefghijklm"), vec!["username.too_long"]);
        assert_eq!(username_errors("al_ce"), vec!["username.invalid"]);
    }
}
