//! A minimal SMTP sink for tests: listens on 127.0.0.1, accepts every message (no extensions, no
//! authentication, no TLS) and keeps it, so a test can read what a user would receive — the
//! subject, the sender, the text and HTML parts (transfer encodings undone), the first link.
//!
//! ```ignore
//! let sink = SmtpSink::start().await;
//! let server = env.start_with(&sink.mail_config()).await;
//! // ... something that sends an email to user.email ...
//! let mail = sink.wait_for(&user.email, 1, WAIT).await.remove(0);
//! let link = mail.first_link().unwrap();
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The sender tests configure (see [`SmtpSink::mail_config`]).
pub const SENDER_EMAIL: &str = "noreply@portcullis.test";
pub const SENDER_NAME: &str = "Portcullis Tests";

/// Long enough for a loaded machine; waits return as soon as the mail is there.
pub const WAIT: Duration = Duration::from_secs(30);

/// An SMTP server that keeps every message it is given. Stops when dropped.
pub struct SmtpSink {
    port: u16,
    messages: Arc<Mutex<Vec<Message>>>,
    accept: JoinHandle<()>,
}

impl SmtpSink {
    /// A sink on a free port.
    pub async fn start() -> SmtpSink {
        Self::start_on(0).await
    }

    /// A sink on `port` (e.g. one from [`super::free_port`] that a server was told to use earlier).
    pub async fn start_on(port: u16) -> SmtpSink {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("smtp sink cannot listen on port {port}: {e}"));
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, store.clone()));
            }
        });
        SmtpSink {
            port,
            messages,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A `[mail]` section that delivers to this sink with the shipped templates.
    pub fn mail_config(&self) -> String {
        mail_config(self.port)
    }

    /// Every message received so far.
    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }

    /// The messages received so far for `address` (envelope recipient, case-insensitive).
    pub fn messages_for(&self, address: &str) -> Vec<Message> {
        self.messages
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(address)))
            .cloned()
            .collect()
    }

    /// Waits until at least `count` messages for `address` arrived, and returns them (all of
    /// them, in arrival order); fails the test after `timeout`.
    pub async fn wait_for(&self, address: &str, count: usize, timeout: Duration) -> Vec<Message> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.messages_for(address);
            if found.len() >= count {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                let seen: Vec<Vec<String>> =
                    self.messages().into_iter().map(|m| m.rcpt_to).collect();
                panic!(
                    "{count} message(s) for {address} not received within {timeout:?}; \
                     {} received, recipients: {seen:?}",
                    found.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A `[mail]` section delivering by plain SMTP to 127.0.0.1:`port` with the shipped templates.
pub fn mail_config(port: u16) -> String {
    format!(
        r#"
        [mail]
        delivery = "smtp"
        smtp_host = "127.0.0.1"
        smtp_port = {port}
        smtp_tls = "none"
        sender_email = "{SENDER_EMAIL}"
        sender_name = "{SENDER_NAME}"
        templates_dir = "{templates}"
        "#,
        templates = super::repo_path("config/mail").display(),
    )
}

/// A port nobody listens on right now (bound, then released): a relay that is down, until a
/// sink is started on it.
/// One SMTP session: greeting, then commands until QUIT or the peer leaves.
async fn serve(stream: TcpStream, store: Arc<Mutex<Vec<Message>>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut envelope_from = String::new();
    let mut rcpt_to = Vec::new();
    if write
        .write_all(b"220 sink.test ESMTP ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250 sink.test\r\n",
            "MAIL" => {
                envelope_from = angle_address(command);
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                rcpt_to.push(angle_address(command));
                b"250 OK\r\n"
            }
            "DATA" => {
                if write
                    .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let Some(data) = read_data(&mut reader).await else {
                    return;
                };
                store.lock().unwrap().push(Message {
                    mail_from: std::mem::take(&mut envelope_from),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data,
                });
                b"250 OK queued\r\n"
            }
            "RSET" => {
                envelope_from.clear();
                rcpt_to.clear();
                b"250 OK\r\n"
            }
            "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 command not implemented\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// The message after DATA, up to the lone `.` line, with dot-stuffing undone.
async fn read_data<R: AsyncReadExt + AsyncBufReadExt + Unpin>(reader: &mut R) -> Option<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await.ok()? == 0 {
            return None;
        }
        if line == b".\r\n" || line == b".\n" {
            return Some(String::from_utf8_lossy(&data).into_owned());
        }
        let unstuffed = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(unstuffed);
    }
}

/// `user@host` of `MAIL FROM:<user@host> ...` or `RCPT TO:<user@host>`.
fn angle_address(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(start), Some(end)) if start < end => command[start + 1..end].to_string(),
        _ => command
            .split_once(':')
            .map(|(_, rest)| rest.trim().to_string())
            .unwrap_or_default(),
    }
}

/// One received message: the envelope and the raw data (headers and body, CRLF line ends).
#[derive(Debug, Clone)]
pub struct Message {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: String,
}

