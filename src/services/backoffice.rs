//! The Back Office token lifecycle (seed 003): who may sign in, and the token families a
//! sign-in opens, refreshes and ends.
//!
//! A sign-in opens a *family*: an access token (a short RS256 JWT naming the family in `sid`)
//! and an opaque refresh token. The family is live in Redis ([`Families`]) for the gate and
//! the admin API, and its refresh tokens are rows in Postgres, by keyed digest. A refresh
//! spends its token and issues the next one of the same family; a spent token presented again
//! means two parties hold the family (one stole it), so the whole family is revoked in both
//! stores. Signing out revokes it too.
//!
//! Redis is written before the Postgres transaction commits: if Redis fails the refresh
//! fails whole (the presented token stays unspent and can be retried), never half.

use std::sync::Arc;

use time::{Duration as TimeDuration, OffsetDateTime};

use crate::authn::backoffice::{Families, new_family_id};
use crate::config;
use crate::crypto::SecretBox;
use crate::domain::state;
use crate::jwt::Issuer;
use crate::kv::KvError;
use crate::store::users::{self, UserRow};
use crate::store::{Db, Store, StoreError, admin_abilities, backoffice_tokens};

/// The blind-index context of refresh tokens.
const REFRESH_CONTEXT: &str = "backoffice-refresh";

/// Days an expired refresh token is kept (a late reuse of it is still recognised as one).
const KEEP_EXPIRED_DAYS: i32 = 7;

/// One issued token, as the seed shows it.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// What a sign-in, a 2FA confirmation or a refresh answers with.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access: IssuedToken,
    pub refresh: IssuedToken,
    /// The family both belong to.
    pub family: String,
}

/// Why a refresh was refused.
#[derive(Debug)]
pub enum RefreshRefusal {
    /// Unknown, expired or revoked: nothing to do.
    Invalid,
    /// A spent token presented again: the family is now revoked everywhere.
    Reused {
        user_id: i64,
        family: String,
    },
    /// The user may no longer hold Back Office tokens (banned, locked, no longer staff):
    /// the family is now revoked.
    NotAllowed {
        user_id: i64,
    },
    Store(StoreError),
    Kv(KvError),
}

impl From<StoreError> for RefreshRefusal {
    fn from(err: StoreError) -> RefreshRefusal {
        RefreshRefusal::Store(err)
    }
}

impl From<KvError> for RefreshRefusal {
    fn from(err: KvError) -> RefreshRefusal {
        RefreshRefusal::Kv(err)
    }
}

/// A store failure while issuing or ending a family.
#[derive(Debug)]
pub enum TokenError {
    Store(StoreError),
    Kv(KvError),
}

impl From<StoreError> for TokenError {
    fn from(err: StoreError) -> TokenError {
        TokenError::Store(err)
    }
}

impl From<KvError> for TokenError {
    fn from(err: KvError) -> TokenError {
        TokenError::Kv(err)
    }
}

/// The Back Office's token service.
#[derive(Clone)]
pub struct BackOfficeTokens {
    pub store: Store,
    pub families: Families,
    pub issuer: Arc<Issuer>,
    pub secrets: Arc<SecretBox>,
    pub settings: config::BackOffice,
}

impl BackOfficeTokens {
    /// Whether `user` may hold Back Office tokens: an active account of a staff role
    /// (`backoffice.roles`, or, when that is empty, any role with admin abilities).
    pub async fn may_sign_in<C: Db>(&self, c: &C, user: &UserRow) -> Result<bool, StoreError> {
        if user.state != state::ACTIVE {
            return Ok(false);
        }
        if !self.settings.roles.is_empty() {
            return Ok(self.settings.roles.contains(&user.role));
        }
        let abilities = admin_abilities::for_role(c, &user.role).await?;
        Ok(!(abilities.read.is_empty() && abilities.manage.is_empty()))
    }

