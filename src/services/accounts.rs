//! Account creation: the one use case behind signup (`POST /identity/users`), the first Auth0
//! login and `portcullis users create`. It owns the checks of a new account (one list of
//! Barong's codes), the mapping of the database's unique constraints to `email.taken` and
//! `username.taken`, and the `model.user.created` event, written in the transaction that
//! inserts the row.
//!
//! What differs between the callers stays with them: signup's captcha, rate limit, referrer,
//! activity and confirmation email; Auth0's identity binding; the operator's role, state and
//! level labels.

use fancy_regex::Regex;

use crate::authn::passwords::Hasher;
use crate::config::Settings;
use crate::domain::email::Email;
use crate::domain::user_state::UserState;
use crate::domain::{self, password_policy, validation};
use crate::events::Events;
use crate::store::users::{self, NewUser, UserRow};
use crate::store::{self, Db, Store, StoreError};

/// The code of an email another account holds.
pub const EMAIL_TAKEN: &str = "email.taken";
/// The code of a username another account holds.
pub const USERNAME_TAKEN: &str = "username.taken";

/// Why an account was not created.
#[derive(Debug)]
pub enum AccountError {
    /// The application fails checks: Barong's codes (`<attr>.<error>`), every one that applies.
    Refused(Vec<String>),
    /// Another account took the email or username first ([`EMAIL_TAKEN`] or
    /// [`USERNAME_TAKEN`]): a concurrent creation won the race the checks cannot close.
    Taken(&'static str),
    Store(StoreError),
}

impl std::fmt::Display for AccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AccountError::Refused(codes) => f.write_str(&codes.join(", ")),
            AccountError::Taken(code) => f.write_str(code),
            AccountError::Store(err) => write!(f, "{err}"),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<StoreError> for AccountError {
    fn from(err: StoreError) -> AccountError {
        AccountError::Store(err)
    }
}

/// The password policy (`password.*` settings, the regexp compiled).
#[derive(Debug, Clone, Copy)]
pub struct PasswordRules<'a> {
    pub regexp: &'a Regex,
    pub min_entropy: f64,
    pub use_dictionary: bool,
}

/// What a caller asks for, before any check.
#[derive(Debug, Clone, Copy)]
pub struct Application<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub username: Option<&'a str>,
    /// Free JSON the account keeps (signup's `data`), at most 1024 characters.
    pub data: Option<&'a str>,
    /// Must be a role some permission row names.
    pub role: &'a str,
}

/// An account to insert: checked values, the password already hashed.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    pub email: &'a Email,
    pub password_digest: &'a str,
    /// Lower-cased (usernames are unique regardless of case).
    pub username: Option<&'a str>,
    pub data: Option<&'a str>,
    pub role: &'a str,
    pub state: UserState,
    pub level: i32,
    pub referral_id: Option<i64>,
}

/// What an operator asks for (`portcullis users create`): any role, state and level.
#[derive(Debug, Clone, Copy)]
pub struct OperatorAccount<'a> {
    pub application: Application<'a>,
    pub state: UserState,
    /// The account also gets the private labels of levels 1..=level.
    pub level: i32,
}

/// The pieces account creation uses, borrowed from whoever owns them (the running node, or
/// the CLI for one command).
pub struct Accounts<'a> {
    pub hasher: &'a Hasher,
    pub events: &'a Events,
    pub password: PasswordRules<'a>,
    pub uid_prefix: &'a str,
}

