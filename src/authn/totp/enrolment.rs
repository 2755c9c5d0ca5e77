//! TOTP enrolment: what `POST /resource/otp/generate_qrcode` hands the user so an authenticator
//! app can take over the secret — a fresh secret, its `otpauth://` URI (Google's Key URI
//! format, the `data.url` Vault answered for Barong) and that URI as a QR code in a base64 PNG
//! (`data.barcode`). Storing the secret and checking codes stay in the parent module.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use qrcode::{Color, EcLevel, QrCode};

use super::{DIGITS, STEP};

/// Bytes of a new secret: 160 bits, the HMAC-SHA1 key length RFC 4226 recommends and Vault's
/// default `key_size`.
pub const SECRET_LEN: usize = 20;

/// A new TOTP secret from the system CSPRNG. Apps receive it as [`base32`](super::base32).
pub fn new_secret() -> [u8; SECRET_LEN] {
    crate::crypto::random_bytes::<SECRET_LEN>()
}

/// Query values keep only RFC 3986's unreserved characters; everything else is escaped, with
/// spaces as `%20` (apps do not all read `+` as a space).
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The label's issuer and account escape the same, but leave `@` as it is: a path may carry it
/// (RFC 3986 `pchar`), and Vault and the Key URI examples show `Issuer:user@example.com`, which
/// front ends may display. A `:` inside either part is escaped so the one literal `:` is
/// always the separator.
const LABEL_PART: &AsciiSet = &QUERY_VALUE.remove(b'@');

/// The `otpauth://totp/` URI of a secret: label `issuer:account`, then the secret, issuer and
/// the parameters [`code_at`](super::code_at) uses (SHA1, [`DIGITS`], [`STEP`]), spelt out
/// because some apps ignore a key whose parameters they must guess.
pub fn otpauth_url(issuer: &str, account: &str, secret_base32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        utf8_percent_encode(issuer, LABEL_PART),
        utf8_percent_encode(account, LABEL_PART),
        utf8_percent_encode(secret_base32, QUERY_VALUE),
        utf8_percent_encode(issuer, QUERY_VALUE),
    )
}

/// The side of the barcode we aim for, in pixels: Barong asked Vault for `qr_size=300`.
pub const BARCODE_SIZE: usize = 300;

/// Light modules around the symbol, as ISO/IEC 18004 requires for readers to find it.
const QUIET_ZONE: usize = 4;

/// Why a barcode could not be made.
#[derive(Debug)]
pub enum BarcodeError {
    /// The text does not fit in a QR code (thousands of bytes: not a real otpauth URI).
    Qr(qrcode::types::QrError),
    /// The PNG encoder failed.
    Png(png::EncodingError),
}

impl std::fmt::Display for BarcodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BarcodeError::Qr(err) => write!(f, "QR code: {err}"),
            BarcodeError::Png(err) => write!(f, "PNG: {err}"),
        }
    }
}

impl std::error::Error for BarcodeError {}

/// `text` as a QR code in a PNG, base64-encoded with padding (as Vault's `barcode` was): about
/// [`BARCODE_SIZE`] pixels square, 1-bit grayscale.
pub fn qr_png_base64(text: &str) -> Result<String, BarcodeError> {
    Ok(STANDARD.encode(qr_png(text)?))
}

