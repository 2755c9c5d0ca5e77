//! `application/x-www-form-urlencoded` text (query strings and form bodies), decoded.

/// Splits `a=1&b=2` into decoded pairs (`+` is a space; bad escapes are kept as typed).
pub fn form_pairs(body: &str) -> impl Iterator<Item = (String, String)> + '_ {
    body.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn pairs_are_decoded() {
        let pairs: Vec<_> = super::form_pairs("a=1&b=x+y&c=%41&d&&e=%zz").collect();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "A".into()),
                ("d".into(), "".into()),
                ("e".into(), "%zz".into())
            ]
        );
    }
}
