//! The one cache implementation behind the per-node caches of subjects and API keys.
//!
//! - **Bounded by size, not flushed**: moka evicts the least useful entries one by one
//!   (TinyLFU), so reaching the cap never sends every request to Postgres at once.
//! - **Trusted for a while**: an entry is fresh for `cache.subject_ttl` even without a notice;
//!   a stale one is still at hand ([`Cache::get_stale`]) so a reload that finds nothing changed
//!   can keep what was attached to it (a minted token), and unused entries leave after ten
//!   TTLs.
//! - **No stale allow after a change notice**: a miss reads the database while, on another
//!   task, a change notice may invalidate the same key. Without care the read, which may have
//!   started before the change committed, would be cached after the notice and serve the old
//!   value (a just-banned user allowed) until the TTL. So a load takes a [`Ticket`] before it
//!   reads, and its result is cached only if no invalidation touched the key since; the check
//!   and the insert happen under the same (striped) lock that invalidation takes.
//!
//! Values may be "known absent" (an unknown API key id): callers cache `Option<T>`.

use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Invalidations are counted per stripe of the key space: precise enough that unrelated
/// changes rarely stop a load from being cached, small enough to cost nothing.
const STRIPES: usize = 64;

pub struct Cache<V: Clone + Send + Sync + 'static> {
    entries: moka::sync::Cache<String, (V, Instant)>,
    ttl: Duration,
    /// Invalidation counter of each stripe, under the lock that orders inserts after it.
    epochs: Vec<Mutex<u64>>,
    hasher: std::collections::hash_map::RandomState,
    hits: metrics::Counter,
    misses: metrics::Counter,
}

/// Taken before a load reads the database; [`Cache::insert`] refuses it if the key was
/// invalidated since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    stripe: usize,
    epoch: u64,
}

impl<V: Clone + Send + Sync + 'static> Cache<V> {
    /// A cache labelled `name` in metrics, holding at most `capacity` entries for `ttl` each.
    pub fn new(name: &'static str, capacity: u64, ttl: Duration) -> Cache<V> {
        Cache {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(ttl.saturating_mul(10))
                .build(),
            ttl,
            epochs: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            hits: metrics::counter!("portcullis_cache_hits_total", "cache" => name),
            misses: metrics::counter!("portcullis_cache_misses_total", "cache" => name),
        }
    }

    fn stripe(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % STRIPES
    }

    fn epoch(&self, stripe: usize) -> std::sync::MutexGuard<'_, u64> {
        self.epochs[stripe]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached value while it is fresh, counting a hit or a miss.
    pub fn get(&self, key: &str) -> Option<V> {
        match self.entries.get(key) {
            Some((value, loaded)) if loaded.elapsed() < self.ttl => {
                self.hits.increment(1);
                Some(value)
            }
            _ => {
                self.misses.increment(1);
                None
            }
        }
    }

    /// The cached value, fresh or not (not counted).
    pub fn get_stale(&self, key: &str) -> Option<V> {
        self.entries.get(key).map(|(value, _)| value)
    }

    /// Take this before reading the value from the database.
    pub fn ticket(&self, key: &str) -> Ticket {
        let stripe = self.stripe(key);
        Ticket {
            stripe,
            epoch: *self.epoch(stripe),
        }
    }

    /// Caches a loaded value, unless the key was invalidated since `ticket` was taken (the
    /// value may predate the change). Returns whether it was cached.
    pub fn insert(&self, key: &str, value: V, ticket: Ticket) -> bool {
        let epoch = self.epoch(ticket.stripe);
        if *epoch != ticket.epoch {
            return false;
        }
        self.entries
            .insert(key.to_string(), (value, Instant::now()));
        true
    }

    /// Forgets `key`, and makes any load of it already under way uncacheable.
    pub fn invalidate(&self, key: &str) {
        let stripe = self.stripe(key);
        let mut epoch = self.epoch(stripe);
        *epoch += 1;
        self.entries.invalidate(key);
    }

    /// Forgets everything (change notices may have been missed).
    pub fn clear(&self) {
        let guards: Vec<_> = (0..STRIPES).map(|stripe| self.epoch(stripe)).collect();
        let mut guards = guards;
        for epoch in guards.iter_mut() {
            **epoch += 1;
        }
        self.entries.invalidate_all();
    }

    /// Entries held (approximate: moka applies evictions lazily).
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_cached() {
        let cache: Cache<&'static str> = Cache::new("test", 100, Duration::from_secs(60));
        let ticket = cache.ticket("ID1");
        // The change commits and its notice is applied while the load is reading.
        cache.invalidate("ID1");
        assert!(!cache.insert("ID1", "active (before the ban)", ticket));
        assert_eq!(cache.get("ID1"), None);
        // The next load, after the notice, is cached.
        let ticket = cache.ticket("ID1");
        assert!(cache.insert("ID1", "banned", ticket));
        assert_eq!(cache.get("ID1"), Some("banned"));
        // A cleared cache refuses every load that started before.
        let ticket = cache.ticket("ID2");
        cache.clear();
        assert!(!cache.insert("ID2", "stale", ticket));
    }

    #[test]
    fn stale_entries_are_misses_but_stay_at_hand() {
        let cache: Cache<u32> = Cache::new("test", 100, Duration::from_millis(30));
        let ticket = cache.ticket("a");
        assert!(cache.insert("a", 7, ticket));
        assert_eq!(cache.get("a"), Some(7));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("a"), None);
        assert_eq!(cache.get_stale("a"), Some(7));
    }

    #[test]
    fn invalidation_of_another_stripe_does_not_matter() {
        let cache: Cache<u32> = Cache::new("test", 100, Duration::from_secs(60));
        let ticket = cache.ticket("a");
        let other = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| cache.stripe(k) != ticket.stripe)
            .unwrap();
        cache.invalidate(&other);
        assert!(cache.insert("a", 1, ticket));
    }

    #[test]
    fn the_cap_evicts_entries_one_by_one_instead_of_flushing() {
        let cache: Cache<u32> = Cache::new("test", 1000, Duration::from_secs(60));
        for i in 0..5000u32 {
            let key = format!("k{i}");
            let ticket = cache.ticket(&key);
            cache.insert(&key, i, ticket);
        }
        let held = cache.len();
        assert!(held <= 1000, "{held}");
        assert!(held >= 500, "the cache emptied itself: {held}");
    }
}
