//! Password hashing: argon2id for every new hash; bcrypt hashes (users imported from Barong)
//! still verify and are replaced by argon2id at the next successful login.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore: a burst
//! of logins queues instead of starving the threads that serve decisions.
//!
//! Argon2's 19 MiB of working memory comes from [`BlockPool`], not from a fresh allocation per
//! hash: under a login storm the blocking pool's threads each allocated and freed 19 MiB per
//! login, and the allocator kept much of it per thread after the storm
//! (`bench/login_storm.sh` has the figures).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Correct, and the stored hash is current.
    Yes,
    /// Correct, but the stored hash should be replaced by `hash()` of the same password.
    YesRehash,
    No,
}

/// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

/// The PHC prefix of a hash made with [`params`]: anything else is rehashed at login.
const CURRENT: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Argon2 working memory kept between hashes, at most `keep` sets of the current size. Argon2
/// writes every block before it reads it, so a set needs no clearing between passwords.
pub struct BlockPool {
    free: Mutex<Vec<Box<[Block]>>>,
    keep: usize,
}

impl BlockPool {
    pub const fn new(keep: usize) -> BlockPool {
        BlockPool {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<Box<[Block]>>> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on `blocks` blocks: a kept set when one of that size is free, else a new one,
    /// kept afterwards if it has the current size and the pool is not full.
    pub fn with<R>(&self, blocks: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
        let reused = {
            let mut free = self.free();
            free.iter()
                .position(|set| set.len() == blocks)
                .map(|i| free.swap_remove(i))
        };
        let mut memory = reused.unwrap_or_else(|| vec![Block::new(); blocks].into_boxed_slice());
        let result = f(&mut memory);
        let mut free = self.free();
        if memory.len() == params().block_count() && free.len() < self.keep {
            free.push(memory);
        }
        result
    }

    /// How many sets are kept now.
    pub fn kept(&self) -> usize {
        self.free().len()
    }
}

/// The process's pool. At most as many hashes run at once as the hashing semaphore allows
/// (one per CPU, `app.rs`); the CLI and the decoy hash outside it, one at a time.
fn pool() -> &'static BlockPool {
    static POOL: OnceLock<BlockPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        BlockPool::new(cpus + 1)
    })
}

/// The PHC string of an argon2id hash of `password`.
pub fn hash_blocking(password: &str) -> String {
    let params = params();
    let salt = crate::crypto::random_bytes::<16>();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    pool()
        .with(params.block_count(), |memory| {
            argon2.hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory)
        })
        .expect("argon2 hashing with valid parameters");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("argon2 parameters encode"),
        salt: Some(Salt::new(&salt).expect("a 16-byte salt")),
        hash: Some(Output::new(&out).expect("a 32-byte output")),
    }
    .to_string()
}

/// Whether `password` hashes to the argon2 PHC string `stored`, with its own parameters.
fn argon2_matches(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let hashed = pool().with(params.block_count(), |memory| {
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory)
    });
    hashed.is_ok() && crate::crypto::constant_time_eq(&out, expected.as_bytes())
}

pub fn verify_blocking(password: &str, stored: &str) -> Verified {
    if stored.starts_with("$argon2") {
        return match (
            argon2_matches(password, stored),
            stored.starts_with(CURRENT),
        ) {
            (true, true) => Verified::Yes,
            (true, false) => Verified::YesRehash,
            (false, _) => Verified::No,
        };
    }
    if stored.starts_with("$2") {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verified::YesRehash,
            _ => Verified::No,
        };
    }
    Verified::No
}

/// A hash that verifies nothing, so that an unknown account costs the same time as a known one.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_blocking(&crate::crypto::random_hex::<16>()))
}

/// The hashing pool: bounded concurrency on the blocking threads.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Hasher {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    pub async fn hash(&self, password: &str) -> String {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let password = password.to_string();
        tokio::task::spawn_blocking(move || hash_blocking(&password))
            .await
            .expect("hashing does not panic")
    }

    /// Verifies against `stored`, or against a decoy when there is no account.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Verified {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("semaphore never closed");
        let password = password.to_string();
        let stored = stored.map(str::to_string);
        tokio::task::spawn_blocking(move || match stored {
            Some(hash) => verify_blocking(&password, &hash),
            None => {
                verify_blocking(&password, decoy());
                Verified::No
            }
        })
        .await
        .expect("verification does not panic")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher;

    #[test]
    fn argon2id_round_trip() {
        let h = hash_blocking("Tecohvi0!");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_blocking("Tecohvi0!", &h), Verified::Yes);
        assert_eq!(verify_blocking("tecohvi0!", &h), Verified::No);
    }

    #[test]
    fn our_hashes_and_the_crates_verify_each_other() {
        use argon2::password_hash::PasswordVerifier;
        let ours = hash_blocking("Tecohvi0!");
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        assert!(
            standard
                .verify_password(b"Tecohvi0!", ours.as_str())
                .is_ok()
        );
        assert!(
            standard
                .verify_password(b"tecohvi0!", ours.as_str())
                .is_err()
        );
        let theirs = standard
            .hash_password_with_salt(b"Tecohvi0!", &[7u8; 16])
            .unwrap()
            .to_string();
        assert!(theirs.starts_with(CURRENT));
        assert_eq!(verify_blocking("Tecohvi0!", &theirs), Verified::Yes);
        assert_eq!(verify_blocking("Tecohvi1!", &theirs), Verified::No);
    }

    #[test]
    fn the_pool_hands_the_same_blocks_to_consecutive_hashes_and_keeps_no_more_than_asked() {
        let pool = BlockPool::new(1);
        let blocks = params().block_count();
        let first = pool.with(blocks, |memory| memory.as_ptr() as usize);
        assert_eq!(pool.kept(), 1);
        let second = pool.with(blocks, |memory| memory.as_ptr() as usize);
        assert_eq!(first, second, "a second hash allocated its own memory");
        // Two at once: the second set is not kept, and another size never is.
        pool.with(blocks, |_| pool.with(blocks, |_| ()));
        assert_eq!(pool.kept(), 1);
        pool.with(1024, |_| ());
        assert_eq!(pool.kept(), 1);
    }

    #[test]
    fn bcrypt_verifies_and_asks_for_rehash() {
        let h = bcrypt::hash("Barong123!", 4).unwrap();
        assert_eq!(verify_blocking("Barong123!", &h), Verified::YesRehash);
        assert_eq!(verify_blocking("Barong124!", &h), Verified::No);
    }

    #[test]
    fn weaker_argon2_asks_for_rehash_and_garbage_never_verifies() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let h = weak
            .hash_password_with_salt(b"pw", &[1u8; 16])
            .unwrap()
            .to_string();
        assert_eq!(verify_blocking("pw", &h), Verified::YesRehash);
        assert_eq!(verify_blocking("pw", "plain"), Verified::No);
        assert_eq!(verify_blocking("pw", ""), Verified::No);
        assert_eq!(
            verify_blocking("pw", "$argon2id$v=19$m=19456"),
            Verified::No
        );
        assert_eq!(
            verify_blocking("pw", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$"),
            Verified::No
        );
    }
}
