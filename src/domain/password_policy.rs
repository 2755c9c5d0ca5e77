//! Password policy: Barong's regexp check and the entropy measure of the Ruby gem
//! `strong_password` v0.0.9, which Barong 2.6 pins (`PasswordStrengthChecker` calls
//! `StrongPassword::StrengthChecker.new(min_entropy:, use_dictionary:).calculate_entropy`).
//!
//! What the gem computes, for a password cut to its first 1000 characters:
//!
//! * `EntropyCalculator`: NIST-style bits where each repeat of a character is worth less
//!   (×0.75 per earlier use), plus `NistBonusBits`.
//! * `QwertyAdjuster`: the bits of the password and of its reverse; when that is not
//!   already below the threshold, also the bits after every 3–6 character keyboard or
//!   alphabet run has been replaced by `*` (the password, then its reverse).
//! * `DictionaryAdjuster` (only with `use_dictionary`): the lower-cased password and its
//!   keyboard-shift and leet-speak variants, each with its first common password (of at
//!   least four characters, from the gem's bundled list) replaced by `*`.
//!
//! The entropy is the minimum of the bits of the password, of its lower-cased form, the
//! qwerty value and (optionally) the dictionary value. Ruby works on characters, so all of
//! this works on `char`s, never bytes.
//!
//! Ported from the gem's `lib/strong_password/*.rb` in the form 0.0.9 ships (the
//! configure-once API of 0.0.8 onwards: one `Regexp.union` of keyboard runs with early
//! returns, the inline 10,000-word list sorted longest first). `common_passwords.txt` is that
//! list, one word a line in the gem's order.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// `StrengthChecker::PASSWORD_LIMIT`: characters beyond this are ignored.
const PASSWORD_LIMIT: usize = 1000;

/// The gem's default `min_word_length`; Barong never changes it.
const MIN_WORD_LENGTH: usize = 4;

/// The password's entropy in bits (strong_password v0.0.9).
///
/// `threshold` is the gem's `min_entropy`: the qwerty adjuster stops early once it has
/// found a value below it (Barong passes `BARONG_PASSWORD_MIN_ENTROPY`).
pub fn entropy(password: &str, use_dictionary: bool, threshold: f64) -> f64 {
    GEM.entropy(password, use_dictionary, threshold)
}

/// `Ok` when `password` matches `regexp` and has at least `min_entropy` bits;
/// otherwise the Barong error code (`password.requirements` or `password.weak`).
pub fn check(
    password: &str,
    regexp: &fancy_regex::Regex,
    min_entropy: f64,
    use_dictionary: bool,
) -> Result<(), &'static str> {
    // Barong checks the regexp first and computes the entropy only for a matching password.
    if !regexp.is_match(password).unwrap_or(false) {
        return Err("password.requirements");
    }
    if entropy(password, use_dictionary, min_entropy) < min_entropy {
        return Err("password.weak");
    }
    Ok(())
}

/// The measure, with a switch for the NIST bonus bits: the gem's own specs stub the bonus to
/// zero, and the tests below replay them the same way.
#[derive(Clone, Copy)]
struct Measure {
    with_bonus: bool,
}

/// The measure as the gem runs it.
const GEM: Measure = Measure { with_bonus: true };

impl Measure {
    /// `StrengthChecker#calculate_entropy`.
    fn entropy(self, password: &str, use_dictionary: bool, threshold: f64) -> f64 {
        let password: Vec<char> = password.chars().take(PASSWORD_LIMIT).collect();
        let mut lowest = self
            .bits(&password)
            .min(self.bits(&downcase(&password)))
            .min(self.qwerty_adjusted(&password, threshold));
        if use_dictionary {
            lowest = lowest.min(self.dictionary_adjusted(&password));
        }
        lowest
    }

