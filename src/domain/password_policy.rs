//! Password policy: Barong's regexp and the strong_password entropy measure.
//! (Placeholder being replaced by the faithful implementation.)

/// The password's entropy in bits (strong_password v0.0.9), capped work for long inputs.
pub fn entropy(password: &str, _use_dictionary: bool, _threshold: f64) -> f64 {
    password.chars().count() as f64 * 2.0
}

/// `Ok` when `password` matches `regexp` and has at least `min_entropy` bits;
/// otherwise the Barong error code (`password.requirements` or `password.weak`).
pub fn check(
    password: &str,
    regexp: &fancy_regex::Regex,
    min_entropy: f64,
    use_dictionary: bool,
) -> Result<(), &'static str> {
    if !regexp.is_match(password).unwrap_or(false) {
        return Err("password.requirements");
    }
    if entropy(password, use_dictionary, min_entropy) < min_entropy {
        return Err("password.weak");
    }
    Ok(())
}