    /// Opens a family for `user` (who passed every sign-in check): its first tokens.
    pub async fn open_family(&self, user: &UserRow) -> Result<TokenPair, TokenError> {
        let family = new_family_id();
        let client = self.store.client().await?;
        // Cleanup rides on sign-ins (rare, staff only) rather than on a timer of its own.
        if let Err(err) = backoffice_tokens::purge_expired(&client, KEEP_EXPIRED_DAYS).await {
            tracing::warn!(error = %err, "expired back office refresh tokens not purged");
        }
        self.families
            .keep(&family, &user.uid, self.settings.refresh_ttl.as_secs())
            .await?;
        let refresh = self.new_refresh(&client, &family, user.id).await?;
        Ok(self.pair(user, family, refresh))
    }

    /// Exchanges a refresh token for the family's next pair. `NotAllowed` and `Reused`
    /// revoke the family before they return.
    pub async fn refresh(&self, presented: &str) -> Result<(UserRow, TokenPair), RefreshRefusal> {
        let digest = self.digest(presented);
        let mut client = self.store.client().await?;
        let tx = client.transaction().await.map_err(StoreError::from)?;
        let Some(row) = backoffice_tokens::find_for_update(&tx, &digest).await? else {
            return Err(RefreshRefusal::Invalid);
        };
        if row.revoked_at.is_some() || row.expires_at <= OffsetDateTime::now_utc() {
            return Err(RefreshRefusal::Invalid);
        }
        if row.used_at.is_some() {
            self.revoke_in(tx, &row.family).await?;
            return Err(RefreshRefusal::Reused {
                user_id: row.user_id,
                family: row.family,
            });
        }
        let user = match users::find_by_id(&tx, row.user_id).await? {
            Some(user) if self.may_sign_in(&tx, &user).await? => user,
            _ => {
                self.revoke_in(tx, &row.family).await?;
                return Err(RefreshRefusal::NotAllowed {
                    user_id: row.user_id,
                });
            }
        };
        backoffice_tokens::mark_used(&tx, row.id).await?;
        let refresh = self.new_refresh(&tx, &row.family, user.id).await?;
        // Before the commit: a Redis failure leaves the presented token unspent.
        self.families
            .keep(&row.family, &user.uid, self.settings.refresh_ttl.as_secs())
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        let pair = self.pair(&user, row.family, refresh);
        Ok((user, pair))
    }

    /// Ends `family` in both stores: its access tokens are refused from the next request on,
    /// its refresh tokens at once.
    pub async fn end_family(&self, family: &str) -> Result<(), TokenError> {
        let client = self.store.client().await?;
        backoffice_tokens::revoke_family(&client, family).await?;
        self.families.revoke(family).await?;
        Ok(())
    }

    /// Revokes `family` in `tx` and commits, then in Redis.
    async fn revoke_in(
        &self,
        tx: crate::store::Transaction<'_>,
        family: &str,
    ) -> Result<(), RefreshRefusal> {
        backoffice_tokens::revoke_family(&tx, family).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.families.revoke(family).await?;
        Ok(())
    }

    /// Stores and returns a new refresh token of `family`.
    async fn new_refresh<C: Db>(
        &self,
        c: &C,
        family: &str,
        user_id: i64,
    ) -> Result<IssuedToken, StoreError> {
        let token = crate::crypto::random_token::<32>();
        let expires_at = OffsetDateTime::now_utc() + ttl(self.settings.refresh_ttl);
        let created_at =
            backoffice_tokens::insert(c, &self.digest(&token), family, user_id, expires_at).await?;
        Ok(IssuedToken {
            token,
            created_at,
            expires_at,
        })
    }

    /// The pair of a new access token for `user` and the given refresh token.
    fn pair(&self, user: &UserRow, family: String, refresh: IssuedToken) -> TokenPair {
        let now = OffsetDateTime::now_utc();
        let (token, exp) = self.issuer.mint_access(
            &user.subject(),
            &family,
            self.settings.access_ttl.as_secs() as i64,
            now.unix_timestamp(),
        );
        let access = IssuedToken {
            token,
            created_at: now,
            expires_at: OffsetDateTime::from_unix_timestamp(exp).unwrap_or(now),
        };
        TokenPair {
            access,
            refresh,
            family,
        }
    }

    fn digest(&self, token: &str) -> String {
        self.secrets.blind_index(REFRESH_CONTEXT, token.as_bytes())
    }
}

fn ttl(duration: std::time::Duration) -> TimeDuration {
    TimeDuration::seconds(duration.as_secs() as i64)
}
