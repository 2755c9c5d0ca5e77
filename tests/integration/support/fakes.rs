//! Local stand-ins for the services Portcullis calls: Google reCAPTCHA's siteverify, GeeTest's
//! register/validate, and an Auth0 tenant's JWKS. Each records what it was asked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use md5::{Digest, Md5};

#[derive(Default)]
pub struct FakeState {
    pub recaptcha_ok: bool,
    /// What register.php answers (None: HTTP 500).
    pub geetest_challenge: Option<String>,
    pub geetest_ok: bool,
    pub jwks: serde_json::Value,
    pub calls: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct Fakes {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<FakeState>>,
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

impl Fakes {
    pub async fn start() -> Fakes {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new()
            .route("/recaptcha/siteverify", post(recaptcha))
            .route("/geetest/register.php", get(geetest_register))
            .route("/geetest/validate.php", post(geetest_validate))
            .route("/auth0/.well-known/jwks.json", get(jwks))
            .route("/huge", post(huge).get(huge))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Fakes { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, change: impl FnOnce(&mut FakeState)) {
        change(&mut self.state.lock().unwrap());
    }

    pub fn calls(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().calls.clone()
    }
}

async fn recaptcha(State(state): State<Arc<Mutex<FakeState>>>, body: String) -> Response {
    let mut state = state.lock().unwrap();
    state.calls.push(("recaptcha".into(), body));
    axum::Json(serde_json::json!({ "success": state.recaptcha_ok })).into_response()
}

async fn geetest_register(State(state): State<Arc<Mutex<FakeState>>>, uri: http::Uri) -> Response {
    let mut state = state.lock().unwrap();
    state.calls.push((
        "geetest_register".into(),
        uri.query().unwrap_or("").to_string(),
    ));
    match &state.geetest_challenge {
        Some(challenge) => challenge.clone().into_response(),
        None => http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn geetest_validate(State(state): State<Arc<Mutex<FakeState>>>, body: String) -> Response {
    let mut state = state.lock().unwrap();
    state.calls.push(("geetest_validate".into(), body.clone()));
    let seccode = body.strip_prefix("seccode=").unwrap_or("");
    let seccode = percent_encoding::percent_decode_str(seccode)
        .decode_utf8_lossy()
        .into_owned();
    if state.geetest_ok {
        md5_hex(&seccode).into_response()
    } else {
        "false".into_response()
    }
}

async fn jwks(State(state): State<Arc<Mutex<FakeState>>>) -> Response {
    let mut state = state.lock().unwrap();
    state.calls.push(("jwks".into(), String::new()));
    axum::Json(state.jwks.clone()).into_response()
}

/// An answer that would say yes, if anyone read all eight megabytes of it.
async fn huge() -> Response {
    let mut body = String::from("{\"success\": true");
    body.push_str(&" ".repeat(8 * 1024 * 1024));
    body.push('}');
    ([("content-type", "application/json")], body).into_response()
}

pub fn geetest_validate_for(key: &str, challenge: &str) -> String {
    md5_hex(&format!("{key}geetest{challenge}"))
}
