//! `/resource/profiles`: the user's KYC profile (Barong §8.3). One profile may be in the works
//! (drafted or submitted) at a time; the personal fields are sealed at rest and shown masked;
//! every write sets the private `profile` label to the profile's state; a profile submitted
//! while KYCAID is the provider queues its applicant job (`services::kyc`) in the same
//! transaction.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;

use super::{CurrentUser, ResourceState};
use crate::api::entities::{Profile, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::api::profiles::{self, ProfileWriter};
use crate::domain::profile::{ProfileFields, states};
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::store::StoreError;
use crate::store::users;

const FIELDS: &[Param] = &[
    profiles::FIELDS[0],
    profiles::FIELDS[1],
    profiles::FIELDS[2],
    profiles::FIELDS[3],
    profiles::FIELDS[4],
    profiles::FIELDS[5],
    profiles::FIELDS[6],
    profiles::FIELDS[7],
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
    let fields = profiles::fields(params)?;
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

fn writer(app: &ResourceState) -> ProfileWriter<'_> {
    ProfileWriter {
        settings: &app.settings,
        secrets: &app.secrets,
        events: &app.events,
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
    let writer = writer(&app);
    let row = users::insert_profile(&tx, user.id, "user", state, &writer.sealed(&fields)).await?;
    writer
        .written(&tx, &user, &row, "model.profile.created")
        .await?;
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
    let writer = writer(&app);
    let row = users::update_open_profile(
        &tx,
        user.id,
        states::DRAFTED,
        state,
        &writer.sealed(&fields),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("resource.profile.doesnt_exist_or_not_editable"))?;
    writer
        .written(&tx, &user, &row, "model.profile.updated")
        .await?;
    tx.commit().await.map_err(StoreError::from)?;
    app.committed(&user.uid);
    Ok(entity(
        StatusCode::OK,
        Profile::from_row(&row, &app.secrets, true),
    ))
}
