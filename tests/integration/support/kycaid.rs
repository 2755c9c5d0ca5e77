//! A local stand-in for KYCAID's API: applicants, files, documents and verifications, with the
//! `Authorization: Token <token>` header checked on every call. It records every request it
//! accepted; it can be taken "down" (503 to everything) and be told what a verification
//! fetched by id says.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};

pub const TOKEN: &str = "portcullis-test-kycaid-token";

/// One request KYCAID accepted.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
pub struct KycaidState {
    /// Answer 503 to everything.
    pub down: bool,
    /// Answer 422 (a validation error) to `POST /applicants`.
    pub refuse_applicants: bool,
    /// What `GET /verifications/{id}` answers, by id (absent: 404).
    pub verifications: HashMap<String, Value>,
    pub requests: Vec<Recorded>,
    /// Requests refused for their token.
    pub unauthorized: usize,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeKycaid {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<KycaidState>>,
}

impl FakeKycaid {
    pub async fn start() -> FakeKycaid {
        let state = Arc::new(Mutex::new(KycaidState::default()));
        let router = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        FakeKycaid { addr, state }
    }

    /// The API base URL, as `kyc.kycaid_api_endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `[kyc]` settings for a node that talks to this fake, retrying fast.
    pub fn config(&self) -> String {
        format!(
            "[kyc]\nkycaid_authorization_token = \"{TOKEN}\"\nkycaid_api_endpoint = \"{}\"\n\
             kycaid_form_id = \"form-7\"\nkycaid_callback_url = \"https://exchange.test/kyc\"\n\
             retry_first_ms = 200\nretry_max_ms = 400\nworker_idle_wait = 1\n",
            self.endpoint()
        )
    }

    pub fn set(&self, change: impl FnOnce(&mut KycaidState)) {
        change(&mut self.state.lock().unwrap());
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The accepted requests to `method path`.
    pub fn requests_to(&self, method: &str, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect()
    }
}

async fn answer(
    State(state): State<Arc<Mutex<KycaidState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Token {TOKEN}"))
    {
        state.unauthorized += 1;
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"type": "unauthorized"})),
        )
            .into_response();
    }
    if state.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let path = uri.path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    state.next_id += 1;
    let id = state.next_id;
    let reply = match (method.as_str(), segments.as_slice()) {
        ("POST", ["applicants"]) if state.refuse_applicants => {
            let errors = json!({"type": "validation", "errors": [
                {"parameter": "residence_country", "message": "Country of residence is not valid"}
            ]});
            return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(errors)).into_response();
        }
        ("POST", ["applicants"]) => json!({ "applicant_id": format!("applicant-{id}") }),
        ("PATCH", ["applicants", applicant]) => json!({ "applicant_id": applicant }),
        ("POST", ["files"]) => json!({ "file_id": format!("file-{id}") }),
        ("POST", ["documents"]) => json!({ "document_id": format!("document-{id}") }),
        ("POST", ["addresses"]) => json!({ "address_id": format!("address-{id}") }),
        ("POST", ["verifications"]) => json!({ "verification_id": format!("verification-{id}") }),
        ("GET", ["verifications", verification]) => match state.verifications.get(*verification) {
            Some(found) => found.clone(),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    state.requests.push(Recorded {
        method: method.to_string(),
        path,
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        body: body.to_vec(),
    });
    axum::Json(reply).into_response()
}
