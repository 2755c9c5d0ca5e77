//! Password hashing: argon2id for every new hash; bcrypt hashes (users imported from Barong)
//! still verify and are replaced by argon2id at the next successful login.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore: a burst
//! of logins queues instead of starving the threads that serve decisions.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Correct, and the stored hash is current.
    Yes,
    /// Correct, but the stored hash should be replaced by `hash()` of the same password.
    YesRehash,
    No,
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters"),
    )
}

/// The PHC string of an argon2id hash of `password`.
pub fn hash_blocking(password: &str) -> String {
    let salt = crate::crypto::random_bytes::<16>();
    argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters")
        .to_string()
}

pub fn verify_blocking(password: &str, stored: &str) -> Verified {
    if stored.starts_with("$argon2") {
        let ok = argon2()
            .verify_password(password.as_bytes(), stored)
            .is_ok();
        return match (ok, stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")) {
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

    #[test]
    fn argon2id_round_trip() {
        let h = hash_blocking("Tecohvi0!");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(verify_blocking("Tecohvi0!", &h), Verified::Yes);
        assert_eq!(verify_blocking("tecohvi0!", &h), Verified::No);
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
    }
}
