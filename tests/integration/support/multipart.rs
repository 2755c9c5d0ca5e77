//! `multipart/form-data` bodies built by hand, as a browser's `FormData` sends them: text
//! fields and files, in the order given.

use bytes::Bytes;

/// One part: field name, (file name, content type) for a file, the bytes.
type Part = (String, Option<(String, String)>, Vec<u8>);

/// A form being built.
#[derive(Default, Clone)]
pub struct Form {
    parts: Vec<Part>,
}

pub const BOUNDARY: &str = "----portcullis-test-boundary-7MA4YWxkTrZu0gW";

impl Form {
    pub fn new() -> Form {
        Form::default()
    }

    pub fn text(mut self, name: &str, value: &str) -> Form {
        self.parts
            .push((name.to_string(), None, value.as_bytes().to_vec()));
        self
    }

    /// A file part: field `name`, the client's `filename` and type, the bytes.
    pub fn file(mut self, name: &str, filename: &str, content_type: &str, bytes: &[u8]) -> Form {
        self.parts.push((
            name.to_string(),
            Some((filename.to_string(), content_type.to_string())),
            bytes.to_vec(),
        ));
        self
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    pub fn body(&self) -> Bytes {
        let mut out = Vec::new();
        for (name, file, bytes) in &self.parts {
            out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            match file {
                None => out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
                ),
                Some((filename, content_type)) => out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n\
                         Content-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                ),
            }
            out.extend_from_slice(bytes);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        Bytes::from(out)
    }
}

/// A JPEG of `size` bytes: the signature, then filler.
pub fn jpeg(size: usize) -> Vec<u8> {
    with_head(&[0xFF, 0xD8, 0xFF, 0xE0], size)
}

pub fn png(size: usize) -> Vec<u8> {
    with_head(b"\x89PNG\r\n\x1a\n", size)
}

pub fn pdf(size: usize) -> Vec<u8> {
    with_head(b"%PDF-1.4\n", size)
}

fn with_head(head: &[u8], size: usize) -> Vec<u8> {
    let mut bytes = head.to_vec();
    // Varied filler, so two files never have the same bytes by accident.
    let seed = portcullis::crypto::random_bytes::<8>();
    let mut i = 0usize;
    while bytes.len() < size {
        bytes.push(seed[i % 8].wrapping_add(i as u8));
        i += 1;
    }
    bytes.truncate(size.max(head.len()));
    bytes
}
