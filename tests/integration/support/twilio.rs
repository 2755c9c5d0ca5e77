//! A local stand-in for Twilio: the Messages API (`twilio_sms`) and the Verify API (services,
//! verifications, checks; `twilio_verify`). It records every request (path, Authorization,
//! form) and answers success, or Twilio's error JSON with a chosen code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http::{HeaderMap, StatusCode};
use serde_json::json;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct TwilioCall {
    /// `messages`, `service`, `verification` or `check`.
    pub kind: &'static str,
    pub path: String,
    pub authorization: String,
    pub form: BTreeMap<String, String>,
}

pub struct TwilioState {
    /// Sends (messages, verifications) answer HTTP 400 with this Twilio code.
    pub error: Option<i64>,
    /// `POST /v2/Services` answers 500.
    pub services_fail: bool,
    /// The sid of a created service.
    pub new_service_sid: String,
    /// VerificationCheck answers `approved` for this code, `pending` for others.
    pub approve: Option<String>,
    /// VerificationCheck answers 404 (Twilio: the verification expired or was used).
    pub check_not_found: bool,
    pub calls: Vec<TwilioCall>,
}

#[derive(Clone)]
pub struct FakeTwilio {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<TwilioState>>,
}

type Shared = Arc<Mutex<TwilioState>>;

impl FakeTwilio {
    pub async fn start() -> FakeTwilio {
        let state = Arc::new(Mutex::new(TwilioState {
            error: None,
            services_fail: false,
            new_service_sid: "VAfake0001".into(),
            approve: None,
            check_not_found: false,
            calls: Vec::new(),
        }));
        let router = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
            .route("/v2/Services", post(services))
            .route("/v2/Services/{sid}/Verifications", post(verifications))
            .route("/v2/Services/{sid}/VerificationCheck", post(check))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        FakeTwilio { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, change: impl FnOnce(&mut TwilioState)) {
        change(&mut self.state.lock().unwrap());
    }

    pub fn calls(&self, kind: &str) -> Vec<TwilioCall> {
        let state = self.state.lock().unwrap();
        state
            .calls
            .iter()
            .filter(|c| c.kind == kind)
            .cloned()
            .collect()
    }

    /// The code in the last SMS sent (its 5-digit run).
    pub fn last_code(&self) -> String {
        let body = self.calls("messages").last().expect("an SMS was sent").form["Body"].clone();
        body.split(|c: char| !c.is_ascii_digit())
            .find(|run| run.len() == 5)
            .unwrap_or_else(|| panic!("no code in {body:?}"))
            .to_string()
    }
}

fn record(state: &Shared, kind: &'static str, path: String, headers: &HeaderMap, body: &str) {
    let form = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    state.lock().unwrap().calls.push(TwilioCall {
        kind,
        path,
        authorization,
        form,
    });
}

fn twilio_error(code: i64) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({
            "code": code,
            "message": "refused by the fake",
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": 400,
        })),
    )
        .into_response()
}

async fn messages(
    State(state): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/2010-04-01/Accounts/{sid}/Messages.json");
    record(&state, "messages", path, &headers, &body);
    match state.lock().unwrap().error {
        Some(code) => twilio_error(code),
        None => (
            StatusCode::CREATED,
            axum::Json(json!({ "sid": "SMfake", "status": "queued" })),
        )
            .into_response(),
    }
}

async fn services(State(state): State<Shared>, headers: HeaderMap, body: String) -> Response {
    record(&state, "service", "/v2/Services".into(), &headers, &body);
    let state = state.lock().unwrap();
    if state.services_fail {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({ "sid": state.new_service_sid })),
    )
        .into_response()
}

async fn verifications(
    State(state): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/v2/Services/{sid}/Verifications");
    record(&state, "verification", path, &headers, &body);
    match state.lock().unwrap().error {
        Some(code) => twilio_error(code),
        None => (
            StatusCode::CREATED,
            axum::Json(json!({ "sid": "VEfake", "status": "pending" })),
        )
            .into_response(),
    }
}

async fn check(
    State(state): State<Shared>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let path = format!("/v2/Services/{sid}/VerificationCheck");
    record(&state, "check", path, &headers, &body);
    let state = state.lock().unwrap();
    if state.check_not_found {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({ "code": 20404, "message": "not found", "status": 404 })),
        )
            .into_response();
    }
    let code = state.calls.last().and_then(|c| c.form.get("Code").cloned());
    let status = if code.is_some() && code == state.approve {
        "approved"
    } else {
        "pending"
    };
    (
        StatusCode::OK,
        axum::Json(json!({ "sid": "VEfake", "status": status })),
    )
        .into_response()
}