    /// `EntropyCalculator.calculate` (repeats weakened): the first character is worth 4
    /// bits, the next seven 2, the next twelve 1.5 and any later one 1, each multiplied by
    /// the character's weight, which starts at 1 and shrinks by 0.75 at every use. The
    /// additions run in the gem's order so the floating-point result is the same.
    fn bits(self, password: &[char]) -> f64 {
        let mut weights: HashMap<char, f64> = HashMap::new();
        let mut bits = 0.0;
        for (position, &c) in password.iter().enumerate() {
            let weight = weights.entry(c).or_insert(1.0);
            let base = *weight;
            *weight *= 0.75;
            bits += match position {
                0 => 4.0,
                1..=7 => base * 2.0,
                8..=19 => base * 1.5,
                _ => base,
            };
        }
        if self.with_bonus {
            bits + nist_bonus_bits(password)
        } else {
            bits
        }
    }

    /// `QwertyAdjuster#adjusted_entropy`. The password keeps its case here (only the
    /// dictionary adjuster lower-cases), so upper-case keyboard runs are not masked.
    fn qwerty_adjusted(self, password: &[char], threshold: f64) -> f64 {
        let reversed: Vec<char> = password.iter().rev().copied().collect();
        let mut lowest = self.bits(password).min(self.bits(&reversed));
        // Already below what the caller cares about: the gem stops looking here.
        if lowest < threshold {
            return lowest;
        }
        let masked = mask_keyboard_runs(password);
        if masked != password {
            lowest = lowest.min(self.bits(&masked));
        }
        if lowest < threshold {
            return lowest;
        }
        let masked_reversed = mask_keyboard_runs(&reversed);
        if masked_reversed != reversed {
            lowest = lowest.min(self.bits(&masked_reversed));
        }
        lowest
    }

    /// `DictionaryAdjuster#adjusted_entropy`: no early return in this version, so the
    /// threshold plays no part.
    fn dictionary_adjusted(self, password: &[char]) -> f64 {
        let lower = downcase(password);
        password_variants(&lower)
            .iter()
            .map(|variant| self.bits(&mask_first_common_password(variant)))
            .fold(self.bits(&lower), f64::min)
    }
}

/// `NistBonusBits.calculate_bonus_bits_for`. Ruby's `[[:upper:]]`, `[[:lower:]]` and
/// `[[:digit:]]` are the Unicode Uppercase, Lowercase and Decimal_Number properties;
/// "other" is anything outside `[a-zA-Z0-9 ]`.
fn nist_bonus_bits(password: &[char]) -> f64 {
    let upper = password.iter().any(|c| c.is_uppercase());
    let lower = password.iter().any(|c| c.is_lowercase());
    let numeric = password.iter().any(|&c| is_decimal_number(c));
    let other = password
        .iter()
        .any(|&c| !(c.is_ascii_alphanumeric() || c == ' '));
    let space = password.contains(&' ');

    let mut bonus: f64 = if upper && lower && other && numeric {
        6.0
    } else if upper && lower && other && !numeric {
        5.0
    } else if numeric && other && !upper && !lower {
        -2.0
    } else if numeric && !other && !upper && !lower {
        -6.0
    } else {
        0.0
    };
    if !space {
        bonus -= 2.0;
    } else if ruby_whitespace_split_count(password) > 3 {
        bonus += 1.0;
    }
    bonus
}

/// Whether `c` is in Unicode's Decimal_Number category (Ruby's `[[:digit:]]`).
fn is_decimal_number(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    // Nd is a subset of `is_numeric` (Nd, Nl, No); only those need the exact test.
    if !c.is_numeric() {
        return false;
    }
    static DECIMAL_NUMBER: LazyLock<fancy_regex::Regex> =
        LazyLock::new(|| fancy_regex::Regex::new(r"^\p{Nd}$").expect("valid pattern"));
    let mut buf = [0u8; 4];
    DECIMAL_NUMBER
        .is_match(c.encode_utf8(&mut buf))
        .unwrap_or(false)
}

