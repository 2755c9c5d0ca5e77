//! A subject is who a request acts as: a user or a service account, as the gate and the JWT
//! see them. Snapshots are cached per node and replaced when the row changes.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    User,
    ServiceAccount,
}

impl SubjectKind {
    /// The `key_holder_account_type` column value.
    pub fn holder_type(self) -> &'static str {
        match self {
            SubjectKind::User => "User",
            SubjectKind::ServiceAccount => "ServiceAccount",
        }
    }

    pub fn from_holder_type(value: &str) -> Option<SubjectKind> {
        match value {
            "User" => Some(SubjectKind::User),
            "ServiceAccount" => Some(SubjectKind::ServiceAccount),
            _ => None,
        }
    }
}

/// The fields of a user or service account that decisions and tokens need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRecord {
    pub kind: SubjectKind,
    pub id: i64,
    pub uid: String,
    pub username: Option<String>,
    pub email: String,
    pub role: String,
    pub level: i32,
    pub state: String,
    /// Numeric id of the referrer (Barong puts the id, not the uid, in the JWT).
    pub referral_id: Option<i64>,
    /// Two-factor authentication enabled (users only; service accounts have none).
    pub otp: bool,
}

/// The user part of the session JWT, in Barong's key order.
#[derive(Serialize)]
pub struct UserClaims<'a> {
    pub uid: &'a str,
    pub username: Option<&'a str>,
    pub email: &'a str,
    pub role: &'a str,
    pub level: i32,
    pub state: &'a str,
    pub referral_id: Option<i64>,
}

/// A service account's part: no username, no referral.
#[derive(Serialize)]
pub struct ServiceAccountClaims<'a> {
    pub uid: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub level: i32,
    pub state: &'a str,
}
