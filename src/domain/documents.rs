//! The rules of KYC documents (Barong §8.4) that need no I/O: the document types and how many
//! files make a complete batch of each, the number's format, the expiry date, the masked
//! number, and what a file's first bytes must be for its extension.

use time::Date;

/// Barong's `document_types` (`config/barong.yml`), spelt as Barong spells them.
pub const DOC_TYPES: &[&str] = &[
    "Passport",
    "Identity card",
    "Driver license",
    "Utility Bill",
    "Residental",
    "Institutional",
    "Address",
];

/// The type of a proof of address (`POST /resource/addresses`).
pub const ADDRESS: &str = "Address";

/// `doc_category` values.
pub const CATEGORIES: &[&str] = &["front_side", "back_side", "selfie"];

/// The longest document number (Barong's limit).
pub const MAX_DOC_NUMBER: usize = 128;

/// The longest identificator kept (the column's width).
pub const MAX_IDENTIFICATOR: usize = 64;

/// How many files make a batch the KYC provider can verify: both sides of a passport's
/// photo page and a selfie count as two for a passport (Barong's rule), front, back and a
/// selfie for the cards. Other types are not sent to the provider.
pub fn batch_size(doc_type: &str) -> Option<usize> {
    match doc_type {
        "Passport" => Some(2),
        "Driver license" | "Identity card" => Some(3),
        _ => None,
    }
}

/// Letters, digits, spaces and `-`, at most [`MAX_DOC_NUMBER`] characters.
pub fn valid_doc_number(number: &str) -> bool {
    !number.is_empty()
        && number.chars().count() <= MAX_DOC_NUMBER
        && number
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
}

/// An identificator given by the client: a short token of letters, digits, `-` and `_`.
pub fn valid_identificator(identificator: &str) -> bool {
    !identificator.is_empty()
        && identificator.len() <= MAX_IDENTIFICATOR
        && identificator
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Keeps the first 2 and last 2 characters: `AB123456` → `AB****56`. Four characters or
/// fewer are all masked (keeping them would show the whole number).
pub fn mask_doc_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < 2 || i >= chars.len() - 2 {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// The expiry checks, in Barong's order: a value that is no date at all
/// (`resource.documents.expire_not_a_date`); then, when expiry is required, one that is not
/// written `YYYY-MM-DD` (`resource.documents.invalid_format`, also for a missing one) or is
/// in the past (`resource.documents.already_expired`). Returns the date to store.
pub fn check_expire(
    value: Option<&str>,
    required: bool,
    today: Date,
) -> Result<Option<Date>, &'static str> {
    let value = value.map(str::trim).filter(|v| !v.is_empty());
    let date = match value {
        None => None,
        Some(text) => Some(parse_loose_date(text).ok_or("resource.documents.expire_not_a_date")?),
    };
    if required {
        let strict = value.is_some_and(|text| {
            text.len() == 10
                && text.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                })
        });
        if !strict {
            return Err("resource.documents.invalid_format");
        }
        if date.is_some_and(|d| d < today) {
            return Err("resource.documents.already_expired");
        }
    }
    Ok(date)
}

/// `Y-M-D` with any number of digits per part (Ruby's `Date.parse` reads `2030-1-5`).
fn parse_loose_date(text: &str) -> Option<Date> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [y, m, d].iter().any(|p| p.is_empty() || p.len() > 4) {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

/// A file type the upload routes accept, known by its extension and recognised by its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Jpeg,
    Png,
    Pdf,
}

impl FileKind {
    /// The kind an extension (lower case, no dot) names.
    pub fn from_extension(ext: &str) -> Option<FileKind> {
        match ext {
            "jpg" | "jpeg" => Some(FileKind::Jpeg),
            "png" => Some(FileKind::Png),
            "pdf" => Some(FileKind::Pdf),
            _ => None,
        }
    }

    /// Whether `head` (the file's first bytes, at least 8 when the file has them) is this
    /// kind's signature.
    pub fn matches(self, head: &[u8]) -> bool {
        match self {
            FileKind::Jpeg => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            FileKind::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            FileKind::Pdf => head.starts_with(b"%PDF-"),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
            FileKind::Pdf => "application/pdf",
        }
    }

    /// The extension stored files of this kind get.
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Jpeg => "jpg",
            FileKind::Png => "png",
            FileKind::Pdf => "pdf",
        }
    }
}

/// The extension of a client's file name, lower-cased: `Scan.JPG` → `jpg`.
pub fn extension_of(filename: &str) -> Option<String> {
    let name = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2025 - 06 - 01);

    #[test]
    fn numbers_masks_and_identificators() {
        assert!(valid_doc_number("AB 123-456"));
        assert!(!valid_doc_number("AB_123"));
        assert!(!valid_doc_number(""));
        assert!(!valid_doc_number(&"1".repeat(129)));
        assert!(valid_doc_number(&"1".repeat(128)));
        assert_eq!(mask_doc_number("AB123456"), "AB****56");
        assert_eq!(mask_doc_number("ABCDE"), "AB*DE");
        assert_eq!(mask_doc_number("ABCD"), "****");
        assert!(valid_identificator("a1-b_2"));
        assert!(!valid_identificator("a b"));
        assert!(!valid_identificator(&"a".repeat(65)));
    }

    #[test]
    fn expiry_follows_barongs_order() {
        assert_eq!(
            check_expire(Some("2030-01-05"), true, TODAY),
            Ok(Some(date!(2030 - 01 - 05)))
        );
        assert!(
            check_expire(Some("2025-06-01"), true, TODAY)
                .unwrap()
                .is_some()
        );
        assert_eq!(
            check_expire(Some("soon"), true, TODAY),
            Err("resource.documents.expire_not_a_date")
        );
        assert_eq!(
            check_expire(Some("2030-02-30"), false, TODAY),
            Err("resource.documents.expire_not_a_date")
        );
        assert_eq!(
            check_expire(Some("2030-1-5"), true, TODAY),
            Err("resource.documents.invalid_format")
        );
        assert_eq!(
            check_expire(None, true, TODAY),
            Err("resource.documents.invalid_format")
        );
        assert_eq!(
            check_expire(Some("2020-01-01"), true, TODAY),
            Err("resource.documents.already_expired")
        );
        assert_eq!(check_expire(None, false, TODAY), Ok(None));
        assert_eq!(
            check_expire(Some("2020-1-1"), false, TODAY),
            Ok(Some(date!(2020 - 01 - 01)))
        );
    }

    #[test]
    fn files_are_known_by_extension_and_recognised_by_content() {
        assert_eq!(extension_of("Scan.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension_of("dir/a.b.pdf").as_deref(), Some("pdf"));
        assert_eq!(extension_of(".png"), None);
        assert_eq!(extension_of("noext"), None);
        let jpeg = FileKind::from_extension("jpeg").unwrap();
        assert!(jpeg.matches(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]));
        assert!(!jpeg.matches(b"%PDF-1.7"));
        assert!(FileKind::Png.matches(b"\x89PNG\r\n\x1a\n\0\0"));
        assert!(FileKind::Pdf.matches(b"%PDF-1.4\n"));
        assert!(!FileKind::Pdf.matches(b"<html>"));
        assert_eq!(FileKind::from_extension("exe"), None);
        assert_eq!(batch_size("Passport"), Some(2));
        assert_eq!(batch_size("Identity card"), Some(3));
        assert_eq!(batch_size("Utility Bill"), None);
    }
}
