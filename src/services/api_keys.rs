//! API keys of a user or a service account, as operators (`portcullis api-keys create`), the
//! integration tests' support and the resource API (`/resource/api_keys`) manage them: the
//! holder must be active to create or re-activate a key, the secret is shown once and stored
//! sealed.

use crate::crypto::{self, SecretBox};
use crate::domain::state;
use crate::domain::subject::SubjectKind;
use crate::store::api_keys::{self, ApiKeyRow, NewApiKey};
use crate::store::{Db, Store, StoreError, service_accounts, users};

/// The one algorithm keys are created with (Barong's default).
pub const ALGORITHM: &str = "HS256";

/// The states a holder may set on a key. Barong's PATCH stored any string; only `active`
/// authenticates, so the other one is named as the gate names it (`domain::loader::KeyState`).
pub const STATES: &[&str] = &["active", "disabled"];

/// Why no key was created. The messages start with Barong's code where it has one.
#[derive(Debug)]
pub enum ApiKeyError {
    Algorithm,
    NoHolder(String),
    HolderNotActive(String),
    /// A state other than [`STATES`].
    StateUnknown(String),
    /// Re-activating a key of a holder who is not active (Barong's `state.invalid`).
    ReactivationRefused(String),
    Store(StoreError),
}

impl ApiKeyError {
    /// Barong's model-validation codes for the refusal (422), if it is one.
    pub fn codes(&self) -> Option<Vec<&'static str>> {
        match self {
            ApiKeyError::Algorithm => Some(vec!["algorithm.inclusion"]),
            ApiKeyError::HolderNotActive(_) => Some(vec!["key_holder_account.invalid"]),
            ApiKeyError::StateUnknown(_) => Some(vec!["state.inclusion"]),
            ApiKeyError::ReactivationRefused(_) => Some(vec!["state.invalid"]),
            ApiKeyError::NoHolder(_) | ApiKeyError::Store(_) => None,
        }
    }
}

impl std::fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiKeyError::Algorithm => {
                write!(f, "algorithm.inclusion: only {ALGORITHM} is supported")
            }
            ApiKeyError::NoHolder(uid) => write!(f, "no user or service account with uid {uid}"),
            ApiKeyError::HolderNotActive(state) => write!(
                f,
                "key_holder_account.invalid: the holder is {state}, not active"
            ),
            ApiKeyError::StateUnknown(state) => write!(
                f,
                "state.inclusion: {state:?} is not one of {}",
                STATES.join(", ")
            ),
            ApiKeyError::ReactivationRefused(state) => write!(
                f,
                "state.invalid: the holder is {state}, a key cannot be re-activated"
            ),
            ApiKeyError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for ApiKeyError {}

impl From<StoreError> for ApiKeyError {
    fn from(err: StoreError) -> ApiKeyError {
        ApiKeyError::Store(err)
    }
}

/// A created key: the secret is returned here and nowhere else.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub kid: String,
    pub secret: String,
    pub algorithm: &'static str,
    /// The stored row (scope, state and timestamps as written).
    pub row: ApiKeyRow,
}

/// Creates a key for the active user or service account `uid`. `algorithm` is matched
/// without regard to case; `scope` is a comma-separated list (blanks ignored).
pub async fn create(
    store: &Store,
    secrets: &SecretBox,
    uid: &str,
    algorithm: &str,
    scope: &str,
) -> Result<CreatedKey, ApiKeyError> {
    if !algorithm.eq_ignore_ascii_case(ALGORITHM) {
        return Err(ApiKeyError::Algorithm);
    }
    let client = store.client().await?;
    let (kind, holder_id, holder_state) = match users::find_by_uid(&client, uid).await? {
        Some(user) => (SubjectKind::User, user.id, user.state),
        None => match service_accounts::subject_by_uid(&client, uid).await? {
            Some(sa) => (SubjectKind::ServiceAccount, sa.id, sa.state),
            None => return Err(ApiKeyError::NoHolder(uid.to_string())),
        },
    };
    if holder_state != state::ACTIVE {
        return Err(ApiKeyError::HolderNotActive(holder_state));
    }
    let kid = crypto::random_hex::<8>();
    let secret = crypto::random_hex::<16>();
    let row = api_keys::insert(
        &client,
        &NewApiKey {
            holder_kind: kind,
            holder_id,
            kid: &kid,
            algorithm: ALGORITHM,
            scope: &parse_scope(scope),
            secret_encrypted: &secrets.seal(&api_keys::secret_context(&kid), secret.as_bytes()),
        },
    )
    .await?;
    Ok(CreatedKey {
        kid,
        secret,
        algorithm: ALGORITHM,
        row,
    })
}

/// What a holder changes on one of their keys; `None` keeps the stored value.
pub struct KeyChange<'a> {
    /// A comma-separated list, as at creation.
    pub scope: Option<&'a str>,
    pub state: Option<&'a str>,
}

/// Changes `key` (already found among its holder's keys) whose holder is in `holder_state`.
/// Re-activating is refused unless the holder is active: keys are deactivated when their
/// holder leaves `active` or turns 2FA off, and must not come back behind that.
pub async fn update<C: Db>(
    c: &C,
    key: &ApiKeyRow,
    holder_state: &str,
    change: &KeyChange<'_>,
) -> Result<ApiKeyRow, ApiKeyError> {
    if let Some(wanted) = change.state {
        if !STATES.contains(&wanted) {
            return Err(ApiKeyError::StateUnknown(wanted.to_string()));
        }
        if wanted == state::ACTIVE && holder_state != state::ACTIVE {
            return Err(ApiKeyError::ReactivationRefused(holder_state.to_string()));
        }
    }
    let scope = change.scope.map(parse_scope);
    Ok(api_keys::update(c, key.id, scope.as_deref(), change.state).await?)
}

/// `a, b,,c` → `[a, b, c]`.
fn parse_scope(scope: &str) -> Vec<String> {
    scope
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_trimmed_and_blanks_dropped() {
        assert_eq!(parse_scope(" trade, read ,,"), vec!["trade", "read"]);
        assert!(parse_scope("").is_empty());
    }

    #[test]
    fn errors_lead_with_barongs_codes() {
        assert!(
            ApiKeyError::Algorithm
                .to_string()
                .starts_with("algorithm.inclusion")
        );
        assert!(
            ApiKeyError::HolderNotActive("banned".into())
                .to_string()
                .starts_with("key_holder_account.invalid")
        );
    }

    #[test]
    fn refusals_carry_barongs_model_codes_and_failures_none() {
        let codes = |err: ApiKeyError| err.codes();
        assert_eq!(
            codes(ApiKeyError::Algorithm),
            Some(vec!["algorithm.inclusion"])
        );
        assert_eq!(
            codes(ApiKeyError::HolderNotActive("pending".into())),
            Some(vec!["key_holder_account.invalid"])
        );
        assert_eq!(
            codes(ApiKeyError::StateUnknown("revoked".into())),
            Some(vec!["state.inclusion"])
        );
        assert_eq!(
            codes(ApiKeyError::ReactivationRefused("banned".into())),
            Some(vec!["state.invalid"])
        );
        assert_eq!(codes(ApiKeyError::NoHolder("ID1".into())), None);
        assert_eq!(
            codes(ApiKeyError::Store(StoreError::Other("x".into()))),
            None
        );
    }
}