impl Accounts<'_> {
    /// The checks of a new account, every code collected in Barong's order (email, password,
    /// username, data, role); the parsed email when all pass. The `taken` checks read what is
    /// committed; [`Accounts::insert`] catches what a concurrent creation commits after them.
    pub async fn check<C: Db>(
        &self,
        c: &C,
        application: &Application<'_>,
    ) -> Result<Email, AccountError> {
        let mut codes: Vec<String> = Vec::new();
        let email = match Email::parse(application.email) {
            Ok(email) => {
                if users::find_by_email(c, email.as_str()).await?.is_some() {
                    codes.push(EMAIL_TAKEN.into());
                }
                Some(email)
            }
            Err(code) => {
                codes.push(code.into());
                None
            }
        };
        let rules = &self.password;
        if let Err(code) = password_policy::check(
            application.password,
            rules.regexp,
            rules.min_entropy,
            rules.use_dictionary,
        ) {
            codes.push(code.into());
        }
        if let Some(username) = application.username {
            let errors = validation::username_errors(username);
            codes.extend(errors.iter().map(|e| e.to_string()));
            if errors.is_empty() && users::username_taken(c, &username.to_lowercase()).await? {
                codes.push(USERNAME_TAKEN.into());
            }
        }
        if let Some(data) = application.data {
            codes.extend(data_error(data).map(String::from));
        }
        if !store::permissions::role_exists(c, application.role).await? {
            codes.push("role.doesnt_exist".into());
        }
        match email {
            Some(email) if codes.is_empty() => Ok(email),
            _ => Err(AccountError::Refused(codes)),
        }
    }

    /// The password's digest (on the blocking pool, bounded by the hasher).
    pub async fn digest(&self, password: &str) -> String {
        self.hasher.hash(password).await
    }

    /// Inserts the account with a new uid and writes `model.user.created`, both in the
    /// caller's transaction `c`, so that no account exists unannounced. A unique constraint
    /// that refuses the row becomes [`AccountError::Taken`].
    pub async fn insert<C: Db>(
        &self,
        c: &C,
        account: &NewAccount<'_>,
    ) -> Result<UserRow, AccountError> {
        let uid = domain::new_uid(self.uid_prefix);
        let new = NewUser {
            uid: &uid,
            username: account.username,
            email: account.email.as_str(),
            password_digest: account.password_digest,
            role: account.role,
            data: account.data,
            level: account.level,
            state: account.state.as_str(),
            referral_id: account.referral_id,
        };
        let user = users::insert(c, &new).await.map_err(taken)?;
        self.events.user_created(c, &user).await?;
        Ok(user)
    }

    /// An operator's account: checked like a signup, inserted with the labels of its level,
    /// announced, committed.
    pub async fn create_for_operator(
        &self,
        store: &Store,
        request: &OperatorAccount<'_>,
    ) -> Result<UserRow, AccountError> {
        let mut client = store.client().await?;
        let application = &request.application;
        let email = self.check(&client, application).await?;
        let digest = self.digest(application.password).await;
        let username = application.username.map(str::to_lowercase);
        let tx = client.transaction().await.map_err(StoreError::from)?;
        let account = NewAccount {
            email: &email,
            password_digest: &digest,
            username: username.as_deref(),
            data: application.data,
            role: application.role,
            state: request.state,
            level: request.level,
            referral_id: None,
        };
        let user = self.insert(&tx, &account).await?;
        // The labels match the level given, as if the account had climbed there; they do not
        // change the row, so the event written above stays true.
        for (key, value) in store::levels::up_to(&tx, request.level).await? {
            users::upsert_label(&tx, user.id, &key, &value, domain::labels::PRIVATE).await?;
        }
        tx.commit().await.map_err(StoreError::from)?;
        Ok(user)
    }
}

/// Creates an operator's account with `settings`, outside a running node (the CLI and the
/// integration tests' support, which must create accounts the way operators do).
pub async fn create_with_settings(
    store: &Store,
    settings: &Settings,
    request: &OperatorAccount<'_>,
) -> anyhow::Result<UserRow> {
    let regexp = settings.password.regexp.regex();
    let hasher = Hasher::new(1);
    let events = Events::new(settings);
    let accounts = Accounts {
        hasher: &hasher,
        events: &events,
        password: PasswordRules {
            regexp,
            min_entropy: settings.password.min_entropy,
            use_dictionary: settings.password.use_dictionary,
        },
        uid_prefix: &settings.users.uid_prefix,
    };
    Ok(accounts.create_for_operator(store, request).await?)
}

/// The one mapping of the unique constraints of `users` to Barong's codes.
fn taken(err: StoreError) -> AccountError {
    match err {
        StoreError::Conflict(c) if c.contains("email") => AccountError::Taken(EMAIL_TAKEN),
        StoreError::Conflict(c) if c.contains("username") => AccountError::Taken(USERNAME_TAKEN),
        other => AccountError::Store(other),
    }
}

/// The code of signup's `data` when it is not JSON of at most 1024 characters.
fn data_error(data: &str) -> Option<&'static str> {
    if data.chars().count() > 1024 {
        Some("data.too_long")
    } else if serde_json::from_str::<serde_json::Value>(data).is_err() {
        Some("data.invalid_format")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_must_be_json_of_at_most_1024_characters() {
        assert_eq!(data_error(r#"{"language":"en"}"#), None);
        assert_eq!(data_error("not json"), Some("data.invalid_format"));
        let long = format!("\"{}\"", "é".repeat(1023));
        assert_eq!(data_error(&long), Some("data.too_long"));
        let fits = format!("\"{}\"", "é".repeat(1022));
        assert_eq!(data_error(&fits), None);
    }

    #[test]
    fn unique_constraints_map_to_barongs_codes() {
        for (constraint, code) in [
            ("users_email_lower", EMAIL_TAKEN),
            ("users_username", USERNAME_TAKEN),
        ] {
            match taken(StoreError::Conflict(constraint.into())) {
                AccountError::Taken(found) => assert_eq!(found, code),
                other => panic!("{constraint}: {other:?}"),
            }
        }
        assert!(matches!(
            taken(StoreError::Conflict("users_uid_key".into())),
            AccountError::Store(StoreError::Conflict(_))
        ));
    }
}
