//! A KYC profile's fields and Barong's model rules for them (§8.3): what each may contain, the
//! country as ISO 3166 alpha-2 or alpha-3, a birth date not in the future, metadata as JSON.
//! Pure: the API collects the codes, the store writes what passed.

use time::Date;

/// The fields a user submits; `None` leaves a field as it is (or empty, for a new profile).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub metadata: Option<String>,
}

/// Sealing contexts of personal data (the field name binds the ciphertext to its column).
pub mod contexts {
    pub const FIRST_NAME: &str = "profile.first_name";
    pub const LAST_NAME: &str = "profile.last_name";
    pub const DOB: &str = "profile.dob";
    pub const ADDRESS: &str = "profile.address";
    pub const PHONE_NUMBER: &str = "phone.number";
    pub const DOC_NUMBER: &str = "document.doc_number";
    pub const DOC_ADDRESS: &str = "document.address";
}

/// Barong's profile states.
pub mod states {
    pub const DRAFTED: &str = "drafted";
    pub const SUBMITTED: &str = "submitted";
    pub const VERIFIED: &str = "verified";
    pub const REJECTED: &str = "rejected";
}

/// Every model error of `fields` (`<attr>.<error>`), in field order; empty when valid.
/// `today` bounds the birth date.
pub fn errors(fields: &ProfileFields, today: Date) -> Vec<String> {
    let mut codes = Vec::new();
    let text_rule = |attr: &str,
                     value: &Option<String>,
                     min: usize,
                     allowed: &dyn Fn(char) -> bool,
                     codes: &mut Vec<String>| {
        let Some(value) = value else { return };
        let length = value.chars().count();
        if length < min {
            codes.push(format!("{attr}.too_short"));
        } else if length > 255 {
            codes.push(format!("{attr}.too_long"));
        }
        if !value.chars().all(allowed) {
            codes.push(format!("{attr}.invalid"));
        }
    };
    let word = |c: char| c.is_alphanumeric() || c == '_' || c.is_whitespace();
    let name = |c: char| word(c) || c == '-' || c == '\'';
    text_rule("first_name", &fields.first_name, 1, &name, &mut codes);
    text_rule("last_name", &fields.last_name, 1, &name, &mut codes);
    if let Some(dob) = &fields.dob {
        match parse_date(dob) {
            Some(date) if date <= today => {}
            Some(_) => codes.push("dob.in_future".into()),
            None => codes.push("dob.invalid".into()),
        }
    }
    text_rule(
        "address",
        &fields.address,
        1,
        &|c| word(c) || "-–,.~;/:#\"\\&')(".contains(c),
        &mut codes,
    );
    text_rule(
        "postcode",
        &fields.postcode,
        2,
        &|c| word(c) || c == '-',
        &mut codes,
    );
    text_rule(
        "city",
        &fields.city,
        1,
        &|c| word(c) || "-–.~'".contains(c),
        &mut codes,
    );
    if let Some(country) = &fields.country
        && !is_country(country)
    {
        // Barong's message, spaces and all: clients match on it.
        codes.push("country.must have alpha2 or alpha3 format".into());
    }
    if let Some(metadata) = &fields.metadata
        && serde_json::from_str::<serde_json::Value>(metadata).is_err()
    {
        codes.push("metadata.invalid_format".into());
    }
    codes
}

/// `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format).ok()
}

/// ISO 3166-1 alpha-2 or alpha-3, upper case as ISO writes it.
fn is_country(code: &str) -> bool {
    isocountry::CountryCode::for_alpha2(code).is_ok()
        || isocountry::CountryCode::for_alpha3(code).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: Date = time::macros::date!(2026 - 12 - 01);

    fn fields() -> ProfileFields {
        ProfileFields {
            first_name: Some("Anna-Maria O'Neil".into()),
            last_name: Some("Smith".into()),
            dob: Some("1990-05-17".into()),
            address: Some("12 Baker St., Flat #3 (rear)".into()),
            postcode: Some("NW1 6XE".into()),
            city: Some("St. Albans".into()),
            country: Some("GB".into()),
            metadata: Some("{\"nationality\":\"GB\"}".into()),
        }
    }

    #[test]
    fn a_complete_profile_passes() {
        assert!(
            errors(&fields(), TODAY).is_empty(),
            "{:?}",
            errors(&fields(), TODAY)
        );
        let alpha3 = ProfileFields {
            country: Some("GBR".into()),
            ..fields()
        };
        assert!(errors(&alpha3, TODAY).is_empty());
        assert!(errors(&ProfileFields::default(), TODAY).is_empty());
    }

    #[test]
    fn each_rule_has_its_code() {
        let bad = ProfileFields {
            first_name: Some("R2<D2>".into()),
            last_name: Some(String::new()),
            dob: Some("2030-01-01".into()),
            address: Some("x".repeat(256)),
            postcode: Some("1".into()),
            city: Some("Paris!".into()),
            country: Some("XX".into()),
            metadata: Some("{".into()),
        };
        assert_eq!(
            errors(&bad, TODAY),
            [
                "first_name.invalid",
                "last_name.too_short",
                "dob.in_future",
                "address.too_long",
                "postcode.too_short",
                "city.invalid",
                "country.must have alpha2 or alpha3 format",
                "metadata.invalid_format",
            ]
        );
        let not_a_date = ProfileFields {
            dob: Some("17/05/1990".into()),
            ..fields()
        };
        assert_eq!(errors(&not_a_date, TODAY), ["dob.invalid"]);
    }
}