/// `password.split(/\s+/).length` in Ruby: `\s` is ASCII whitespace, a leading separator
/// yields an empty first field, and trailing empty fields are dropped.
fn ruby_whitespace_split_count(password: &[char]) -> usize {
    let is_space = |c: &char| matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r');
    let mut words = 0;
    let mut in_word = false;
    for c in password {
        if is_space(c) {
            in_word = false;
        } else if !in_word {
            in_word = true;
            words += 1;
        }
    }
    let leading_empty = password.first().is_some_and(is_space) && words > 0;
    words + usize::from(leading_empty)
}

/// Ruby's `String#downcase`: full Unicode lower-casing, character by character (Ruby has
/// no final-sigma rule, unlike `str::to_lowercase`).
fn downcase(password: &[char]) -> Vec<char> {
    password.iter().flat_map(|c| c.to_lowercase()).collect()
}

/// `QwertyAdjuster::QWERTY_STRINGS`.
const QWERTY_STRINGS: [&str; 14] = [
    "1234567890-",
    "qwertyuiop",
    "asdfghjkl;",
    "zxcvbnm,./",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/-['=]:?_{\"+}",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
    "qazwsxedcrfvtgbyhnujmik,ol.p;/-['=]:?_{\"+}",
    "qazwsxedcrfvtgbyhnujmikolp",
    "]\"/=[;.-pl,0okm9ijn8uhb7ygv6tfc5rdx4esz3wa2q1",
    "pl0okm9ijn8uhb7ygv6tfc5rdx4esz3wa2q1",
    "]\"/[;.pl,okmijnuhbygvtfcrdxeszwaq",
    "plokmijnuhbygvtfcrdxeszwaq",
    "014725836914702583697894561230258/369*+-*/",
    "abcdefghijklmnopqrstuvwxyz",
];

/// The gem's keyboard runs, in its `Regexp.union` order (string by string; within one,
/// lengths 6 down to 3, left to right), grouped by first character so a position only
/// tries the runs that can start there.
///
/// The gem turns the first `-` of a run into `\-` before `Regexp.union` escapes it, so
/// such a run only matches a literal backslash followed by `-`; kept as is.
static KEYBOARD_RUNS: LazyLock<HashMap<char, Vec<Vec<char>>>> = LazyLock::new(|| {
    let mut runs: HashMap<char, Vec<Vec<char>>> = HashMap::new();
    for row in QWERTY_STRINGS {
        let row: Vec<char> = row.chars().collect();
        for len in (3..=6).rev() {
            for window in row.windows(len) {
                let mut run = Vec::with_capacity(len + 1);
                let mut escaped = false;
                for &c in window {
                    if c == '-' && !escaped {
                        run.push('\\');
                        escaped = true;
                    }
                    run.push(c);
                }
                runs.entry(run[0]).or_default().push(run);
            }
        }
    }
    runs
});

/// `password.gsub(Regexp.union(runs), '*')`: scanning left to right, the first run in
/// union order that matches at a position is replaced by `*`.
fn mask_keyboard_runs(password: &[char]) -> Vec<char> {
    let mut masked = Vec::with_capacity(password.len());
    let mut i = 0;
    while i < password.len() {
        let rest = &password[i..];
        let run = KEYBOARD_RUNS
            .get(&password[i])
            .and_then(|runs| runs.iter().find(|run| rest.starts_with(run)));
        match run {
            Some(run) => {
                masked.push('*');
                i += run.len();
            }
            None => {
                masked.push(password[i]);
                i += 1;
            }
        }
    }
    masked
}

/// The gem's bundled common-password list (`DictionaryAdjuster::COMMON_PASSWORDS`), one
/// word a line in the gem's order.
const COMMON_PASSWORDS_LIST: &str = include_str!("common_passwords.txt");

/// The words the dictionary adjuster can match (those of at least `MIN_WORD_LENGTH`
/// characters), with what bounds the search: the longest length and the first characters.
struct CommonPasswords {
    words: HashSet<&'static str>,
    longest: usize,
    first_chars: HashSet<char>,
}

static COMMON_PASSWORDS: LazyLock<CommonPasswords> = LazyLock::new(|| {
    let words: HashSet<&'static str> = COMMON_PASSWORDS_LIST
        .lines()
        .filter(|word| word.chars().count() >= MIN_WORD_LENGTH)
        .collect();
    let longest = words.iter().map(|w| w.chars().count()).max().unwrap_or(0);
    let first_chars = words.iter().filter_map(|w| w.chars().next()).collect();
    CommonPasswords {
        words,
        longest,
        first_chars,
    }
});

/// `variant.sub(Regexp.union(words), '*')`. The gem sorts its list longest first, so the
/// regexp replaces, at the leftmost position where any word starts, the longest word found
/// there; only that first occurrence is masked. Looked up by hashing each candidate
/// substring rather than running a 10,000-branch regexp.
fn mask_first_common_password(variant: &[char]) -> Vec<char> {
    let dictionary = &*COMMON_PASSWORDS;
    let text: String = variant.iter().collect();
    // Byte offset of every character boundary, so candidates are slices of `text`.
    let offsets: Vec<usize> = text
        .char_indices()
        .map(|(offset, _)| offset)
        .chain([text.len()])
        .collect();
    for start in 0..variant.len() {
        if !dictionary.first_chars.contains(&variant[start]) {
            continue;
        }
        let longest = dictionary.longest.min(variant.len() - start);
        for len in (MIN_WORD_LENGTH..=longest).rev() {
            let candidate = &text[offsets[start]..offsets[start + len]];
            if dictionary.words.contains(candidate) {
                let mut masked = Vec::with_capacity(variant.len() - len + 1);
                masked.extend_from_slice(&variant[..start]);
                masked.push('*');
                masked.extend_from_slice(&variant[start + len..]);
                return masked;
            }
        }
    }
    variant.to_vec()
}

/// `PasswordVariants.all_variants` of an already lower-cased password: itself; unless it
/// has a bottom-row key, its two keyboard-shifted forms and their reverses; if it has a
/// leet-speak character, its two de-leeted forms and their reverses.
fn password_variants(lower: &[char]) -> Vec<Vec<char>> {
    let mut variants = vec![lower.to_vec()];
    let mut add_both_ways = |variant: Vec<char>| {
        let reversed = variant.iter().rev().copied().collect();
        variants.push(variant);
        variants.push(reversed);
    };
    // BOTTOM_ROW_REGEXP = /[zxcvbnm,\.\/\<\>\?]/
    if !lower.iter().any(|c| "zxcvbnm,./<>?".contains(*c)) {
        add_both_ways(lower.iter().map(|&c| shift_down_right(c)).collect());
        add_both_ways(lower.iter().map(|&c| shift_down_left(c)).collect());
    }
    // LEET_SPEAK_REGEXP = /[\@\!\$1234567890]/
    if lower.iter().any(|c| "@!$1234567890".contains(*c)) {
        add_both_ways(lower.iter().map(|&c| unleet(c, 'i')).collect());
        add_both_ways(lower.iter().map(|&c| unleet(c, 'l')).collect());
    }
    variants
}

/// `KEYBOARDMAP_DOWNRIGHT`: each key to the one below and to the right of it.
fn shift_down_right(c: char) -> char {
    match c {
        'a' => 'z',
        'q' => 'a',
        '1' => 'q',
        's' => 'x',
        'w' => 's',
        '2' => 'w',
        'd' => 'c',
        'e' => 'd',
        '3' => 'e',
        'f' => 'v',
        'r' => 'f',
        '4' => 'r',
        'g' => 'b',
        't' => 'g',
        '5' => 't',
        'h' => 'n',
        'y' => 'h',
        '6' => 'y',
        'j' => 'm',
        'u' => 'j',
        '7' => 'u',
        'i' => 'k',
        '8' => 'i',
        'o' => 'l',
        '9' => 'o',
        '0' => 'p',
        other => other,
    }
}

/// `KEYBOARDMAP_DOWNLEFT`: each key to the one below and to the left of it.
fn shift_down_left(c: char) -> char {
    match c {
        '2' => 'q',
        'w' => 'a',
        '3' => 'w',
        's' => 'z',
        'e' => 's',
        '4' => 'e',
        'd' => 'x',
        'r' => 'd',
        '5' => 'r',
        'f' => 'c',
        't' => 'f',
        '6' => 't',
        'g' => 'v',
        'y' => 'g',
        '7' => 'y',
        'h' => 'b',
        'u' => 'h',
        '8' => 'u',
        'j' => 'n',
        'i' => 'j',
        '9' => 'i',
        'k' => 'm',
        'o' => 'k',
        '0' => 'o',
        'p' => 'l',
        '-' => 'p',
        other => other,
    }
}

/// `LEET_SPEAK` (`one` = 'i') and `LEET_SPEAK_ALT` (`one` = 'l').
fn unleet(c: char, one: char) -> char {
    match c {
        '@' => 'a',
        '!' => 'i',
        '$' => 's',
        '1' => one,
        '2' => 'z',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '6' => 'g',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        '0' => 'o',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gem's specs stub `NistBonusBits.bonus_bits` to 0.
    const NO_BONUS: Measure = Measure { with_bonus: false };

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    const BARONG_REGEXP: &str =
        r"^(?=.*[[:lower:]])(?=.*[[:upper:]])(?=.*[[:digit:]])(?=.*[[:graph:]]).{8,80}$";

    #[test]
    fn dictionary_is_the_gems_ten_thousand_words_in_order() {
        let words: Vec<&str> = COMMON_PASSWORDS_LIST.lines().collect();
        assert_eq!(words.len(), 10_000);
        assert_eq!(words[..4], ["password", "123456", "12345678", "1234"]);
        assert_eq!(words[9_999], "eyphed");
        assert_eq!(words.iter().collect::<HashSet<_>>().len(), 10_000);
        // None is shorter than the minimum word length, so all of them take part.
        assert_eq!(COMMON_PASSWORDS.words.len(), 10_000);
        assert_eq!(COMMON_PASSWORDS.longest, 18); // "films+pic+galeries"
    }

    // spec/strong_password/entropy_calculator_spec.rb, `.bits_with_repeats_weakened`.
    #[test]
    fn gem_spec_bits_with_repeats_weakened() {
        for (password, bits) in [
            ("", 0.0),
            ("*", 4.0),
            ("**", 5.5),
            ("***", 6.625),
            ("****", 7.46875),
            ("****a", 9.46875),
            ("********", 9.1990966796875),
        ] {
            assert_eq!(NO_BONUS.bits(&chars(password)), bits, "{password:?}");
        }
    }

    // spec/strong_password/nist_bonus_bits_spec.rb, `.calculate_bonus_bits_for`.
    #[test]
    fn gem_spec_nist_bonus_bits() {
        for (password, bonus) in [
            ("Ab$9", 4.0),
            ("Ab $9", 6.0),
            ("A b $ 9", 7.0),
            ("Ab$", 3.0),
            ("Ab $", 5.0),
            ("A b $ c d", 6.0),
            ("1!", -4.0),
            ("1 !", -2.0),
            ("1 ! 2 # 3 $", -1.0),
            ("123", -8.0),
            ("1 23", -6.0),
            ("1 2 3 4 5 6", -5.0),
            ("blah", -2.0),
            ("blah blah", 0.0),
            ("blah blah blah blah", 1.0),
        ] {
            assert_eq!(nist_bonus_bits(&chars(password)), bonus, "{password:?}");
        }
    }

    // spec/strong_password/qwerty_adjuster_spec.rb (subject built with threshold 0).
    #[test]
    fn gem_spec_qwerty_adjuster() {
        for (password, bits) in [
            ("qwertyuio", 5.5),
            ("1234567", 6.0),
            ("lkjhgfd", 6.0),
            ("0987654321", 5.5),
            ("zxcvbnm", 6.0),
            ("/.,mnbvcx", 5.5),
            ("password", 17.5), // not qwerty-adjusted
        ] {
            assert_eq!(
                NO_BONUS.qwerty_adjusted(&chars(password), 0.0),
                bits,
                "{password:?}"
            );
        }
        // "with a default entropy threshhold" (18): stops before masking.
        assert_eq!(NO_BONUS.qwerty_adjusted(&chars("1234567"), 18.0), 16.0);
    }

    // spec/strong_password/dictionary_adjuster_spec.rb, `#adjusted_entropy`.
    #[test]
    fn gem_spec_dictionary_adjuster() {
        for (password, bits) in [
            ("bnm,./", 14.0), // qwerty string is not a dictionary word
            ("h#e0zbPas", 19.5),
            ("password", 4.0),
            ("E_!3password", 11.5),
            ("h#e0zbPas 32e2i81 password", 31.0625),
            ("123456", 4.0),
            ("password123456", 14.0), // only the first word is masked
            ("asdf)asdf", 14.0),
            ("asdf[]asdf", 16.0),
        ] {
            assert_eq!(
                NO_BONUS.dictionary_adjusted(&chars(password)),
                bits,
                "{password:?}"
            );
        }
    }

    // spec/strong_password/strength_checker_spec.rb: `is_strong?` is
    // `calculate_entropy >= min_entropy` for the same checker.
    #[test]
    fn gem_spec_strength_checker() {
        let strong =
            |password: &str, min: f64, dictionary: bool| entropy(password, dictionary, min) >= min;
        for (password, expected) in [
            ("blahblah", true),
            ("password", true),
            ("wwwwwwww", false),
            ("adamruge", true),
            ("aB$1", false),
        ] {
            assert_eq!(strong(password, 12.0, false), expected, "{password:?}");
        }
        for (password, expected) in [
            ("blahblah", true),
            ("password", false),
            ("wwwwwwww", false),
            ("adamruge", false),
            ("madaegur", true),
            ("aB$1", false),
        ] {
            assert_eq!(strong(password, 12.0, true), expected, "{password:?}");
        }
        for (password, expected) in [
            ("blahblah", false),
            ("password", false),
            ("wwwwwwww", false),
            ("adamruge", false),
            ("aB$1", false),
            ("correct horse battery staple", true),
        ] {
            assert_eq!(strong(password, 18.0, true), expected, "{password:?}");
        }
        for (password, expected) in [
            ("blahblah", false),
            ("password", false),
            ("wwwwwwww", false),
            ("adamruge", false),
            ("aB$1", false),
            ("correct horse battery staple", false),
            ("c0rr#ct h0rs3 Batt$ry st@pl3 is Gr34t", true),
        ] {
            assert_eq!(strong(password, 40.0, true), expected, "{password:?}");
        }
    }

    // The gem's README: `calculate_entropy` of "password" is 15.5, 2 with the dictionary.
    #[test]
    fn gem_readme_example() {
        assert_eq!(entropy("password", false, 18.0), 15.5);
        assert_eq!(entropy("password", true, 18.0), 2.0);
    }

    // Barong's user_spec examples: threshold 14, dictionary on.
    #[test]
    fn barong_examples() {
        for (password, bits) in [
            ("Password1", 2.0),    // "password1" is a common password
            ("Password1123", 6.0), // "*123"
            ("password", 2.0),
            ("password1", 2.0),
            ("Qq123123", 5.5), // shifted down-right: "aaqweqwe", "qweqwe" masked
            ("QqQq123123", 10.5),
            ("X2qL32", 11.5), // plain bits: too short
            ("eoV0qu", 11.5), // de-leeted "eovoqu" repeats 'o'
        ] {
            let e = entropy(password, true, 14.0);
            assert!(e < 14.0, "{password:?} should be weak, got {e}");
            assert_eq!(e, bits, "{password:?}");
        }
        for (password, bits) in [
            ("Iequ4geiEWQw", 19.59375), // lower-cased bits
            ("Xwqe213PZCXwe", 21.21875),
            ("Kal31ewwqXrew", 20.59375),
            ("Tecohvi0", 15.5),
            ("testPassword111", 14.125),
        ] {
            let e = entropy(password, true, 14.0);
            assert!(e >= 14.0, "{password:?} should be strong, got {e}");
            assert_eq!(e, bits, "{password:?}");
        }
    }

    #[test]
    fn check_uses_the_regexp_then_the_entropy() {
        let regexp = fancy_regex::Regex::new(BARONG_REGEXP).unwrap();
        assert_eq!(
            check("password", &regexp, 14.0, true),
            Err("password.requirements")
        );
        assert_eq!(
            check("Password1", &regexp, 14.0, true),
            Err("password.weak")
        );
        assert_eq!(check("Iequ4geiEWQw", &regexp, 14.0, true), Ok(()));
    }

    #[test]
    fn keyboard_runs_are_case_sensitive_and_longest_first_per_row() {
        assert_eq!(mask_keyboard_runs(&chars("qwerty")), chars("*"));
        assert_eq!(mask_keyboard_runs(&chars("QWERTY")), chars("QWERTY"));
        // A run with '-' only matches after a backslash, as in the gem.
        assert_eq!(mask_keyboard_runs(&chars("90-")), chars("90-"));
        assert_eq!(mask_keyboard_runs(&chars("90\\-")), chars("*"));
    }

    #[test]
    fn dictionary_masks_leftmost_then_longest_word_once() {
        assert_eq!(
            mask_first_common_password(&chars("xpassword$")),
            chars("x*$")
        );
        assert_eq!(
            mask_first_common_password(&chars("passwordpassword")),
            chars("*password")
        );
        assert_eq!(mask_first_common_password(&chars("abc")), chars("abc"));
    }

    #[test]
    fn ruby_semantics_for_unicode_and_whitespace() {
        // Unicode letters and digits count for the bonus; Σ lower-cases to σ (no final sigma).
        assert_eq!(nist_bonus_bits(&chars("Éé٣!")), 4.0); // ٣ is a decimal digit
        assert_eq!(nist_bonus_bits(&chars("Éé½!")), 3.0); // ½ is numeric, not a digit
        assert_eq!(downcase(&chars("ΣΑΣ")), chars("σασ"));
        assert_eq!(ruby_whitespace_split_count(&chars(" a b")), 3);
        assert_eq!(ruby_whitespace_split_count(&chars("a  b ")), 2);
        assert_eq!(ruby_whitespace_split_count(&chars("   ")), 0);
        // Only the first 1000 characters count.
        let long = "ab1!".repeat(400);
        assert_eq!(
            entropy(&long, true, 14.0),
            entropy(&long[..1000], true, 14.0)
        );
    }

    #[test]
    fn long_passwords_are_cheap() {
        let password: String = (0..1000)
            .map(|i| char::from(b'!' + (i * 7 % 90) as u8))
            .collect();
        entropy("warm up the lazy tables", true, 14.0);
        for candidate in [
            password.as_str(),
            &"1qaz@wsx".repeat(125),
            &"é".repeat(1000),
        ] {
            let started = std::time::Instant::now();
            let e = entropy(candidate, true, 14.0);
            eprintln!("1000-char entropy {e} in {:?}", started.elapsed());
        }
    }
}
