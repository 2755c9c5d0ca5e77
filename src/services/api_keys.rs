//! API key creation for a user or a service account (`portcullis api-keys create`, and the
//! integration tests' support, which must create keys the way operators do): the holder must
//! be active, the secret is shown once and stored sealed.

use crate::crypto::{self, SecretBox};
use crate::domain::state;
use crate::domain::subject::SubjectKind;
use crate::store::api_keys::{self, NewApiKey};
use crate::store::{Store, StoreError, service_accounts, users};

/// The one algorithm keys are created with (Barong's default).
pub const ALGORITHM: &str = "HS256";

/// Why no key was created. The messages start with Barong's code where it has one.
#[derive(Debug)]
pub enum ApiKeyError {
    Algorithm,
    NoHolder(String),
    HolderNotActive(String),
    Store(StoreError),
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
    api_keys::insert(
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
    })
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
}
