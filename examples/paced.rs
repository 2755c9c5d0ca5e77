//! A paced (open-schedule) HTTP/1.1 load generator for `bench/run.sh`: latency at a fixed rate.
//!
//! Why not hey or wrk: wrk is closed-loop (it measures at saturation), and hey, at a fixed rate,
//! could not reach half of the decision endpoint's peak on the one core the bench leaves it
//! (28.8k of 39.7k req/s asked), so its p99 measured hey as much as the gateway. An earlier
//! generator on tokio lost its precision to millisecond timers and its CPU to spin-waiting.
//!
//! This one is one thread and non-blocking sockets: each of `--connections` keep-alive
//! connections has a schedule of `rate / connections` requests a second; the thread sends every
//! request that is due, then waits in `epoll_pwait2` (nanosecond timeout) for answers or the
//! next due time. Latency is counted from the *scheduled* time, as wrk2 does, so a server
//! that falls behind is charged for the queue it causes (no coordinated omission); the time
//! from the actual send is reported beside it. A first version ran a blocking thread per
//! connection: on the bench's one core, 32 threads waking each other cost 2.1 ms of p99
//! against nginx's static answer at 38k requests/s; this loop costs about 0.2 ms there.
//!
//! ```text
//! paced --rate 20000 --connections 32 --duration 10 [--warmup 1] [-H 'Name: value']... http://127.0.0.1:18080/path
//! ```
//!
//! Prints `key value` lines: `requests`, `rate`, `non2xx`, `errors`, `p50_ms`, `p90_ms`,
//! `p99_ms`, `p999_ms`, `max_ms`, and `sent_p50_ms`/`sent_p99_ms` (from the actual send).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

struct Args {
    rate: f64,
    connections: usize,
    duration: Duration,
    /// Sent on the same schedule before `duration` starts, and not counted: new connections,
    /// cold caches and the first minted tokens are not the steady state being measured.
    warmup: Duration,
    headers: Vec<String>,
    host: String,
    path: String,
}

fn parse_args() -> Result<Args, String> {
    let mut rate = None;
    let mut connections = 32;
    let mut duration = Duration::from_secs(10);
    let mut warmup = Duration::from_secs(1);
    let mut headers = Vec::new();
    let mut url = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rate" => rate = Some(value()?.parse::<f64>().map_err(|e| e.to_string())?),
            "--connections" => connections = value()?.parse().map_err(|e| format!("{e}"))?,
            "--duration" => {
                duration = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "--warmup" => {
                warmup = Duration::from_secs_f64(value()?.parse().map_err(|e| format!("{e}"))?)
            }
            "-H" => headers.push(value()?),
            _ if arg.starts_with("http://") => url = Some(arg),
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    let rate = rate.ok_or("--rate is required")?;
    let url = url.ok_or("an http:// URL is required")?;
    let rest = &url["http://".len()..];
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if rate <= 0.0 || connections == 0 {
        return Err("--rate and --connections must be positive".into());
    }
    Ok(Args {
        rate,
        connections,
        duration,
        warmup,
        headers,
        host: host.to_owned(),
        path: path.to_owned(),
    })
}

/// What the run saw: latencies (µs) from the schedule and from the send.
#[derive(Default)]
struct Tally {
    scheduled: Vec<u32>,
    sent: Vec<u32>,
    non2xx: u64,
    errors: u64,
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("paced: {message}");
            return ExitCode::from(2);
        }
    };
    let mut request = format!("GET {} HTTP/1.1\r\nHost: {}\r\n", args.path, args.host);
    for header in &args.headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");

    let mut total = match run(&args, request.as_bytes()) {
        Ok(tally) => tally,
        Err(err) => {
            eprintln!("paced: {err}");
            return ExitCode::FAILURE;
        }
    };
    let requests = total.scheduled.len();
    println!("requests {requests}");
    println!("rate {:.0}", requests as f64 / args.duration.as_secs_f64());
    println!("non2xx {}", total.non2xx);
    println!("errors {}", total.errors);
    total.scheduled.sort_unstable();
    total.sent.sort_unstable();
    for (name, q) in [
        ("p50", 0.5),
        ("p90", 0.9),
        ("p99", 0.99),
        ("p999", 0.999),
        ("max", 1.0),
    ] {
        println!("{name}_ms {:.3}", quantile(&total.scheduled, q));
    }
    println!("sent_p50_ms {:.3}", quantile(&total.sent, 0.5));
    println!("sent_p99_ms {:.3}", quantile(&total.sent, 0.99));
    if total.errors > 0 || requests == 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The `q` quantile of sorted µs values, in ms.
