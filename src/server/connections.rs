//! Which client connections are open, from whom, and which of them are doing nothing.
//!
//! The listener asks [`Connections::admit`] about every accepted socket:
//! - a peer that already holds `max_connections_per_peer` connections is refused at once, so
//!   one direct client cannot take every slot (trusted proxies are exempt: every request
//!   behind nginx or Envoy arrives from their address; an IPv6 /64 counts as one peer);
//! - at `max_connections`, the connection that has been idle longest, preferring one that
//!   never completed a request, is told to close and the new one takes its place. A flood of
//!   sockets that send nothing therefore never locks real clients out: each new connection
//!   pushes out an idle one, and busy connections (a request in flight) are never pushed out.
//!   Only when every connection is busy is the new one refused.
//!
//! Each connection reports its requests ([`Slot::begin`]), so its supervisor knows how long
//! it has been idle; a [`Hold`] keeps the slot taken for as long as anything still uses the
//! connection (a websocket tunnel after the HTTP exchange has ended).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::net::client_ip::network_key;

/// Limits on open connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max: usize,
    pub per_peer: usize,
}

/// The open connections of one listener.
pub struct Connections {
    limits: Limits,
    started: Instant,
    state: Mutex<Table>,
    /// Signalled whenever the last connection closes (for the shutdown drain).
    emptied: Notify,
    open_gauge: metrics::Gauge,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    open: HashMap<u64, Arc<Slot>>,
    per_peer: HashMap<IpAddr, usize>,
    /// Connections told to close that have not closed yet: they no longer count as taken.
    evicting: usize,
}

/// One open connection, as its supervisor and its requests see it.
pub struct Slot {
    id: u64,
    /// The peer's limit key, or `None` for an exempt (trusted) peer.
    peer: Option<IpAddr>,
    in_flight: AtomicUsize,
    completed: AtomicU64,
    /// Milliseconds since the table started at which the connection last became idle.
    idle_since: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
    clock: Instant,
}

/// Why a new connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The peer already holds its share of connections.
    PeerLimit,
    /// Every connection is busy with a request.
    Full,
}

