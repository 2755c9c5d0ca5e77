//! A `multipart/form-data` body (RFC 7578) for uploads to other services (KYCAID's `POST
//! /files`). Written here rather than taken from a crate: the crates that encode multipart come
//! with an HTTP client of their own (reqwest) or pull a stream stack we do not otherwise need,
//! while our one use is a small, fully buffered body of a few named parts.

use bytes::Bytes;

/// A body being built: text fields and files, each a part.
pub struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    /// A body with a fresh random boundary (32 hex characters: a file that happens to contain
    /// it is not a practical concern).
    pub fn new() -> Multipart {
        Multipart {
            boundary: format!("portcullis-{}", crate::crypto::random_hex::<16>()),
            body: Vec::new(),
        }
    }

    /// Adds the text field `name`.
    pub fn text(mut self, name: &str, value: &str) -> Multipart {
        self.head(name, None, None);
        self.body.extend_from_slice(value.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Adds the file field `name`: `bytes` of `content_type`, named `file_name`.
    pub fn file(
        mut self,
        name: &str,
        file_name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Multipart {
        self.head(name, Some(file_name), Some(content_type));
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The request's `Content-Type`, with the boundary.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The finished body.
    pub fn finish(mut self) -> Bytes {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        Bytes::from(self.body)
    }

    fn head(&mut self, name: &str, file_name: Option<&str>, content_type: Option<&str>) {
        let mut head = format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"",
            self.boundary,
            quoted(name)
        );
        if let Some(file_name) = file_name {
            head.push_str(&format!("; filename=\"{}\"", quoted(file_name)));
        }
        head.push_str("\r\n");
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {}\r\n", quoted(content_type)));
        }
        head.push_str("\r\n");
        self.body.extend_from_slice(head.as_bytes());
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

/// A name safe inside a quoted header parameter: quotes, backslashes and line breaks (which
/// would end the parameter or the header) and other control characters become `_`.
fn quoted(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_framed_by_the_boundary() {
        let form = Multipart::new().text("type", "PASSPORT").file(
            "file",
            "front.png",
            "image/png",
            b"\x89PNG\r\n--x",
        );
        let content_type = form.content_type();
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap()
            .to_string();
        let body = form.finish();
        let expected = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nPASSPORT\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"front.png\"\r\n\
             Content-Type: image/png\r\n\r\n\u{89}PNG\r\n--x\r\n--{boundary}--\r\n"
        );
        // The file's bytes go through unchanged (0x89 is not UTF-8 on its own).
        let mut expected = expected.into_bytes();
        let at = expected
            .windows(2)
            .position(|w| w == "\u{89}".as_bytes())
            .unwrap();
        expected.splice(at..at + 2, [0x89]);
        assert_eq!(body.as_ref(), expected.as_slice());
    }

    #[test]
    fn names_cannot_break_out_of_their_header() {
        let body = Multipart::new()
            .file("f\"ile", "a\"b\r\nX-Evil: 1\\.png", "image/png", b"x")
            .finish();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("name=\"f_ile\"; filename=\"a_b__X-Evil: 1_.png\""));
        assert!(!text.contains("\r\nX-Evil"));
    }

    #[test]
    fn each_body_has_its_own_boundary() {
        assert_ne!(
            Multipart::new().content_type(),
            Multipart::new().content_type()
        );
    }
}
