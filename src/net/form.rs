//! `application/x-www-form-urlencoded` text (query strings and form bodies), decoded, as the
//! WHATWG URL standard parses it (the `form_urlencoded` crate, axum's own form parser).

/// Splits `a=1&b=2` into decoded pairs (`+` is a space; bad escapes are kept as typed; bytes
/// that are not UTF-8 after decoding become U+FFFD).
pub fn form_pairs(body: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(body.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pairs_are_decoded() {
        let pairs: Vec<_> =
            super::form_pairs("a=1&b=x+y&c=%41&d&&e=%zz&f=%2B+%2b&=g&h=%ff&i=a=b").collect();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "A".into()),
                ("d".into(), "".into()),
                ("e".into(), "%zz".into()),
                ("f".into(), "+ +".into()),
                ("".into(), "g".into()),
                ("h".into(), "\u{fffd}".into()),
                ("i".into(), "a=b".into()),
            ]
        );
    }
}
