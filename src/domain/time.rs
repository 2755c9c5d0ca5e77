//! How timestamps are written in what we return and emit: Barong's ISO-8601 form.

use ::time::{OffsetDateTime, UtcOffset};

/// ISO-8601 UTC with seconds: `2020-06-01T07:01:20Z` (Grape entities and EventAPI records).
///
/// Written field by field rather than with a `time` format description, whose `format` is
/// fallible: this one cannot fail, so no request path has to handle (or panic on) an error.
pub fn iso(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// ISO-8601 UTC with milliseconds: `2020-06-01T07:03:18.000Z`. Barong renders a phone's
/// `validated_at` so (it is not formatted, unlike every other timestamp).
pub fn iso_millis(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let seconds = iso(t);
    format!("{}.{:03}Z", seconds.trim_end_matches('Z'), t.millisecond())
}

#[cfg(test)]
mod tests {
    use super::{iso, iso_millis};

    #[test]
    fn iso_millis_keeps_milliseconds() {
        assert_eq!(
            iso_millis(datetime!(2020-06-01 07:03:18.0456 UTC)),
            "2020-06-01T07:03:18.045Z"
        );
        assert_eq!(
            iso_millis(datetime!(2020-06-01 10:03:18 +3)),
            "2020-06-01T07:03:18.000Z"
        );
    }

    use ::time::macros::datetime;

    #[test]
    fn iso_is_utc_with_seconds_and_zero_padded() {
        assert_eq!(
            iso(datetime!(2020-06-01 07:01:20 UTC)),
            "2020-06-01T07:01:20Z"
        );
        assert_eq!(
            iso(datetime!(0987-01-02 03:04:05.999 UTC)),
            "0987-01-02T03:04:05Z"
        );
        // Another offset is converted, not just relabelled.
        assert_eq!(
            iso(datetime!(2020-06-01 09:01:20 +02:00)),
            "2020-06-01T07:01:20Z"
        );
    }
}
