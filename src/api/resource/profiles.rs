//! `/resource/profiles`: the user's KYC profile (Barong §8.3). One profile may be in the works
//! (drafted or submitted) at a time; the personal fields are sealed at rest and shown masked;
//! every write sets the private `profile` label to the profile's state; a profile submitted
//! while KYCAID is the provider queues its applicant job (`services::kyc`) in the same
//! transaction.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use serde_json::json;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{Profile, contexts, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::config::KycProvider;
use crate::crypto::SecretBox;
use crate::domain::kyc::KycJob;
use crate::domain::profile::{self, ProfileFields, states};
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::store::users::{self, ProfileRow, ProfileWrite, UserRow};
use crate::store::{Db, StoreError, kyc_jobs, labels};

const FIELDS: &[Param] = &[
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
    param(
        "confirm",
        In::Body,
        false,
        "true submits the profile for review",
    )
    .boolean(),
];

const INVALID: &str = "first_name.*, last_name.*, dob.invalid, dob.in_future, address.*, postcode.*, city.*, country.must have alpha2 or alpha3 format, metadata.invalid_format";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    ResourceState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: super::doc(
                "GET",
                "resource/profiles/me",
                "Return profiles of current user",
                &[],
                const {
                    &[
                        returns_list::<Profile>(200, "Every profile of the user, masked"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(mine),
        },
        Endpoint {
            doc: super::doc(
                "POST",
                "resource/profiles",
                "Create a profile for current user",
                FIELDS,
                const {
                    &[
                        returns::<Profile>(
                            201,
                            "drafted, or submitted with confirm=true (sent to KYCAID when it is the KYC provider)",
                        ),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(
                            422,
                            "state.exists (a profile is already drafted or submitted), and the field codes",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: post(create),
        },
        Endpoint {
            doc: super::doc(
                "PUT",
                "resource/profiles",
                "Update the drafted profile of current user",
                FIELDS,
                const {
                    &[
                        returns::<Profile>(200, "The profile; submitted with confirm=true"),
                        reply(401, "jwt.decode_and_verify, authz.*"),
                        reply(404, "resource.profile.doesnt_exist_or_not_editable"),
                        reply(422, INVALID),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: put(update),
        },
    ]
}

/// The submitted fields, checked; and the state `confirm` asks for.
fn read(params: &Params) -> ApiResult<(ProfileFields, &'static str)> {
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
    let confirm = params.text("confirm").is_some_and(|c| c == "true");
    Ok((
        fields,
        if confirm {
            states::SUBMITTED
        } else {
            states::DRAFTED
        },
    ))
}

/// The fields as stored: the personal ones sealed, each under its column's context.
fn sealed(fields: &ProfileFields, secrets: &SecretBox) -> ProfileWrite {
    let seal = |context: &str, value: &Option<String>| {
        value.as_ref().map(|v| secrets.seal(context, v.as_bytes()))
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

async fn mine(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Response> {
    let client = app.store.client().await?;
    let rows = users::profiles(&client, user.id).await?;
    let body: Vec<Profile> = rows
        .iter()
        .map(|p| Profile::from_row(p, &app.secrets, true))
        .collect();
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// The `profile` label follows the state; the model event carries the fields in clear.
async fn written<C: Db>(
    app: &ResourceState,
    c: &C,
    user: &UserRow,
    row: &ProfileRow,
    event: &str,
) -> Result<(), StoreError> {
    let change = labels::set(
        c,
        &app.settings.users,
        user.id,
        "profile",
        &row.state,
        "private",
    )
    .await?;
    app.events.label_changed(c, &change).await?;
    // A submitted profile goes to the KYC provider (§8.3); with local KYC an admin decides.
    if row.state == states::SUBMITTED && app.settings.kyc.provider == KycProvider::Kycaid {
        kyc_jobs::enqueue(c, user.id, &KycJob::Applicant { profile_id: row.id }).await?;
    }
    let mut record =
        serde_json::to_value(Profile::from_row(row, &app.secrets, false)).unwrap_or_default();
    record["user"] = crate::events::user_record_of(c, &change.user).await?;
    app.events
        .emit(c, event, &json!({ "record": record }))
        .await
}

async fn create(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let (fields, state) = read(&params)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    if users::has_open_profile(&tx, user.id).await? {
        return Err(ApiError::unprocessable("state.exists"));
    }
    let row = users::insert_profile(&tx, user.id, state, &sealed(&fields, &app.secrets)).await?;
    written(&app, &tx, &user, &row, "model.profile.created").await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(
        StatusCode::CREATED,
        Profile::from_row(&row, &app.secrets, true),
    ))
}

async fn update(
    State(app): State<ResourceState>,
    CurrentUser(user): CurrentUser,
    params: Params,
) -> ApiResult<Response> {
    let (fields, state) = read(&params)?;
    let mut client = app.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    let row = users::update_drafted_profile(&tx, user.id, state, &sealed(&fields, &app.secrets))
        .await?
        .ok_or_else(|| ApiError::not_found("resource.profile.doesnt_exist_or_not_editable"))?;
    written(&app, &tx, &user, &row, "model.profile.updated").await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(
        StatusCode::OK,
        Profile::from_row(&row, &app.secrets, true),
    ))
}
