//! The socket a server connection reads and writes: the accepted stream, noting whether the
//! client opened with the HTTP/2 preface, so that an HTTP/2 connection writes without
//! vectored I/O.
//!
//! Why: with a transport that writes vectored, the h2 crate keeps a DATA payload of 256 bytes
//! or more as a buffer of its own (`CHAIN_THRESHOLD` in h2's `codec/framed_write.rs`) and
//! buffers no further frame until that write is done. A gRPC Check answer (HEADERS, a DATA of
//! about a kilobyte carrying the token, trailers) therefore left in two `writev`s, and the
//! client woke twice; `strace -c` under `h2load -c32` counted 2.0 writes per call against 1.0
//! for the same decision over HTTP/2. Without vectored I/O, h2 copies payloads below 1 KiB
//! into its frame buffer (`CHAIN_THRESHOLD_WITHOUT_VECTORED_IO`) and the answer goes in one
//! write; a bigger payload is still sent from its own buffer. HTTP/1 keeps vectored writes:
//! there hyper queues a proxied body's chunks behind the head instead of copying them.
//!
//! hyper-util's `auto` connection reads the first bytes to choose the protocol before it builds
//! the HTTP/1 or HTTP/2 connection, which is when hyper and h2 ask `is_write_vectored`; this
//! wrapper sees those bytes on their way. Were the two ever to disagree, only the number of
//! writes would change, never what is written.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What every HTTP/2 connection starts with (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the bytes read so far say about the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// This many bytes of the HTTP/2 preface seen, nothing else yet.
    Undecided(usize),
    Http2,
    /// Anything that does not start with the preface.
    Other,
}

impl Protocol {
    /// The protocol after `bytes` more were read.
    pub fn after(self, bytes: &[u8]) -> Protocol {
        let Protocol::Undecided(seen) = self else {
            return self;
        };
        let wanted = &PREFACE[seen..];
        let n = wanted.len().min(bytes.len());
        if bytes[..n] != wanted[..n] {
            Protocol::Other
        } else if seen + n == PREFACE.len() {
            Protocol::Http2
        } else {
            Protocol::Undecided(seen + n)
        }
    }
}

/// An accepted stream that knows whether it carries HTTP/2.
pub struct Socket<S> {
    stream: S,
    protocol: Protocol,
}

impl<S> Socket<S> {
    pub fn new(stream: S) -> Socket<S> {
        Socket {
            stream,
            protocol: Protocol::Undecided(0),
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Socket<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if let (Protocol::Undecided(_), Poll::Ready(Ok(()))) = (this.protocol, &polled) {
            this.protocol = this.protocol.after(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Socket<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.protocol != Protocol::Http2 && self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_preface_decides_in_one_read_or_in_pieces() {
        let start = Protocol::Undecided(0);
        assert_eq!(start.after(PREFACE), Protocol::Http2);
        assert_eq!(start.after(b"GET / HTTP/1.1\r\n"), Protocol::Other);
        assert_eq!(start.after(b""), start);
        let mut pieces = start;
        for piece in PREFACE.chunks(5) {
            assert_ne!(pieces, Protocol::Other);
            pieces = pieces.after(piece);
        }
        assert_eq!(pieces, Protocol::Http2);
        // A prefix of the preface, then something else: not HTTP/2.
        assert_eq!(start.after(b"PRI * HTTP/1.1"), Protocol::Other);
        assert_eq!(
            start.after(b"PRI").after(b" * HTTP/2.0\r\n\r\nXX"),
            Protocol::Other
        );
        // Once decided, later bytes change nothing.
        assert_eq!(Protocol::Http2.after(b"GET"), Protocol::Http2);
        assert_eq!(Protocol::Other.after(PREFACE), Protocol::Other);
    }

    /// Over a real TCP connection: vectored writes for HTTP/1, not for HTTP/2.
    #[tokio::test]
    async fn only_an_http2_connection_writes_without_vectored_io() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        for (opening, vectored) in [(&b"GET / HTTP/1.1\r\n"[..], true), (PREFACE, false)] {
            let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
            let (accepted, _) = listener.accept().await.unwrap();
            let mut socket = Socket::new(accepted);
            assert!(socket.is_write_vectored(), "undecided: vectored");
            client.write_all(opening).await.unwrap();
            let mut read = vec![0; opening.len()];
            socket.read_exact(&mut read).await.unwrap();
            assert_eq!(socket.is_write_vectored(), vectored, "{opening:?}");
            socket.write_all(b"answer").await.unwrap();
            let mut answer = [0; 6];
            client.read_exact(&mut answer).await.unwrap();
            assert_eq!(&answer, b"answer");
        }
    }
}