impl Message {
    /// The header `name` as sent (unfolded, encoded words left as they are).
    pub fn raw_header(&self, name: &str) -> Option<String> {
        let (head, _) = split_head(&self.data);
        header_in(head, name)
    }

    /// The header `name`, with RFC 2047 encoded words decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw_header(name).map(|v| decode_words(&v))
    }

    /// The subject as a mail client shows it.
    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The `From` header, decoded, e.g. `"Portcullis Tests" <noreply@portcullis.test>`.
    pub fn from(&self) -> String {
        self.header("From").unwrap_or_default()
    }

    /// The text/plain part, transfer encoding undone.
    pub fn text_body(&self) -> String {
        self.part("text/plain")
            .expect("the message has a text/plain part")
    }

    /// The text/html part, transfer encoding undone.
    pub fn html_body(&self) -> String {
        self.part("text/html")
            .expect("the message has a text/html part")
    }

    /// The first http(s) URL of the text part: the link a user would follow.
    pub fn first_link(&self) -> Option<String> {
        first_link(&self.text_body())
    }

    /// The decoded body of the first part of type `mime` (the message itself when it is not
    /// multipart).
    pub fn part(&self, mime: &str) -> Option<String> {
        let (head, body) = split_head(&self.data);
        find_part(head, body, mime)
    }
}

/// The first http(s) URL in `text`.
pub fn first_link(text: &str) -> Option<String> {
    let start = [text.find("https://"), text.find("http://")]
        .into_iter()
        .flatten()
        .min()?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''))
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// (headers, body) of a message or a MIME part.
fn split_head(data: &str) -> (&str, &str) {
    if let Some(i) = data.find("\r\n\r\n") {
        (&data[..i], &data[i + 4..])
    } else if let Some(i) = data.find("\n\n") {
        (&data[..i], &data[i + 2..])
    } else {
        (data, "")
    }
}

/// Header `name` of `head`, continuation lines joined.
fn header_in(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(value) = found.as_mut() {
                value.push(' ');
                value.push_str(line.trim_start());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_string());
        }
    }
    found
}

/// The parameter `name` of a header value such as `multipart/alternative; boundary="x"`.
fn parameter(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_string())
    })
}

fn find_part(head: &str, body: &str, mime: &str) -> Option<String> {
    let content_type = header_in(head, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let kind = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if kind.starts_with("multipart/") {
        let boundary = format!("--{}", parameter(&content_type, "boundary")?);
        let mut sections = body.split(boundary.as_str()).skip(1);
        return sections.find_map(|section| {
            if section.starts_with("--") {
                return None;
            }
            let section = section.strip_prefix("\r\n").unwrap_or(section);
            let (head, body) = split_head(section);
            let body = body.strip_suffix("\r\n").unwrap_or(body);
            find_part(head, body, mime)
        });
    }
    if kind != mime {
        return None;
    }
    let encoding = header_in(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => decode_quoted_printable(body.as_bytes(), false),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .expect("base64 body"),
        _ => body.as_bytes().to_vec(),
    };
    Some(String::from_utf8_lossy(&bytes).replace("\r\n", "\n"))
}

/// Quoted-printable (RFC 2045), or the Q encoding of headers (RFC 2047: `_` is a space).
pub fn decode_quoted_printable(input: &[u8], header: bool) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"=\r\n") {
            i += 3; // soft line break
        } else if rest.starts_with(b"=\n") {
            i += 2;
        } else if rest[0] == b'='
            && let (Some(high), Some(low)) = (
                rest.get(1).copied().and_then(hex),
                rest.get(2).copied().and_then(hex),
            )
        {
            out.push(high * 16 + low);
            i += 3;
        } else if header && rest[0] == b'_' {
            out.push(b' ');
            i += 1;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

/// A header value with its RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`)
/// decoded; the blanks between two adjacent encoded words disappear, as RFC 2047 says.
pub fn decode_words(value: &str) -> String {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut after_word = false;
    while let Some(found) = value[pos..].find("=?") {
        let start = pos + found;
        match encoded_word(&value[start..]) {
            Some((bytes, len)) => {
                let between = &value[pos..start];
                if !(after_word && between.trim().is_empty()) {
                    out.extend_from_slice(between.as_bytes());
                }
                out.extend_from_slice(&bytes);
                pos = start + len;
                after_word = true;
            }
            None => {
                out.extend_from_slice(&value.as_bytes()[pos..start + 2]);
                pos = start + 2;
                after_word = false;
            }
        }
    }
    out.extend_from_slice(&value.as_bytes()[pos..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// (decoded bytes, length in `s`) of the encoded word `s` starts with.
fn encoded_word(s: &str) -> Option<(Vec<u8>, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let end = rest.find("?=")?;
    let text = &rest[..end];
    if text.contains(char::is_whitespace) {
        return None;
    }
    let bytes = match encoding {
        "b" | "B" => base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?,
        "q" | "Q" => decode_quoted_printable(text.as_bytes(), true),
        _ => return None,
    };
    Some((bytes, 2 + charset.len() + 1 + encoding.len() + 1 + end + 2))
}
