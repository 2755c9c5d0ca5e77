//! An email address of an account, parsed once at the edge (zero2prod's `SubscriberEmail`):
//! code past the edge takes an [`Email`] and never checks a string again.

use super::validation;

/// A trimmed address that passed Barong's strict validator, or one an identity provider
/// vouched for (see [`Email::vouched`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

/// The code of an address that is not one (Barong's `email.invalid`).
pub const INVALID: &str = "email.invalid";

impl Email {
    /// The address `raw` names, trimmed, or [`INVALID`].
    pub fn parse(raw: &str) -> Result<Email, &'static str> {
        let trimmed = raw.trim();
        if validation::email_valid(trimmed) {
            Ok(Email(trimmed.to_string()))
        } else {
            Err(INVALID)
        }
    }

    /// An address an identity provider verified (Auth0's `email_verified`), taken as it is:
    /// accounts created at a first Auth0 login have always kept the provider's spelling, and
    /// refusing an address the provider verified would lock its owner out.
    pub fn vouched(address: &str) -> Email {
        Email(address.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_trims_and_refuses_what_barong_refuses() {
        assert_eq!(
            Email::parse("  alice@example.com ").unwrap().as_str(),
            "alice@example.com"
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a..b@example.com",
            "a@b.c0m",
        ] {
            assert_eq!(Email::parse(bad), Err(INVALID), "{bad:?}");
        }
    }
}
