//! `GET /admin/activities` and `/admin/activities/admin` (Barong §9.3, §12): what users did,
//! and what staff did (every admin API write, with its before and after, and every AUDIT
//! match of the gate), newest first, filtered and paginated, with the users named.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminState, Staff, doc};
use crate::api::entities::{Activity, User};
use crate::api::error::{ApiError, ApiResult};
use crate::api::pagination::{self, Page};
use crate::api::params::Params;
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, Param, param, reply, returns_list};
use crate::store::activities::{self, StaffActivityRow, StaffFilter};
use crate::store::users;

/// Barong's prefix for this class's parameter codes.
const PREFIX: &str = "admin.activity";

const FILTERS: [Param; 8] = [
    param("topic", In::Query, false, "Activity topic"),
    param("action", In::Query, false, "Activity action"),
    param("uid", In::Query, false, "Uid of the user who acted"),
    param("email", In::Query, false, "Email of the user who acted"),
    param(
        "from",
        In::Query,
        false,
        "An integer represents the seconds elapsed since Unix epoch.If set, only records FROM the time will be retrieved.",
    ),
    param(
        "to",
        In::Query,
        false,
        "An integer represents the seconds elapsed since Unix epoch.If set, only records BEFORE the time will be retrieved.",
    ),
    pagination::PARAMS[0],
    pagination::PARAMS[1],
];

const ADMIN_FILTERS: [Param; 10] = [
    FILTERS[0],
    FILTERS[1],
    FILTERS[2],
    FILTERS[3],
    FILTERS[4],
    FILTERS[5],
    FILTERS[6],
    FILTERS[7],
    param("target_uid", In::Query, false, "Uid of the user acted on"),
    param(
        "range",
        In::Query,
        false,
        "Which time from/to apply to; activities have only `created`",
    )
    .one_of(&["created"]),
];

/// A user's activity with the user (`API_V2_Admin_Entities_ActivityWithUser`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityWithUser {
    #[serde(flatten)]
    pub activity: Activity,
    pub user: Option<User>,
}

/// A staff activity with its actor and its target (`API_V2_Admin_Entities_AdminActivity`).
/// `data` holds `{"before": …, "after": …}` for a write through the admin API.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminActivity {
    #[serde(flatten)]
    pub activity: Activity,
    pub admin: Option<User>,
    pub target: Option<User>,
}

const REFUSALS: &str = "admin.activity.empty_from, admin.activity.non_integer_from, admin.activity.empty_to, admin.activity.non_integer_to, non_integer_page, non_positive_page, non_integer_limit, invalid_limit";

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    vec![
        Endpoint {
            doc: doc(
                "GET",
                "admin/activities",
                "Returns array of activities as paginated collection",
                &FILTERS,
                const {
                    &[
                        returns_list::<ActivityWithUser>(
                            200,
                            "Users' activities, newest first; headers Total, Page, Per-Page, Link",
                        ),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(422, REFUSALS),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(of_users),
        },
        Endpoint {
            doc: doc(
                "GET",
                "admin/activities/admin",
                "Returns array of activities as paginated collection",
                &ADMIN_FILTERS,
                const {
                    &[
                        returns_list::<AdminActivity>(
                            200,
                            "Staff activities with actor and target, newest first; headers Total, Page, Per-Page, Link",
                        ),
                        reply(
                            401,
                            "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                        ),
                        reply(
                            422,
                            "admin.activity.invalid_range, admin.activity.empty_from, admin.activity.non_integer_from, admin.activity.empty_to, admin.activity.non_integer_to, non_integer_page, non_positive_page, non_integer_limit, invalid_limit",
                        ),
                    ]
                },
            ),
            guard: Guard::Subject,
            handler: get(of_staff),
        },
    ]
}

/// The filter the request's parameters describe, and its page.
struct Query {
    topic: Option<String>,
    action: Option<String>,
    uid: Option<String>,
    email: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    target_uid: Option<String>,
    page: Page,
}

impl Query {
    fn read(params: &Params, staff_log: bool) -> ApiResult<Query> {
        if staff_log && params.text("range").is_some_and(|r| r != "created") {
            return Err(ApiError::unprocessable("admin.activity.invalid_range"));
        }
        Ok(Query {
            topic: params.filled("topic"),
            action: params.filled("action"),
            uid: params.filled("uid"),
            email: params.filled("email"),
            from: params.integer(PREFIX, "from")?,
            to: params.integer(PREFIX, "to")?,
            target_uid: staff_log.then(|| params.filled("target_uid")).flatten(),
            page: Page::from_params(params)?,
        })
    }

    fn filter<'a>(&'a self, category: &'a str) -> StaffFilter<'a> {
        StaffFilter {
            category,
            topic: self.topic.as_deref(),
            action: self.action.as_deref(),
            uid: self.uid.as_deref(),
            email: self.email.as_deref(),
            from: self.from,
            to: self.to,
            target_uid: self.target_uid.as_deref(),
        }
    }
}

/// The page's activities and every user they name, in three queries whatever the page size.
async fn page_of(
    app: &AdminState,
    query: &Query,
    category: &str,
) -> ApiResult<(Vec<StaffActivityRow>, i64, Vec<(i64, User)>)> {
    let client = app.store.reader().await?;
    let (rows, total) = activities::for_staff(
        &client,
        &query.filter(category),
        query.page.limit,
        query.page.offset(),
    )
    .await?;
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.user_id).collect();
    let uids: Vec<String> = rows.iter().filter_map(|r| r.target_uid.clone()).collect();
    let named = users::find_many(&client, &ids, &uids).await?;
    let entities = User::many(&client, &named).await?;
    let people = named.iter().map(|r| r.id).zip(entities).collect();
    Ok((rows, total, people))
}

fn by_id(people: &[(i64, User)], id: Option<i64>) -> Option<User> {
    let id = id?;
    people
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, u)| u.clone())
}

fn by_uid(people: &[(i64, User)], uid: Option<&str>) -> Option<User> {
    let uid = uid?;
    people
        .iter()
        .find(|(_, u)| u.uid == uid)
        .map(|(_, u)| u.clone())
}

async fn of_users(
    State(app): State<AdminState>,
    staff: Staff,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::ACTIVITY)?;
    let query = Query::read(&params, false)?;
    let (rows, total, people) = page_of(&app, &query, "user").await?;
    let body: Vec<ActivityWithUser> = rows
        .into_iter()
        .map(|row| ActivityWithUser {
            activity: Activity::from(&row.activity),
            user: by_id(&people, row.user_id),
        })
        .collect();
    Ok((
        StatusCode::OK,
        query.page.headers(total, &uri),
        axum::Json(body),
    )
        .into_response())
}

async fn of_staff(
    State(app): State<AdminState>,
    staff: Staff,
    uri: http::Uri,
    params: Params,
) -> ApiResult<Response> {
    staff.may(Action::Read, models::ACTIVITY)?;
    let query = Query::read(&params, true)?;
    let (rows, total, people) = page_of(&app, &query, "admin").await?;
    let body: Vec<AdminActivity> = rows
        .into_iter()
        .map(|row| AdminActivity {
            activity: Activity::from(&row.activity),
            admin: by_id(&people, row.user_id),
            target: by_uid(&people, row.target_uid.as_deref()),
        })
        .collect();
    Ok((
        StatusCode::OK,
        query.page.headers(total, &uri),
        axum::Json(body),
    )
        .into_response())
}
