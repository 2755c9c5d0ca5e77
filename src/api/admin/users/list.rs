//! Reading accounts: `GET /admin/users` (Barong's filters, ordering, pagination), `GET
//! /admin/users/documents/pending` (the KYC review queue) and `GET /admin/users/{uid}` (one
//! account with everything a reviewer needs).

use axum::extract::{FromRef, OriginalUri, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use time::OffsetDateTime;

use super::entities::{UserWithKYC, UserWithProfile};
use super::{AdminState, Staff, boolean, refuse_nul, target};
use crate::api::admin::doc;
use crate::api::entities::{User, entity};
use crate::api::error::{ApiError, ApiResult};
use crate::api::identity::IdentityState;
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns, returns_list};
use crate::store::user_search::{self, Among, Order, Range, UserFilter};

/// The filters both lists take (Barong's `UserFilter`). `first_name` and `last_name` are
/// accepted and ignored, as in Barong (the names are sealed).
const FILTERS: [Param; 12] = [
    param(
        "extended",
        In::Query,
        false,
        "Full information about each user",
    )
    .boolean(),
    param("uid", In::Query, false, "User uid"),
    param("email", In::Query, false, "User email (any case)"),
    param("role", In::Query, false, "User role"),
    param("first_name", In::Query, false, "Accepted, ignored"),
    param("last_name", In::Query, false, "Accepted, ignored"),
    param(
        "country",
        In::Query,
        false,
        "Country of any of the user's profiles",
    ),
    param("level", In::Query, false, "User level").integer(),
    param("state", In::Query, false, "User state"),
    param(
        "range",
        In::Query,
        false,
        "Which time from and to bound (default created)",
    )
    .one_of(&["created", "updated"]),
    param(
        "from",
        In::Query,
        false,
        "Unix seconds: only users at or after",
    )
    .integer(),
    param("to", In::Query, false, "Unix seconds: only users before").integer(),
];

/// The filters, then the list's own parameters: assembled at compile time, as a route's
/// `Doc` holds `'static` slices.
const LIST_PARAMS: [Param; 16] = {
    let mut all = [FILTERS[0]; 16];
    let mut i = 0;
    while i < FILTERS.len() {
        all[i] = FILTERS[i];
        i += 1;
    }
    all[12] = param("ordering", In::Query, false, "asc (default) or desc").one_of(&["asc", "desc"]);
    all[13] = param("order_by", In::Query, false, "A users column (default id)");
    all[14] = pagination::PARAMS[0];
    all[15] = pagination::PARAMS[1];
    all
};

const PENDING_PARAMS: [Param; 14] = {
    let mut all = [FILTERS[0]; 14];
    let mut i = 0;
    while i < FILTERS.len() {
        all[i] = FILTERS[i];
        i += 1;
    }
    all[12] = pagination::PARAMS[0];
    all[13] = pagination::PARAMS[1];
    all
};

