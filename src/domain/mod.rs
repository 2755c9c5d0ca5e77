//! The vocabulary of the domain: user states, emails, subjects, uids, what labels imply, how
//! timestamps are written, KYC callbacks, the rows a policy is compiled from, and the loader
//! port the gate's caches read through. No I/O here.

pub mod abilities;
pub mod documents;
pub mod email;
pub mod kyc;
pub mod labels;
pub mod loader;
pub mod password_policy;
pub mod phones;
pub mod policy;
pub mod profile;
pub mod subject;
pub mod time;
pub mod user_state;
pub mod validation;

/// User states Barong uses (`users.state`).
pub mod state {
    pub const PENDING: &str = "pending";
    pub const ACTIVE: &str = "active";
    pub const BANNED: &str = "banned";
    pub const DELETED: &str = "deleted";
    pub const LOCKED: &str = "locked";
    pub const DISABLED: &str = "disabled";

    /// States that may hold a session or use an API key (Barong: active and pending).
    pub fn may_authenticate(state: &str) -> bool {
        state == ACTIVE || state == PENDING
    }
}

/// A new user uid: the configured prefix (upper-cased) and 10 uppercase hex digits.
pub fn new_uid(prefix: &str) -> String {
    let bytes = crate::crypto::random_bytes::<5>();
    format!(
        "{}{}",
        prefix.to_ascii_uppercase(),
        hex::encode_upper(bytes)
    )
}

/// A new service-account uid: `SI` and 10 uppercase hex digits.
pub fn new_service_account_uid() -> String {
    new_uid("SI")
}

#[cfg(test)]
mod tests {
    #[test]
    fn uids_have_prefix_and_ten_hex_digits() {
        let uid = super::new_uid("id");
        assert_eq!(uid.len(), 12);
        assert!(uid.starts_with("ID"));
        assert!(
            uid[2..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        );
        assert!(super::new_service_account_uid().starts_with("SI"));
    }
}
