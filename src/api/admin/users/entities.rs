//! The shapes `/admin/users` answers with (Barong's admin entities) beyond the plain
//! `api::entities::User`: the user with its profiles, and the user with everything KYC review
//! needs (`UserWithKYC`). Staff see personal data unmasked; the resource API's entities are
//! reused where the shape is the same.

use serde::Serialize;
use utoipa::ToSchema;

use crate::api::entities::{DataStorage, Document, Phone, Profile, User, contexts};
use crate::crypto::SecretBox;
use crate::domain::time::iso;
use crate::store::users::{self, LabelRow, UserRow};
use crate::store::{Db, StoreError, comments, documents};

/// The user entity of one row, its referrer's uid looked up.
pub async fn user<C: Db>(c: &C, row: &UserRow) -> Result<User, StoreError> {
    let mut one = User::many(c, std::slice::from_ref(row)).await?;
    Ok(one.remove(0))
}

/// `API_V2_Admin_Entities_UserWithProfile`: the `extended` list entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWithProfile {
    #[serde(flatten)]
    pub user: User,
    pub profiles: Vec<Profile>,
    pub created_at: String,
    pub updated_at: String,
}

impl UserWithProfile {
    pub async fn load<C: Db>(
        c: &C,
        secrets: &SecretBox,
        row: &UserRow,
        user: User,
    ) -> Result<UserWithProfile, StoreError> {
        let profiles = users::profiles(c, row.id).await?;
        Ok(UserWithProfile {
            user,
            profiles: profiles
                .iter()
                .map(|p| Profile::from_row(p, secrets, false))
                .collect(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        })
    }
}

/// `API_V2_Admin_Entities_AdminLabelView`: a label with its description.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminLabelView {
    pub key: String,
    pub value: String,
    pub scope: String,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&LabelRow> for AdminLabelView {
    fn from(row: &LabelRow) -> AdminLabelView {
        AdminLabelView {
            key: row.key.clone(),
            value: row.value.clone(),
            scope: row.scope.clone(),
            description: row.description.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// `API_V2_Admin_Entities_Comment`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Comment {
    pub id: i64,
    pub author_uid: String,
    pub title: String,
    pub data: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&comments::CommentRow> for Comment {
    fn from(row: &comments::CommentRow) -> Comment {
        Comment {
            id: row.id,
            author_uid: row.author_uid.clone(),
            title: row.title.clone(),
            data: row.data.clone(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        }
    }
}

/// `API_V2_Admin_Entities_UserWithKYC`: what a reviewer reads of one user, unmasked.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserWithKYC {
    #[serde(flatten)]
    pub user: User,
    pub profiles: Vec<Profile>,
    pub labels: Vec<AdminLabelView>,
    pub phones: Vec<Phone>,
    pub documents: Vec<Document>,
    pub data_storages: Vec<DataStorage>,
    pub comments: Vec<Comment>,
    pub created_at: String,
    pub updated_at: String,
}

impl UserWithKYC {
    pub async fn load<C: Db>(
        c: &C,
        secrets: &SecretBox,
        mount: &str,
        row: &UserRow,
    ) -> Result<UserWithKYC, StoreError> {
        let user = user(c, row).await?;
        let profiles = users::profiles(c, row.id).await?;
        let labels = users::labels(c, row.id).await?;
        let phones = users::phones(c, row.id).await?;
        let documents = documents::of_user(c, row.id).await?;
        let storages = users::data_storages(c, row.id).await?;
        let comments = comments::of_user(c, row.id).await?;
        Ok(UserWithKYC {
            user,
            profiles: profiles
                .iter()
                .map(|p| Profile::from_row(p, secrets, false))
                .collect(),
            labels: labels.iter().map(AdminLabelView::from).collect(),
            phones: phones
                .iter()
                .map(|p| Phone {
                    country: p.country.clone(),
                    number: secrets
                        .open_string(contexts::PHONE_NUMBER, &p.number_encrypted)
                        .unwrap_or_default(),
                    validated_at: p.validated_at.map(crate::domain::time::iso_millis),
                })
                .collect(),
            documents: documents
                .iter()
                .map(|d| Document {
                    // Reviewers fetch the file through the admin API, not the owner's route.
                    upload: super::documents::upload_path(mount, d.id),
                    ..Document::from_row(d, secrets, mount, false)
                })
                .collect(),
            data_storages: storages.iter().map(DataStorage::from).collect(),
            comments: comments.iter().map(Comment::from).collect(),
            created_at: iso(row.created_at),
            updated_at: iso(row.updated_at),
        })
    }
}