impl Connections {
    pub fn new(limits: Limits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            started: Instant::now(),
            state: Mutex::new(Table::default()),
            emptied: Notify::new(),
            open_gauge: metrics::gauge!("portcullis_connections_open"),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `peer` (`exempt`: a trusted proxy, not limited per peer), or
    /// says why not. At capacity, the longest-idle connection is told to close to make room.
    pub fn admit(self: &Arc<Self>, peer: IpAddr, exempt: bool) -> Result<Hold, Refusal> {
        let key = (!exempt).then(|| network_key(peer));
        let now = self.millis();
        let mut table = self.lock();
        if let Some(key) = key
            && table.per_peer.get(&key).copied().unwrap_or(0) >= self.limits.per_peer
        {
            return Err(Refusal::PeerLimit);
        }
        if table.open.len() - table.evicting >= self.limits.max {
            let victim = table
                .open
                .values()
                .filter(|slot| slot.is_idle() && !slot.evicted.load(Ordering::Relaxed))
                .min_by_key(|slot| slot.eviction_rank(now))
                .cloned();
            let Some(victim) = victim else {
                return Err(Refusal::Full);
            };
            victim.evicted.store(true, Ordering::Relaxed);
            victim.evict.notify_one();
            table.evicting += 1;
        }
        table.next_id += 1;
        let slot = Arc::new(Slot {
            id: table.next_id,
            peer: key,
            in_flight: AtomicUsize::new(0),
            completed: AtomicU64::new(0),
            idle_since: AtomicU64::new(self.millis()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
            clock: self.started,
        });
        table.open.insert(slot.id, slot.clone());
        if let Some(key) = key {
            *table.per_peer.entry(key).or_insert(0) += 1;
        }
        self.open_gauge.set(table.open.len() as f64);
        Ok(Hold(Arc::new(Release {
            slot,
            connections: self.clone(),
        })))
    }

    fn release(&self, slot: &Slot) {
        let mut table = self.lock();
        table.open.remove(&slot.id);
        if slot.evicted.load(Ordering::Relaxed) {
            table.evicting -= 1;
        }
        if let Some(key) = slot.peer
            && let Some(count) = table.per_peer.get_mut(&key)
        {
            *count -= 1;
            if *count == 0 {
                table.per_peer.remove(&key);
            }
        }
        self.open_gauge.set(table.open.len() as f64);
        if table.open.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    pub fn open(&self) -> usize {
        self.lock().open.len()
    }

    /// Completes once no connection is open.
    pub async fn drained(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.open() == 0 {
                return;
            }
            notified.await;
        }
    }

    fn millis(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A connection that has sent nothing for this long is presumed abandoned (or hostile) and is
/// the first to make room; younger ones may still be on their way to their first request.
const SILENT_MS: u64 = 1000;

impl Slot {
    /// Lower goes first: connections that never completed a request and have been silent a
    /// while, then everyone by how long they have been idle.
    fn eviction_rank(&self, now: u64) -> (bool, u64) {
        let since = self.idle_since.load(Ordering::Relaxed);
        let silent =
            self.completed.load(Ordering::Relaxed) == 0 && now.saturating_sub(since) >= SILENT_MS;
        (!silent, since)
    }

    /// No request in flight.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// Marks a request in flight until the returned guard drops (when its response has been
    /// sent, or abandoned).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// How long the connection has been without a request in flight (zero while busy), and
    /// whether it ever completed one.
    pub fn idle_for(&self) -> (Duration, bool) {
        let served = self.completed.load(Ordering::Relaxed) > 0;
        if !self.is_idle() {
            return (Duration::ZERO, served);
        }
        let now = self.clock.elapsed().as_millis() as u64;
        let since = self.idle_since.load(Ordering::Relaxed);
        (Duration::from_millis(now.saturating_sub(since)), served)
    }

    /// Completes when the listener wants this connection closed to make room.
    pub async fn evicted(&self) {
        let notified = self.evict.notified();
        if self.evicted.load(Ordering::Relaxed) {
            return;
        }
        notified.await;
    }
}

/// A request in flight on a connection.
pub struct InFlight(Arc<Slot>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let slot = &self.0;
        slot.idle_since
            .store(slot.clock.elapsed().as_millis() as u64, Ordering::Relaxed);
        slot.completed.fetch_add(1, Ordering::Relaxed);
        slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Release {
    slot: Arc<Slot>,
    connections: Arc<Connections>,
}

impl Drop for Release {
    fn drop(&mut self) {
        self.connections.release(&self.slot);
    }
}

/// Keeps a connection's slot taken; the slot is given back when the last hold drops.
#[derive(Clone)]
pub struct Hold(Arc<Release>);

impl Hold {
    pub fn slot(&self) -> &Arc<Slot> {
        &self.0.slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_peer_cannot_take_every_slot() {
        let table = Connections::new(Limits {
            max: 10,
            per_peer: 2,
        });
        let a = table.admit(ip("203.0.113.1"), false).unwrap();
        let _b = table.admit(ip("203.0.113.1"), false).unwrap();
        assert_eq!(
            table.admit(ip("203.0.113.1"), false).err(),
            Some(Refusal::PeerLimit)
        );
        // Another address, and a trusted proxy, are not held back.
        let _c = table.admit(ip("203.0.113.2"), false).unwrap();
        for _ in 0..5 {
            std::mem::forget(table.admit(ip("10.0.0.1"), true).unwrap());
        }
        drop(a);
        assert!(table.admit(ip("203.0.113.1"), false).is_ok());
        // An IPv6 /64 is one peer.
        let _d = table.admit(ip("2001:db8::1"), false).unwrap();
        let _e = table.admit(ip("2001:db8::2"), false).unwrap();
        assert_eq!(
            table.admit(ip("2001:db8::ffff"), false).err(),
            Some(Refusal::PeerLimit)
        );
    }

    #[test]
    fn at_capacity_the_longest_idle_connection_makes_room() {
        let table = Connections::new(Limits {
            max: 3,
            per_peer: 100,
        });
        let at = |hold: &Hold, ms: u64| hold.slot().idle_since.store(ms, Ordering::Relaxed);
        let served = table.admit(ip("192.0.2.1"), false).unwrap();
        drop(served.slot().begin());
        let silent = table.admit(ip("192.0.2.2"), false).unwrap();
        let busy = table.admit(ip("192.0.2.3"), false).unwrap();
        let _request = busy.slot().begin();
        at(&served, 0);
        at(&silent, 5);
        // Full: one of the idle connections (which one is `silent_connections_go_first`'s
        // business) makes room; the busy one never does.
        let new = table.admit(ip("192.0.2.4"), false).unwrap();
        let silent_went = silent.slot().evicted.load(Ordering::Relaxed);
        let served_went = served.slot().evicted.load(Ordering::Relaxed);
        assert!(
            silent_went ^ served_went,
            "exactly one idle connection made room"
        );
        assert!(!busy.slot().evicted.load(Ordering::Relaxed));
        // Next: the other idle one goes; the busy one never.
        let newer_request = new.slot().begin();
        let newer = table.admit(ip("192.0.2.5"), false).unwrap();
        assert!(silent.slot().evicted.load(Ordering::Relaxed));
        assert!(served.slot().evicted.load(Ordering::Relaxed));
        assert!(!busy.slot().evicted.load(Ordering::Relaxed));
        // Only busy (or already leaving) connections left: refused.
        let _r = newer.slot().begin();
        assert_eq!(
            table.admit(ip("192.0.2.6"), false).err(),
            Some(Refusal::Full)
        );
        drop(newer_request);
        drop(silent);
        drop(served);
        assert_eq!(table.open(), 3);
    }

    #[test]
    fn silent_connections_go_first() {
        let table = Connections::new(Limits {
            max: 10,
            per_peer: 10,
        });
        let served = table.admit(ip("192.0.2.1"), false).unwrap();
        drop(served.slot().begin());
        let silent = table.admit(ip("192.0.2.2"), false).unwrap();
        served.slot().idle_since.store(0, Ordering::Relaxed);
        silent.slot().idle_since.store(100, Ordering::Relaxed);
        let now = 100 + SILENT_MS;
        // `served` has been idle longer, yet the silent one ranks first.
        assert!(silent.slot().eviction_rank(now) < served.slot().eviction_rank(now));
        // A connection that just arrived is not yet presumed silent.
        assert!(silent.slot().eviction_rank(150) > served.slot().eviction_rank(150));
    }

    #[test]
    fn holds_keep_the_slot_until_the_last_one_goes() {
        let table = Connections::new(Limits {
            max: 5,
            per_peer: 5,
        });
        let hold = table.admit(ip("192.0.2.1"), false).unwrap();
        let tunnel = hold.clone();
        drop(hold);
        assert_eq!(table.open(), 1);
        drop(tunnel);
        assert_eq!(table.open(), 0);
    }
}
