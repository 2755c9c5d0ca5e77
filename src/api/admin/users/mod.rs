//! `/admin/users…`: staff read accounts, change their state, 2FA, email and role, review KYC
//! through labels (and the documents' files), keep comments and drop stored data (Barong
//! §9.2). Each concern is a module; this one holds what they share: finding the target user,
//! the superadmin protection, the NUL refusal and Grape's boolean parameter.

pub mod comments;
pub mod documents;
pub mod entities;
pub mod labels;
pub mod list;
pub mod storage;
pub mod update;

use axum::extract::FromRef;
use serde_json::Value;

use super::{AdminState, Staff};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::params::Params;
use crate::routes::Endpoint;
use crate::store::Db;
use crate::store::users::{UserRow, find_by_uid};

/// The prefix of these endpoints' parameter codes (`admin.user.missing_uid` …).
const PREFIX: &str = "admin.user";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    let mut all = list::endpoints();
    all.extend(update::endpoints());
    all.extend(labels::endpoints());
    all.extend(comments::endpoints());
    all.extend(storage::endpoints());
    all.extend(documents::endpoints());
    all
}

/// The user `uid`, or Barong's 404 `admin.user.doesnt_exist`.
async fn target<C: Db>(c: &C, uid: &str) -> ApiResult<UserRow> {
    // Postgres refuses a NUL in text outright; no uid holds one.
    if uid.contains('\0') {
        return Err(ApiError::not_found("admin.user.doesnt_exist"));
    }
    find_by_uid(c, uid)
        .await?
        .ok_or_else(|| ApiError::not_found("admin.user.doesnt_exist"))
}

/// Only a superadmin changes a superadmin: 422 `<code>` for anyone else.
fn protect_superadmin(staff: &Staff, target: &UserRow, code: &str) -> ApiResult<()> {
    if target.role == "superadmin" && !staff.is_superadmin() {
        return Err(ApiError::unprocessable(code));
    }
    Ok(())
}

/// Refuses a parameter holding a NUL character (422 `admin.user.invalid_<name>`): Postgres
/// refuses NUL in text, so it would otherwise surface as a server error. Nested values are
/// checked too.
fn refuse_nul(params: &Params) -> ApiResult<()> {
    fn holds_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(holds_nul),
            Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
            _ => false,
        }
    }
    match params
        .0
        .iter()
        .find(|(k, v)| k.contains('\0') || holds_nul(v))
    {
        Some((name, _)) => Err(ApiError::unprocessable(format!(
            "{PREFIX}.invalid_{}",
            name.replace('\0', "")
        ))),
        None => Ok(()),
    }
}

/// A Grape `Boolean` parameter: absent → `None`; `true`/`false` (or `1`/`0`); anything else is
/// `code`.
fn boolean(params: &Params, name: &str, code: &str) -> ApiResult<Option<bool>> {
    match params.text(name).as_deref().map(str::trim) {
        None => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(_) => Err(ApiError::unprocessable(code)),
    }
}

/// The user as the admin activity log keeps it, before or after a change.
fn user_record(user: &UserRow) -> Value {
    crate::events::user_record(user, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_read_as_grape_coerces_them() {
        let params = Params::from_query(Some("a=true&b=0&c=yes"));
        assert_eq!(boolean(&params, "a", "x").unwrap(), Some(true));
        assert_eq!(boolean(&params, "b", "x").unwrap(), Some(false));
        assert_eq!(boolean(&params, "z", "x").unwrap(), None);
        assert_eq!(boolean(&params, "c", "bad").unwrap_err().codes, ["bad"]);
    }

    #[test]
    fn a_nul_anywhere_is_refused_by_name() {
        assert!(refuse_nul(&Params::from_query(Some("uid=ID1&key=a%20b"))).is_ok());
        let refused = refuse_nul(&Params::from_query(Some("uid=ID1&title=a%00b"))).unwrap_err();
        assert_eq!(refused.codes, ["admin.user.invalid_title"]);
        let nested = refuse_nul(&Params::from_query(Some("data[x]=%00"))).unwrap_err();
        assert_eq!(nested.codes, ["admin.user.invalid_data"]);
    }
}
