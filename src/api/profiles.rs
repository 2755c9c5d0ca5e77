//! A KYC profile as the API writes it, for its user (`/resource/profiles`) or for staff
//! (`/admin/profiles`): the fields checked and sealed at rest, and what follows every write:
//! the private `profile` label set to the profile's state (level and state recomputed, with
//! their events), the model event with the fields in clear, and, for a submitted profile
//! while KYCAID is the provider, its applicant job, all in the caller's transaction.

use serde_json::json;

use super::entities::{Profile, contexts};
use super::error::{ApiError, ApiResult};
use super::params::Params;
use crate::config::{KycProvider, Settings};
use crate::crypto::SecretBox;
use crate::domain::kyc::KycJob;
use crate::domain::profile::{self, ProfileFields, states};
use crate::events::Events;
use crate::routes::{In, Param, param};
use crate::store::users::{ProfileRow, ProfileWrite, UserRow};
use crate::store::{Db, StoreError, kyc_jobs, labels};

/// The profile's fields as parameters, for the user's routes and for staff's.
pub const FIELDS: [Param; 8] = [
    param("first_name", In::Body, false, "Letters, spaces, - and '"),
    param("last_name", In::Body, false, "Letters, spaces, - and '"),
    param(
        "dob",
        In::Body,
        false,
        "Date of birth, YYYY-MM-DD, not in the future",
    ),
    param("address", In::Body, false, "Street address"),
    param("postcode", In::Body, false, "Postcode"),
    param("city", In::Body, false, "City"),
    param("country", In::Body, false, "ISO 3166 alpha-2 or alpha-3"),
    param(
        "metadata",
        In::Body,
        false,
        "Any additional key: value pairs in json string format",
    ),
];

/// The submitted fields, checked: 422 with every code that applies.
pub fn fields(params: &Params) -> ApiResult<ProfileFields> {
    let text = |name: &str| params.text(name);
    let fields = ProfileFields {
        first_name: text("first_name"),
        last_name: text("last_name"),
        dob: text("dob"),
        address: text("address"),
        postcode: text("postcode"),
        city: text("city"),
        country: text("country"),
        metadata: text("metadata"),
    };
    let codes = profile::errors(&fields, time::OffsetDateTime::now_utc().date());
    ApiError::unprocessable_all(codes)?;
    Ok(fields)
}

/// What a profile write needs from the node.
pub struct ProfileWriter<'a> {
    pub settings: &'a Settings,
    pub secrets: &'a SecretBox,
    pub events: &'a Events,
}

impl ProfileWriter<'_> {
    /// The fields as stored: the personal ones sealed, each under its column's context.
    pub fn sealed(&self, fields: &ProfileFields) -> ProfileWrite {
        let seal = |context: &str, value: &Option<String>| {
            value
                .as_ref()
                .map(|v| self.secrets.seal(context, v.as_bytes()))
        };
        ProfileWrite {
            first_name_encrypted: seal(contexts::FIRST_NAME, &fields.first_name),
            last_name_encrypted: seal(contexts::LAST_NAME, &fields.last_name),
            dob_encrypted: seal(contexts::DOB, &fields.dob),
            address_encrypted: seal(contexts::ADDRESS, &fields.address),
            postcode: fields.postcode.clone(),
            city: fields.city.clone(),
            country: fields.country.clone(),
            metadata: fields.metadata.clone(),
        }
    }

    /// After `row` was written for `user`: the `profile` label follows the state, the
    /// provider hears of a submitted profile, and `event` carries the fields in clear.
    pub async fn written<C: Db>(
        &self,
        c: &C,
        user: &UserRow,
        row: &ProfileRow,
        event: &str,
    ) -> Result<(), StoreError> {
        let change = labels::set(
            c,
            &self.settings.users,
            user.id,
            "profile",
            &row.state,
            "private",
        )
        .await?;
        self.events.label_changed(c, &change).await?;
        // A submitted profile goes to the KYC provider (§8.3); with local KYC an admin decides.
        if row.state == states::SUBMITTED && self.settings.kyc.provider == KycProvider::Kycaid {
            kyc_jobs::enqueue(c, user.id, &KycJob::Applicant { profile_id: row.id }).await?;
        }
        let mut record =
            serde_json::to_value(Profile::from_row(row, self.secrets, false)).unwrap_or_default();
        record["user"] = crate::events::user_record_of(c, &change.user).await?;
        self.events
            .emit(c, event, &json!({ "record": record }))
            .await
    }
}