fn quantile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[index]) / 1000.0
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

/// One keep-alive connection and its schedule.
struct Connection {
    stream: TcpStream,
    /// When its next request is (or its current one was) due.
    due: Instant,
    /// When the request in flight was written; `None` while idle.
    sent: Option<Instant>,
    /// What has arrived of the answer in flight.
    received: Vec<u8>,
}

fn connect(host: &str, poller: &Poller, token: usize) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    stream.set_nonblocking(true)?;
    poller.add(&stream, token)?;
    Ok(stream)
}

/// Sends every request when it is due until the duration is over, and collects the answers.
fn run(args: &Args, request: &[u8]) -> io::Result<Tally> {
    let mut poller = Poller::new()?;
    let interval = Duration::from_secs_f64(args.connections as f64 / args.rate);
    let start = Instant::now() + Duration::from_millis(100);
    let counted = start + args.warmup;
    let end = counted + args.duration;
    let mut connections = (0..args.connections)
        .map(|i| {
            Ok(Connection {
                stream: connect(&args.host, &poller, i)?,
                // Staggered across one interval, so the requests are evenly spread.
                due: start + interval.mul_f64(i as f64 / args.connections as f64),
                sent: None,
                received: Vec::with_capacity(16 * 1024),
            })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let mut tally = Tally::default();
    let mut ready = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        let mut next_due: Option<Instant> = None;
        let mut in_flight = false;
        for (i, c) in connections.iter_mut().enumerate() {
            if c.sent.is_none() && c.due < end {
                if c.due <= now {
                    if let Err(err) = c.stream.write_all(request) {
                        fail(&mut tally, c, &args.host, &poller, i, interval, err);
                        continue;
                    }
                    c.sent = Some(now);
                } else {
                    next_due = Some(next_due.map_or(c.due, |d| d.min(c.due)));
                }
            }
            in_flight |= c.sent.is_some();
        }
        if !in_flight && next_due.is_none() {
            return Ok(tally);
        }
        let timeout = next_due.map(|due| due.saturating_duration_since(Instant::now()));
        poller.wait(&mut ready, timeout.unwrap_or(Duration::from_millis(100)))?;
        let now = Instant::now();
        for &i in &ready {
            let c = &mut connections[i];
            let Some(sent) = c.sent else { continue };
            let outcome = read_answer(&mut c.stream, &mut c.received, &mut chunk);
            match outcome {
                Ok(None) => {}
                Ok(Some(status)) => {
                    if c.due >= counted {
                        tally.scheduled.push(micros(now - c.due));
                        tally.sent.push(micros(now - sent));
                    }
                    if !(200..300).contains(&status) {
                        tally.non2xx += 1;
                    }
                    c.received.clear();
                    c.sent = None;
                    c.due += interval;
                }
                Err(err) => fail(&mut tally, c, &args.host, &poller, i, interval, err),
            }
        }
    }
}

/// Counts a failed request and connects again; the schedule goes on.
fn fail(
    tally: &mut Tally,
    c: &mut Connection,
    host: &str,
    poller: &Poller,
    token: usize,
    interval: Duration,
    err: io::Error,
) {
    if tally.errors == 0 {
        eprintln!("paced: {err}");
    }
    tally.errors += 1;
    c.received.clear();
    c.sent = None;
    c.due += interval;
    poller.remove(&c.stream);
    match connect(host, poller, token) {
        Ok(stream) => c.stream = stream,
        Err(err) => eprintln!("paced: reconnect: {err}"),
    }
}

/// Reads what the socket has; the answer's status once it is complete.
fn read_answer(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    chunk: &mut [u8],
) -> io::Result<Option<u16>> {
    loop {
        match stream.read(chunk) {
            Ok(0) => return Err(invalid("closed by the server".into())),
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    complete(received)
}

/// The status of the answer in `bytes` when it is all there (Content-Length or chunked).
fn complete(bytes: &[u8]) -> io::Result<Option<u16>> {
    let Some(head_end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head =
        std::str::from_utf8(&bytes[..head_end]).map_err(|_| invalid("head not UTF-8".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let (mut length, mut chunked) = (0usize, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .parse()
                .map_err(|_| invalid(format!("bad length {value}")))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let body = &bytes[head_end + 4..];
    if !chunked {
        return Ok((body.len() >= length).then_some(status));
    }
    let mut rest = body;
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap_or_default();
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap_or_default().trim(), 16)
                .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        let needed = line_end + 2 + size + 2;
        if rest.len() < needed {
            return Ok(None);
        }
        if size == 0 {
            return Ok(Some(status));
        }
        rest = &rest[needed..];
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// epoll, declared here so that the generator stays std-only (rustc builds it in a second).
mod sys {
    #[cfg_attr(target_arch = "x86_64", repr(C, packed))]
    #[cfg_attr(not(target_arch = "x86_64"), repr(C))]
    #[derive(Clone, Copy)]
    pub struct EpollEvent {
        pub events: u32,
        pub data: u64,
    }

    #[repr(C)]
    pub struct Timespec {
        pub tv_sec: i64,
        pub tv_nsec: i64,
    }

    pub const EPOLLIN: u32 = 0x1;
    pub const EPOLL_CTL_ADD: i32 = 1;
    pub const EPOLL_CTL_DEL: i32 = 2;
    pub const EPOLL_CLOEXEC: i32 = 0o2000000;
    pub const PR_SET_TIMERSLACK: i32 = 29;

    unsafe extern "C" {
        pub fn epoll_create1(flags: i32) -> i32;
        pub fn epoll_ctl(epfd: i32, op: i32, fd: i32, event: *mut EpollEvent) -> i32;
        pub fn epoll_pwait2(
            epfd: i32,
            events: *mut EpollEvent,
            maxevents: i32,
            timeout: *const Timespec,
            sigmask: *const u8,
        ) -> i32;
        pub fn close(fd: i32) -> i32;
        pub fn prctl(option: i32, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> i32;
    }
}

/// An epoll instance: readable sockets by token.
struct Poller {
    fd: i32,
    events: Vec<sys::EpollEvent>,
}

impl Poller {
    fn new() -> io::Result<Poller> {
        // Wake-ups as exact as the kernel can make them: the default slack is 50 µs.
        // SAFETY: no pointers; a failure only leaves the default slack.
        unsafe { sys::prctl(sys::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { sys::epoll_create1(sys::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let events = vec![sys::EpollEvent { events: 0, data: 0 }; 1024];
        Ok(Poller { fd, events })
    }

    fn add(&self, stream: &TcpStream, token: usize) -> io::Result<()> {
        let mut event = sys::EpollEvent {
            events: sys::EPOLLIN,
            data: token as u64,
        };
        // SAFETY: `event` outlives the call; the kernel copies it.
        let rc =
            unsafe { sys::epoll_ctl(self.fd, sys::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut event) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn remove(&self, stream: &TcpStream) {
        let mut event = sys::EpollEvent { events: 0, data: 0 };
        // SAFETY: as in `add`; a failure leaves nothing to undo.
        unsafe { sys::epoll_ctl(self.fd, sys::EPOLL_CTL_DEL, stream.as_raw_fd(), &mut event) };
    }

    /// Waits up to `timeout` (to the nanosecond); `ready` gets the tokens of readable sockets.
    fn wait(&mut self, ready: &mut Vec<usize>, timeout: Duration) -> io::Result<()> {
        ready.clear();
        let timeout = sys::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        let events = self.events.as_mut_ptr();
        // SAFETY: `events` has room for the count passed; the kernel writes at most that many.
        let n = unsafe {
            sys::epoll_pwait2(
                self.fd,
                events,
                self.events.len() as i32,
                &timeout,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted {
                Ok(())
            } else {
                Err(err)
            };
        }
        for event in &self.events[..n as usize] {
            let data = event.data;
            ready.push(data as usize);
        }
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { sys::close(self.fd) };
    }
}
