//! Phone numbers as Barong keeps them (§8.5): whatever the user typed, reduced to its digits,
//! read as an international number (a leading country code, no `+`), and accepted only when
//! libphonenumber's metadata says it is a valid number of a known country (Barong's Phonelib
//! with strict validation). National forms (`0501234567`) are refused: without a country
//! code they are not international numbers.

use phonenumber::Mode;

/// A valid number in the form we store and compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    /// International digits without `+`: `380501234567`.
    pub digits: String,
    /// ISO 3166-1 alpha-2 of the number's region: `UA`.
    pub country: String,
    /// How many leading digits are the country calling code (`380` → 3).
    pub code_len: usize,
}

/// Longest number E.164 allows (15 digits); anything longer is refused before parsing.
const MAX_DIGITS: usize = 15;

impl PhoneNumber {
    /// `None` when `input` is not a valid international number.
    pub fn parse(input: &str) -> Option<PhoneNumber> {
        let digits: String = input.chars().filter(char::is_ascii_digit).collect();
        if digits.is_empty() || digits.len() > MAX_DIGITS {
            return None;
        }
        let number = phonenumber::parse(None, format!("+{digits}")).ok()?;
        if !phonenumber::is_valid(&number) {
            return None;
        }
        let country = number.country().id()?.as_ref().to_string();
        let e164 = number.format().mode(Mode::E164).to_string();
        let digits = e164.trim_start_matches('+').to_string();
        Some(PhoneNumber {
            code_len: number.code().value().to_string().len(),
            digits,
            country,
        })
    }

    /// The number as shown back to its owner: the country code and the last 4 digits kept,
    /// the rest starred (`380*****4567`).
    pub fn masked(&self) -> String {
        mask(&self.digits, self.code_len)
    }

    /// The last 4 digits, as a security notice names the number.
    pub fn last_digits(&self) -> &str {
        &self.digits[self.digits.len().saturating_sub(4)..]
    }
}

/// Keeps the first `keep_start` and last 4 characters of `number`, stars the rest.
pub fn mask(number: &str, keep_start: usize) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= keep_start + 4 {
        return number.to_string();
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i >= chars.len() - 4 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// A stored number (already normalised) masked: the country code is read from the number
/// itself; a number the metadata no longer knows keeps its first digit only.
pub fn mask_stored(digits: &str) -> String {
    match PhoneNumber::parse(digits) {
        Some(number) => number.masked(),
        None => mask(digits, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_reduced_to_international_digits_and_strictly_validated() {
        let ua = PhoneNumber::parse("+380 (50) 123-45-67").unwrap();
        assert_eq!(ua.digits, "380501234567");
        assert_eq!(ua.country, "UA");
        assert_eq!(ua.code_len, 3);
        assert_eq!(ua.masked(), "380*****4567");
        assert_eq!(ua.last_digits(), "4567");
        let us = PhoneNumber::parse("1-415-555-2671").unwrap();
        assert_eq!(
            (us.digits.as_str(), us.country.as_str()),
            ("14155552671", "US")
        );
        assert_eq!(us.masked(), "1******2671");
        let gb = PhoneNumber::parse("+44 7400 123456").unwrap();
        assert_eq!(
            (gb.digits.as_str(), gb.country.as_str()),
            ("447400123456", "GB")
        );
        // National forms, too short, too long, unknown codes, nothing at all.
        for bad in [
            "0501234567",
            "38050",
            "3805012345678901234",
            "999123456789",
            "",
            "phone",
            "+",
        ] {
            assert_eq!(PhoneNumber::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn stored_numbers_mask_by_their_own_country_code() {
        assert_eq!(mask_stored("380501234567"), "380*****4567");
        assert_eq!(mask_stored("14155552671"), "1******2671");
        assert_eq!(mask_stored("99912345678"), "9******5678");
        assert_eq!(mask("1234", 3), "1234");
    }
}
