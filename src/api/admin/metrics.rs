//! `GET /admin/metrics` (Barong §9.3): sign-ups, successful and failed logins per day, and
//! the applications waiting for review.
//!
//! Barong accepts `created_from`/`created_to` and then ignores them (its filter reads other
//! parameters); here they bound the window, as the contract describes them. Each takes unix
//! seconds or a `YYYY-MM-DD` date (that whole day, UTC). The window defaults to the last
//! 7 days. Two-factor logins (`login::2fa`) are not counted, as in Barong.

use axum::extract::{FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use time::{Date, OffsetDateTime};

use super::{AdminState, Staff, doc};
use crate::api::error::{ApiError, ApiResult};
use crate::api::params::Params;
use crate::domain::abilities::{Action, models};
use crate::routes::{Endpoint, Guard, In, Param, param, reply};
use crate::store::{activities, labels};

const PARAMS: [Param; 2] = [
    param(
        "created_from",
        In::Query,
        false,
        "Start of the window: unix seconds or YYYY-MM-DD (UTC); defaults to 7 days before its end",
    ),
    param(
        "created_to",
        In::Query,
        false,
        "End of the window: unix seconds or YYYY-MM-DD (that day included, UTC); defaults to now",
    ),
];

/// The window's default length.
const DEFAULT_DAYS: i64 = 7;

pub fn endpoints<S>() -> Vec<Endpoint<S>>
where
    S: Clone + Send + Sync + 'static,
    AdminState: FromRef<S>,
{
    vec![Endpoint {
        doc: doc(
            "GET",
            "admin/metrics",
            "Returns main statistic in the given time period",
            &PARAMS,
            const {
                &[
                    reply(
                        200,
                        "{\"signups\":{\"YYYY-MM-DD\":n},\"sucessful_logins\":{…},\"failed_logins\":{…},\"pending_applications\":n}",
                    ),
                    reply(
                        401,
                        "jwt.decode_and_verify, authz.*, admin.ability.not_permitted",
                    ),
                    reply(
                        422,
                        "admin.metrics.invalid_created_from, admin.metrics.invalid_created_to, admin.metrics.invalid_range",
                    ),
                ]
            },
        ),
        guard: Guard::Subject,
        handler: get(show),
    }]
}

/// Which end of the window a date names: its first second, or its last.
#[derive(Clone, Copy)]
enum End {
    Start,
    Finish,
}

/// Unix seconds from `text`: an integer, or a `YYYY-MM-DD` date at the `end` of that day.
fn instant(text: &str, end: End) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let date = Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()?;
    let start = date.midnight().assume_utc().unix_timestamp();
    Some(match end {
        End::Start => start,
        End::Finish => start + 86_399,
    })
}

fn bound(params: &Params, name: &str, end: End) -> ApiResult<Option<i64>> {
    match params.text(name) {
        None => Ok(None),
        Some(text) => instant(&text, end)
            .map(Some)
            .ok_or_else(|| ApiError::unprocessable(format!("admin.metrics.invalid_{name}"))),
    }
}

/// `[(day, n)]` as Barong's `{"day": n}`.
fn by_day(counts: Vec<(String, i64)>) -> Value {
    Value::Object(
        counts
            .into_iter()
            .map(|(d, n)| (d, json!(n)))
            .collect::<Map<_, _>>(),
    )
}

async fn show(State(app): State<AdminState>, staff: Staff, params: Params) -> ApiResult<Response> {
    staff.may(Action::Read, models::USER)?;
    let to = bound(&params, "created_to", End::Finish)?
        .unwrap_or_else(|| OffsetDateTime::now_utc().unix_timestamp());
    let from = bound(&params, "created_from", End::Start)?.unwrap_or(to - DEFAULT_DAYS * 86_400);
    if from > to {
        return Err(ApiError::unprocessable("admin.metrics.invalid_range"));
    }
    let client = app.store.reader().await?;
    let count = |what| activities::daily_counts(&client, what, from, to);
    let signups = count(("account", "signup", "succeed")).await?;
    let logins = count(("session", "login", "succeed")).await?;
    let failed = count(("session", "login", "failed")).await?;
    let pending = labels::holders(&client, "document", "pending", "private").await?;
    // "sucessful_logins": Barong's spelling, which its clients read.
    Ok(axum::Json(json!({
        "signups": by_day(signups),
        "sucessful_logins": by_day(logins),
        "failed_logins": by_day(failed),
        "pending_applications": pending,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_is_unix_seconds_or_a_whole_utc_day() {
        assert_eq!(instant("1700000000", End::Start), Some(1_700_000_000));
        assert_eq!(instant("2024-03-01", End::Start), Some(1_709_251_200));
        assert_eq!(
            instant("2024-03-01", End::Finish),
            Some(1_709_251_200 + 86_399)
        );
        assert_eq!(instant("2024-02-30", End::Start), None);
        assert_eq!(instant("yesterday", End::Start), None);
    }
}