/// The PNG behind [`qr_png_base64`]. Error correction M, as Vault's barcode library used:
/// 15% of the symbol may be lost (a glare on the screen) and it stays small enough to scan.
fn qr_png(text: &str) -> Result<Vec<u8>, BarcodeError> {
    let code = QrCode::with_error_correction_level(text, EcLevel::M).map_err(BarcodeError::Qr)?;
    let modules = code.width() + 2 * QUIET_ZONE;
    // A whole number of pixels per module: a module stretched over 5.3 pixels gets uneven
    // edges that cameras read worse than a barcode a little off 300 px.
    let scale = ((BARCODE_SIZE + modules / 2) / modules).max(1);
    let side = modules * scale;
    // 1-bit grayscale rows, most significant bit first, 1 = white; the rows' padding bits are
    // left white.
    let row_len = side.div_ceil(8);
    let mut pixels = vec![0xffu8; row_len * side];
    for y in 0..code.width() {
        for x in 0..code.width() {
            if code[(x, y)] != Color::Dark {
                continue;
            }
            for py in (QUIET_ZONE + y) * scale..(QUIET_ZONE + y + 1) * scale {
                for px in (QUIET_ZONE + x) * scale..(QUIET_ZONE + x + 1) * scale {
                    pixels[py * row_len + px / 8] &= !(0x80 >> (px % 8));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().map_err(BarcodeError::Png)?;
    writer
        .write_image_data(&pixels)
        .map_err(BarcodeError::Png)?;
    writer.finish().map_err(BarcodeError::Png)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{base32, code_at, matching_step};
    use super::*;

    // RFC 6238 appendix B's SHA-1 seed.
    const SEED: &[u8] = b"12345678901234567890";

    #[test]
    fn base32_of_the_rfc_6238_seed() {
        // What an app is given for the RFC's seed (checked against Python's base64.b32encode).
        assert_eq!(base32(SEED), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn new_secrets_are_random() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_ne!(a, [0; SECRET_LEN]);
        // 160 bits are 32 base32 characters with no padding.
        assert_eq!(base32(&a).len(), 32);
    }

    #[test]
    fn url_of_a_plain_account() {
        assert_eq!(
            otpauth_url(
                "Barong",
                "john.doe@example.com",
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
            ),
            "otpauth://totp/Barong:john.doe@example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Barong\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn url_escapes_spaces_colons_and_at_signs() {
        assert_eq!(
            otpauth_url("ACME Co: Exchange@EU", "a b:c+d@x.io", "MZXW6YTBOI"),
            "otpauth://totp/ACME%20Co%3A%20Exchange@EU:a%20b%3Ac%2Bd@x.io\
             ?secret=MZXW6YTBOI&issuer=ACME%20Co%3A%20Exchange%40EU\
             &algorithm=SHA1&digits=6&period=30"
        );
        // Non-ASCII as UTF-8, and the query's own separators escaped.
        assert_eq!(
            otpauth_url("Bîrse&x=1", "é/?#", "MY"),
            "otpauth://totp/B%C3%AErse%26x%3D1:%C3%A9%2F%3F%23\
             ?secret=MY&issuer=B%C3%AErse%26x%3D1&algorithm=SHA1&digits=6&period=30"
        );
    }

    /// A decoded barcode: one byte a pixel, 0 or 255.
    struct Pixels {
        side: usize,
        line: usize,
        buf: Vec<u8>,
    }

    impl Pixels {
        fn decode(png_bytes: &[u8]) -> Pixels {
            let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
            // 1-bit samples to one byte each.
            decoder.set_transformations(png::Transformations::EXPAND);
            let mut reader = decoder.read_info().expect("a PNG header");
            let mut buf = vec![0; reader.output_buffer_size().expect("a sane size")];
            let info = reader.next_frame(&mut buf).expect("PNG image data");
            assert_eq!(info.color_type, png::ColorType::Grayscale);
            assert_eq!(info.bit_depth, png::BitDepth::Eight);
            assert_eq!(info.width, info.height);
            Pixels {
                side: info.width as usize,
                line: info.line_size,
                buf,
            }
        }

        fn at(&self, x: usize, y: usize) -> u8 {
            self.buf[y * self.line + x]
        }

        /// Reads the image as a camera would: find the symbol among the pixels, then read it.
        fn scan(&self) -> String {
            let mut image =
                rqrr::PreparedImage::prepare_from_greyscale(self.side, self.side, |x, y| {
                    self.at(x, y)
                });
            let grids = image.detect_grids();
            assert_eq!(grids.len(), 1, "one QR code in the image");
            grids[0].decode().expect("a readable QR code").1
        }
    }

    fn barcode_pixels(text: &str) -> Pixels {
        let barcode = qr_png_base64(text).unwrap();
        Pixels::decode(&STANDARD.decode(barcode).expect("standard base64"))
    }

    #[test]
    fn barcode_scans_back_to_the_url() {
        let url = otpauth_url(
            "ACME Co",
            "john.doe+2fa@example.com",
            &base32(&new_secret()),
        );
        let pixels = barcode_pixels(&url);
        assert_eq!(pixels.scan(), url);

        let side = pixels.side;
        assert!((250..=350).contains(&side), "{side} px is not about 300");
        // Whole pixels a module, and a white quiet zone of 4 modules all round.
        let modules = QrCode::with_error_correction_level(&url, EcLevel::M)
            .unwrap()
            .width()
            + 2 * 4;
        assert_eq!(side % modules, 0);
        let border = 4 * side / modules;
        for i in 0..side {
            for j in 0..border {
                for (x, y) in [(i, j), (j, i), (i, side - 1 - j), (side - 1 - j, i)] {
                    assert_eq!(pixels.at(x, y), 255, "dark pixel at ({x}, {y})");
                }
            }
        }
        // The symbol starts right after it: the finder pattern's dark corner.
        assert_eq!(pixels.at(border, border), 0);
    }

    #[test]
    fn barcode_of_a_long_text_is_an_error() {
        assert!(matches!(
            qr_png_base64(&"x".repeat(5000)),
            Err(BarcodeError::Qr(_))
        ));
    }

    /// RFC 4648 base32 without padding, back to bytes: what an app does with `secret=`.
    fn from_base32(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let (mut out, mut buffer, mut bits) = (Vec::new(), 0u64, 0);
        for c in text.bytes() {
            let value = ALPHABET.iter().position(|&a| a == c).expect("base32") as u64;
            buffer = (buffer << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn app_codes_from_the_enrolment_validate() {
        let secret = new_secret();
        let url = otpauth_url("Barong", "john.doe@example.com", &base32(&secret));
        // The app: scan the barcode, take `secret=` from the URI, compute the current code.
        let scanned = barcode_pixels(&url).scan();
        let query = scanned.split_once('?').unwrap().1;
        let app_secret = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("secret="))
            .map(from_base32)
            .unwrap();
        assert_eq!(app_secret, secret);
        let now = 1_700_000_000;
        let step = now / STEP;
        let code = format!(
            "{:0width$}",
            code_at(&app_secret, step as u64),
            width = DIGITS as usize
        );
        // We: check the code against the secret we keep.
        assert_eq!(matching_step(&secret, &code, now), Some(step));
    }
}
