//! The Back Office's JSON shapes, with the seed's camelCase field names.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::services::backoffice::{IssuedToken, TokenPair};

/// A token with its lifetime.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackOfficeToken {
    pub token: String,
    /// RFC 3339, UTC (`2022-01-01T00:00:00+00:00`).
    pub created_at: String,
    pub expires_at: String,
}

/// Where the 2FA code went, and the token that answers it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorDetails {
    pub token: String,
    /// Always `email`.
    pub provider: &'static str,
    pub expires_at: String,
}

/// The answer of a sign-in: a 2FA challenge, or the tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackOfficeSignIn {
    #[serde(rename = "2faRequired")]
    pub two_factor_required: bool,
    #[serde(rename = "2faDetails", skip_serializing_if = "Option::is_none")]
    pub two_factor_details: Option<TwoFactorDetails>,
    #[serde(rename = "accessToken", skip_serializing_if = "Option::is_none")]
    pub access_token: Option<BackOfficeToken>,
    #[serde(rename = "refreshToken", skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<BackOfficeToken>,
}

/// The answer of a 2FA confirmation or a refresh.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackOfficeTokens {
    pub access_token: BackOfficeToken,
    pub refresh_token: BackOfficeToken,
}

/// The seed's time format: RFC 3339 in UTC with a `+00:00` offset.
pub fn timestamp(t: OffsetDateTime) -> String {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .map(|s| s.replacen('Z', "+00:00", 1))
        .unwrap_or_default()
}

impl From<&IssuedToken> for BackOfficeToken {
    fn from(token: &IssuedToken) -> BackOfficeToken {
        BackOfficeToken {
            token: token.token.clone(),
            created_at: timestamp(token.created_at),
            expires_at: timestamp(token.expires_at),
        }
    }
}

impl From<&TokenPair> for BackOfficeTokens {
    fn from(pair: &TokenPair) -> BackOfficeTokens {
        BackOfficeTokens {
            access_token: (&pair.access).into(),
            refresh_token: (&pair.refresh).into(),
        }
    }
}

impl From<&TokenPair> for BackOfficeSignIn {
    fn from(pair: &TokenPair) -> BackOfficeSignIn {
        BackOfficeSignIn {
            two_factor_required: false,
            two_factor_details: None,
            access_token: Some((&pair.access).into()),
            refresh_token: Some((&pair.refresh).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_the_seed_writes_them() {
        let t = OffsetDateTime::from_unix_timestamp(1_640_995_200).unwrap()
            + time::Duration::milliseconds(250);
        assert_eq!(timestamp(t), "2022-01-01T00:00:00+00:00");
    }

    #[test]
    fn a_sign_in_with_2fa_names_its_fields_as_the_seed_does() {
        let answer = BackOfficeSignIn {
            two_factor_required: true,
            two_factor_details: Some(TwoFactorDetails {
                token: "t".into(),
                provider: "email",
                expires_at: "x".into(),
            }),
            access_token: None,
            refresh_token: None,
        };
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            serde_json::json!({"2faRequired": true, "2faDetails": {"token": "t", "provider": "email", "expiresAt": "x"}})
        );
    }
}