const FILTER_CODES: &str = "admin.user.non_boolean_extended, non_integer_level, invalid_range, \
     non_integer_from, non_integer_to, non_integer_page, non_positive_page, non_integer_limit, \
     invalid_limit";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
    IdentityState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: doc(
                "GET",
                "admin/users",
                "Returns array of users as paginated collection",
                &LIST_PARAMS,
                const {
                    &[
                        // One entity per status in the document: the extended shape is named
                        // in the description.
                        returns_list::<User>(
                            200,
                            "Users; with extended=true each is a UserWithProfile (User, profiles, created_at, updated_at). Total, Page, Per-Page and Link headers",
                        ),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(
                            422,
                            "admin.user.non_boolean_extended, non_integer_level, invalid_range, non_integer_from, non_integer_to, user.ordering.invalid_ordering, user.ordering.invalid_attribute, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(list),
        },
        Endpoint {
            doc: doc(
                "GET",
                "admin/users/documents/pending",
                "Returns array of users with pending or replaced documents as paginated collection",
                &PENDING_PARAMS,
                const {
                    &[
                        returns_list::<User>(
                            200,
                            "Users, the longest waiting first; with extended=true each is a UserWithKYC. Total, Page, Per-Page and Link headers",
                        ),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(422, FILTER_CODES),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(pending),
        },
        Endpoint {
            doc: doc(
                "GET",
                "admin/users/{uid}",
                "Returns user info",
                const { &[param("uid", In::Path, true, "User uid")] },
                const {
                    &[
                        returns::<UserWithKYC>(
                            200,
                            "The user, unmasked, with what KYC review needs",
                        ),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(404, "admin.user.doesnt_exist"),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(one),
        },
    ]
}

/// The filters, `extended`, and the page, with every refusal's code collected (Grape reports
/// them together).
fn read_filters(
    params: &Params,
    codes: &mut Vec<String>,
) -> (UserFilter, Option<bool>, Option<Page>) {
    let text = |name: &str| params.text(name).filter(|v| !v.trim().is_empty());
    let extended =
        boolean(params, "extended", "admin.user.non_boolean_extended").unwrap_or_else(|_| {
            codes.push("admin.user.non_boolean_extended".into());
            None
        });
    let mut filter = UserFilter {
        uid: text("uid"),
        email: text("email"),
        role: text("role"),
        country: text("country"),
        state: text("state"),
        ..UserFilter::default()
    };
    if let Some(level) = text("level") {
        match level.trim().parse::<i32>() {
            Ok(level) => filter.level = Some(level),
            Err(_) => codes.push("admin.user.non_integer_level".into()),
        }
    }
    match text("range").as_deref() {
        None | Some("created") => {}
        Some("updated") => filter.range = Range::Updated,
        Some(_) => codes.push("admin.user.invalid_range".into()),
    }
    let mut time = |name: &str, code: &str| -> Option<OffsetDateTime> {
        let raw = text(name)?;
        let parsed = raw
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        if parsed.is_none() {
            codes.push(code.into());
        }
        parsed
    };
    filter.from = time("from", "admin.user.non_integer_from");
    filter.to = time("to", "admin.user.non_integer_to");
    let page = Page::collect(params, codes);
    (filter, extended, page)
}

async fn list(
    State(app): State<AdminState>,
    staff: Staff,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let mut codes = Vec::new();
    let (filter, extended, page) = read_filters(&params, &mut codes);
    let descending = match params.text("ordering").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            codes.push("user.ordering.invalid_ordering".into());
            false
        }
    };
    let order_by = params.text("order_by").unwrap_or_else(|| "id".into());
    let order = Order::by(&order_by, descending);
    if order.is_none() {
        codes.push("user.ordering.invalid_attribute".into());
    }
    ApiError::unprocessable_all(codes)?;
    let (Some(page), Some(order)) = (page, order) else {
        return Err(ApiError::internal());
    };
    staff.may(Action::Read, models::USER)?;
    // Listings tolerate replication lag (`Store::reader`); one user's page (`one`) does not.
    let client = app.store.reader().await?;
    let (total, rows) = user_search::search(
        &client,
        &filter,
        Among::All,
        order,
        page.limit,
        page.offset(),
    )
    .await?;
    let users = User::many(&client, &rows).await?;
    let headers = page.headers(total, &uri);
    if extended == Some(true) {
        let mut body = Vec::with_capacity(rows.len());
        for (row, user) in rows.iter().zip(users) {
            body.push(UserWithProfile::load(&client, &app.secrets, row, user).await?);
        }
        return Ok((StatusCode::OK, headers, axum::Json(body)).into_response());
    }
    Ok((StatusCode::OK, headers, axum::Json(users)).into_response())
}

async fn pending(
    State(app): State<AdminState>,
    staff: Staff,
    OriginalUri(uri): OriginalUri,
    params: Params,
) -> ApiResult<Response> {
    refuse_nul(&params)?;
    let mut codes = Vec::new();
    let (filter, extended, page) = read_filters(&params, &mut codes);
    ApiError::unprocessable_all(codes)?;
    let Some(page) = page else {
        return Err(ApiError::internal());
    };
    staff.may(Action::Read, models::USER)?;
    let client = app.store.reader().await?;
    let (total, rows) = user_search::search(
        &client,
        &filter,
        Among::PendingDocuments,
        Order::default(),
        page.limit,
        page.offset(),
    )
    .await?;
    let headers = page.headers(total, &uri);
    if extended == Some(true) {
        let mut body = Vec::with_capacity(rows.len());
        for row in &rows {
            body.push(
                UserWithKYC::load(&client, &app.secrets, &app.settings.api.mount, row).await?,
            );
        }
        return Ok((StatusCode::OK, headers, axum::Json(body)).into_response());
    }
    let users = User::many(&client, &rows).await?;
    Ok((StatusCode::OK, headers, axum::Json(users)).into_response())
}

async fn one(
    State(app): State<AdminState>,
    staff: Staff,
    Path(uid): Path<String>,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::USER)?;
    let client = app.store.client().await?;
    let user = target(&client, &uid).await?;
    let body = UserWithKYC::load(&client, &app.secrets, &app.settings.api.mount, &user).await?;
    Ok(entity(StatusCode::OK, body))
}
