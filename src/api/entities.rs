//! The JSON shapes the API returns (Barong's Grape entities), with Barong's key order.

use serde::Serialize;
use utoipa::ToSchema;

use crate::crypto::SecretBox;
use crate::domain::time::iso;
use crate::store::api_keys::ApiKeyRow;
use crate::store::users::{self, DataStorageRow, LabelRow, PhoneRow, ProfileRow, UserRow};
use crate::store::{Db, StoreError};

/// The answer `status` with the entity `body` as JSON. In debug builds (every test) the
/// response names the entity, and the router checks the route documents that entity for that
/// status (`routes::Doc::documents_entity`), so the OpenAPI document cannot miss a shape a
/// handler returns.
pub fn entity<T: Serialize + ToSchema>(
    status: http::StatusCode,
    body: T,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = (status, axum::Json(body)).into_response();
    if cfg!(debug_assertions) {
        response
            .extensions_mut()
            .insert(crate::routes::ReturnedEntity(T::name()));
    }
    response
}

/// Sealing contexts of personal data (kept in `domain::profile`, which the KYC worker reads too).
pub use crate::domain::profile::contexts;

/// `API_V2_Entities_Document`. `upload` is the path of our own route that serves the file to
/// its owner (`GET <mount>/resource/documents/{id}/upload`), never the storage's address.
#[derive(Debug, Serialize, ToSchema)]
pub struct Document {
    pub upload: String,
    pub doc_type: String,
    /// Masked (first 2 and last 2 characters kept) where the owner reads it.
    pub doc_number: Option<String>,
    /// `YYYY-MM-DD`.
    pub doc_expire: Option<String>,
    pub metadata: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl Document {
    /// The path the file of document `id` is served at, under the API's `mount`.
    pub fn upload_path(mount: &str, id: i64) -> String {
        format!(
            "{}/resource/documents/{id}/upload",
            mount.trim_end_matches('/')
        )
    }

    pub fn from_row(
        row: &crate::store::documents::DocumentRow,
        secrets: &SecretBox,
        mount: &str,
        masked: bool,
    ) -> Document {
        let number = row
            .doc_number_encrypted
            .as_deref()
            .and_then(|sealed| secrets.open_string(contexts::DOC_NUMBER, sealed).ok());
        Document {
            upload: Document::upload_path(mount, row.id),
            doc_type: row.doc_type.clone(),
            doc_number: if masked {
                number.map(|n| crate::domain::documents::mask_doc_number(&n))
            } else {
                number
            },
            doc_expire: row.doc_expire.map(|d| d.to_string()),
            metadata: row.metadata.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Label {
    pub key: String,
    pub value: String,
    pub scope: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&LabelRow> for Label {
    fn from(row: &LabelRow) -> Label {
        Label {
            key: row.key.clone(),
            value: row.value.clone(),
            scope: row.scope.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// `API_V2_Entities_Phone`: a number of the user's, masked (country code and last 4 digits).
#[derive(Debug, Serialize, ToSchema)]
pub struct Phone {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `380*****4567`.
    pub number: String,
    /// With milliseconds (`2020-06-01T07:03:18.000Z`), as Barong renders it; null until verified.
    pub validated_at: Option<String>,
}

impl Phone {
    pub fn from_row(row: &PhoneRow, secrets: &SecretBox) -> Phone {
        let number = secrets
            .open_string(contexts::PHONE_NUMBER, &row.number_encrypted)
            .unwrap_or_default();
        Phone {
            country: row.country.clone(),
            number: crate::domain::phones::mask_stored(&number),
            validated_at: row.validated_at.map(crate::domain::time::iso_millis),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub state: String,
    pub metadata: Option<serde_json::Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl Profile {
    /// `masked`: last name keeps its first character, date of birth its year and month.
    pub fn from_row(row: &ProfileRow, secrets: &SecretBox, masked: bool) -> Profile {
        let open = |context: &str, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| secrets.open_string(context, v).ok())
        };
        let mut last_name = open(contexts::LAST_NAME, &row.last_name_encrypted);
        let mut dob = open(contexts::DOB, &row.dob_encrypted);
        if masked {
            last_name = last_name.map(|n| {
                let mut chars = n.chars();
                let first: String = chars.next().into_iter().collect();
                first + &"*".repeat(chars.count())
            });
            dob = dob.map(|d| format!("{}**", d.chars().take(8).collect::<String>()));
        }
        Profile {
            first_name: open(contexts::FIRST_NAME, &row.first_name_encrypted),
            last_name,
            dob,
            address: open(contexts::ADDRESS, &row.address_encrypted),
            postcode: row.postcode.clone(),
            city: row.city.clone(),
            country: row.country.clone(),
            state: row.state.clone(),
            metadata: row
                .metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DataStorage {
    pub title: String,
    pub data: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&DataStorageRow> for DataStorage {
    fn from(row: &DataStorageRow) -> DataStorage {
        DataStorage {
            title: row.title.clone(),
            data: row.data.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// `API_V2_Admin_Entities_User`: an account as staff lists see it, without its KYC data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub email: String,
    pub uid: String,
    pub role: String,
    pub level: i32,
    pub otp: bool,
    pub state: String,
    pub referral_uid: Option<String>,
    pub data: Option<String>,
}

impl User {
    pub fn new(row: &UserRow, referral_uid: Option<String>) -> User {
        User {
            email: row.email.clone(),
            uid: row.uid.clone(),
            role: row.role.clone(),
            level: row.level,
            otp: row.otp,
            state: row.state.clone(),
            referral_uid,
            data: row.data.clone(),
        }
    }

    /// The entities of `rows`, each with its referrer's uid, in two queries whatever the
    /// count.
    pub async fn many<C: Db>(c: &C, rows: &[UserRow]) -> Result<Vec<User>, StoreError> {
        let referral_ids: Vec<i64> = rows.iter().filter_map(|r| r.referral_id).collect();
        let referrers = users::find_many(c, &referral_ids, &[]).await?;
        Ok(rows
            .iter()
            .map(|row| {
                let referral_uid = row
                    .referral_id
                    .and_then(|id| referrers.iter().find(|r| r.id == id).map(|r| r.uid.clone()));
                User::new(row, referral_uid)
            })
            .collect())
    }
}

/// `API_V2_Entities_UserWithFullInfo`; `csrf_token` only right after a session opens.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWithFullInfo {
    pub email: String,
    pub uid: String,
    pub role: String,
    pub level: i32,
    pub otp: bool,
    pub state: String,
    pub referral_uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    pub data: Option<String>,
    pub labels: Vec<Label>,
    pub phones: Vec<Phone>,
    pub profiles: Vec<Profile>,
    pub data_storages: Vec<DataStorage>,
    pub created_at: String,
    pub updated_at: String,
    pub username: Option<String>,
}

impl UserWithFullInfo {
    pub async fn load<C: Db>(
        c: &C,
        secrets: &SecretBox,
        user: &UserRow,
        csrf_token: Option<String>,
    ) -> Result<UserWithFullInfo, StoreError> {
        let referral_uid = match user.referral_id {
            Some(id) => users::uid_by_id(c, id).await?,
            None => None,
        };
        let labels = users::labels(c, user.id).await?;
        let phones = users::phones(c, user.id).await?;
        let profiles = users::profiles(c, user.id).await?;
        let storages = users::data_storages(c, user.id).await?;
        Ok(UserWithFullInfo {
            email: user.email.clone(),
            uid: user.uid.clone(),
            role: user.role.clone(),
            level: user.level,
            otp: user.otp,
            state: user.state.clone(),
            referral_uid,
            csrf_token,
            data: user.data.clone(),
            labels: labels.iter().map(Label::from).collect(),
            phones: phones.iter().map(|p| Phone::from_row(p, secrets)).collect(),
            profiles: profiles
                .iter()
                .map(|p| Profile::from_row(p, secrets, true))
                .collect(),
            data_storages: storages.iter().map(DataStorage::from).collect(),
            created_at: iso(user.created_at),
            updated_at: iso(user.updated_at),
            username: user.username.clone(),
        })
    }
}

/// `API_V2_Entities_Activity`: one entry of the user's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct Activity {
    pub id: i64,
    pub user_ip: String,
    pub user_ip_country: Option<String>,
    pub user_agent: String,
    pub topic: String,
    pub action: String,
    pub result: String,
    pub data: Option<String>,
    pub created_at: String,
}

impl From<&crate::store::activities::ActivityRow> for Activity {
    fn from(row: &crate::store::activities::ActivityRow) -> Activity {
        Activity {
            id: row.id,
            user_ip: row.user_ip.clone(),
            user_ip_country: row.user_ip_country.clone(),
            user_agent: row.user_agent.clone(),
            topic: row.topic.clone(),
            action: row.action.clone(),
            result: row.result.clone(),
            data: row.data.clone(),
            created_at: iso(row.created_at),
        }
    }
}

/// A service account, as its owner lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceAccount {
    pub uid: String,
    pub email: String,
    pub role: String,
    pub level: i32,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&crate::store::service_accounts::ServiceAccountRow> for ServiceAccount {
    fn from(row: &crate::store::service_accounts::ServiceAccountRow) -> ServiceAccount {
        ServiceAccount {
            uid: row.uid.clone(),
            email: row.email.clone(),
            role: row.role.clone(),
            level: row.level,
            state: row.state.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// `API_V2_Entities_APIKey` without its secret: what lists and updates answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub kid: String,
    pub algorithm: String,
    pub scope: Vec<String>,
    pub state: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&ApiKeyRow> for ApiKey {
    fn from(row: &ApiKeyRow) -> ApiKey {
        ApiKey {
            kid: row.kid.clone(),
            algorithm: row.algorithm.clone(),
            scope: row.scope.clone(),
            state: row.state.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// `API_V2_Entities_APIKey` with the secret in clear: the answer to its creation, the only
/// time the secret is shown (it is stored sealed and never read back by the API).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyWithSecret {
    pub kid: String,
    pub algorithm: String,
    pub scope: Vec<String>,
    pub state: String,
    pub secret: String,
    pub created_at: String,
    pub updated_at: String,
}

impl ApiKeyWithSecret {
    pub fn new(row: &ApiKeyRow, secret: String) -> ApiKeyWithSecret {
        let ApiKey {
            kid,
            algorithm,
            scope,
            state,
            created_at,
            updated_at,
        } = ApiKey::from(row);
        ApiKeyWithSecret {
            kid,
            algorithm,
            scope,
            state,
            secret,
            created_at,
            updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_masks() {
        assert_eq!(
            iso(time::macros::datetime!(2020-06-01 07:01:20.123 UTC)),
            "2020-06-01T07:01:20Z"
        );
        assert_eq!(
            crate::domain::phones::mask_stored("380501234567"),
            "380*****4567"
        );
    }
}
