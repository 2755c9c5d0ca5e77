//! `/resource/api_keys` (Barong §8.7): a user lists, creates, changes and deletes their own
//! keys; every write needs 2FA and a TOTP code, each code accepted once; the secret is shown
//! once and stored sealed; a disabled or deleted key is refused by the gate right after.

use std::collections::HashSet;

use crate::resource::bearer;
use crate::support::{Client, Response, Server, Session, TestEnv, TestKey, TestUser};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// Hands out TOTP codes the server has not seen yet. The server accepts the current step and
/// its neighbours, each once (`authn::totp`), so a test may use the next step's code and the
/// current one; when both are used it waits for the next step rather than reuse a code.
pub(crate) struct Codes {
    secret: Vec<u8>,
    used: HashSet<i64>,
}

impl Codes {
    /// Codes for `user`, made right after `server.login(user)`, which used the code of the
    /// step current then. Were the step to have moved on since, marking the new current one
    /// only costs a wait: a previous step's code is never handed out.
    pub(crate) fn after_login(user: &TestUser) -> Codes {
        let step = time::OffsetDateTime::now_utc().unix_timestamp() / 30;
        Codes {
            secret: user.otp_secret.clone().expect("user has 2FA"),
            used: HashSet::from([step]),
        }
    }

    fn at(&self, step: i64) -> String {
        format!(
            "{:06}",
            portcullis::authn::totp::code_at(&self.secret, step as u64)
        )
    }

    /// A fresh code: the next step's, the current one's, or (while at least 10 s of the
    /// current step are left, so the clock cannot cross into a step that no longer accepts it
    /// before the server checks) the previous step's, which the window still accepts.
    pub(crate) async fn fresh(&mut self) -> String {
        loop {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let step = now / 30;
            let previous = (now % 30 < 20).then_some(step - 1);
            for candidate in [Some(step + 1), Some(step), previous].into_iter().flatten() {
                if self.used.insert(candidate) {
                    return self.at(candidate);
                }
            }
            let wait = (step + 1) * 30 - now;
            tokio::time::sleep(std::time::Duration::from_millis(wait as u64 * 1000 + 200)).await;
        }
    }

    /// Six digits that match no step of the window.
    pub(crate) fn wrong(&self) -> String {
        let step = time::OffsetDateTime::now_utc().unix_timestamp() / 30;
        let window: Vec<String> = (step - 2..=step + 2).map(|s| self.at(s)).collect();
        (0..10u32)
            .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
            .find(|code| !window.contains(code))
            .unwrap()
    }
}

/// A request to the resource API with the session and its CSRF token.
pub(crate) async fn call(
    server: &Server,
    session: &Session,
    method: &str,
    route: &str,
    body: serde_json::Value,
) -> Response {
    Client::new()
        .request(method, server.resource(route))
        .session(session)
        .header("x-csrf-token", &session.csrf)
        .json(&body)
        .send()
        .await
}

/// The gate's decision on a request signed with `key`.
pub(crate) async fn decide(server: &Server, key: &TestKey) -> Response {
    Client::new()
        .get(server.decision(BALANCES))
        .headers(&key.headers())
        .send()
        .await
}

fn keys(body: &serde_json::Value) -> Vec<&str> {
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn a_key_is_created_with_its_secret_shown_once_and_stored_sealed() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let session = server.login(&user).await;
    let mut codes = Codes::after_login(&user);

    let code = codes.fresh().await;
    let created = call(
        &server,
        &session,
        "POST",
        "api_keys",
        serde_json::json!({ "algorithm": "HS256", "scope": "trade, read", "totp_code": code }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(
        keys(&body),
        [
            "algorithm",
            "created_at",
            "kid",
            "scope",
            "secret",
            "state",
            "updated_at"
        ]
    );
    assert_eq!(body["algorithm"], "HS256");
    assert_eq!(body["state"], "active");
    assert_eq!(body["scope"], serde_json::json!(["trade", "read"]));
    let kid = body["kid"].as_str().unwrap().to_string();
    let secret = body["secret"].as_str().unwrap().to_string();
    assert!(
        kid.len() == 16 && kid.bytes().all(|b| b.is_ascii_hexdigit()),
        "{kid}"
    );
    assert!(
        secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );

    // The row: the user's, sealed (the ciphertext opens with the key's own context only).
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT key_holder_account_type, key_holder_account_id, scope, secret_encrypted, state
             FROM api_keys WHERE kid = $1",
            &[&kid],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "User");
    assert_eq!(row.get::<_, i64>(1), user.id);
    assert_eq!(row.get::<_, String>(2), r#"["trade","read"]"#);
    let sealed: String = row.get(3);
    assert!(
        !sealed.contains(&secret),
        "secret stored in clear: {sealed}"
    );
    let opened = env
        .secrets()
        .open_string(&portcullis::store::api_keys::secret_context(&kid), &sealed)
        .unwrap();
    assert_eq!(opened, secret);
    assert_eq!(row.get::<_, String>(4), "active");

    // The same code again is refused: each code is accepted once.
    call(
        &server,
        &session,
        "POST",
        "api_keys",
        serde_json::json!({ "algorithm": "HS256", "totp_code": code }),
    )
    .await
    .assert_error(422, "resource.api_key.invalid_totp");
    assert_eq!(env.count("SELECT count(*) FROM api_keys").await, 1);

    // The key works at the gate, signed with the secret shown.
    let key = TestKey {
        kid: kid.clone(),
        secret,
    };
    let decided = decide(&server, &key).await;
    assert_eq!(decided.status, 200, "{}", decided.text());

    // Listed without its secret, with Barong's pagination headers; no TOTP needed.
    let listed = Client::new()
        .get(server.resource("api_keys"))
        .session(&session)
        .send()
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let list = listed.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        keys(&list[0]),
        [
            "algorithm",
            "created_at",
            "kid",
            "scope",
            "state",
            "updated_at"
        ]
    );
    assert_eq!(list[0]["kid"], kid.as_str());
    assert_eq!(list[0]["created_at"], body["created_at"]);
    assert_eq!(listed.header("total"), Some("1"));
    assert_eq!(listed.header("page"), Some("1"));
    assert_eq!(listed.header("per-page"), Some("100"));
    assert!(!listed.text().contains("secret"));
}

#[tokio::test]
async fn writes_need_2fa_a_valid_code_valid_parameters_and_an_active_holder() {
    let env = TestEnv::new().await;
    let server = env.start().await;

    // 2FA off: 400 on every write, whatever the code; reading is allowed.
    let plain = env.user("member").await;
    let plain_session = server.login(&plain).await;
    let plain_key = env.api_key(&plain.uid).await;
    let with_code = serde_json::json!({ "algorithm": "HS256", "totp_code": "123456" });
    for (method, route) in [
        ("POST", "api_keys".to_string()),
        ("PATCH", format!("api_keys/{}", plain_key.kid)),
        (
            "DELETE",
            format!("api_keys/{}?totp_code=123456", plain_key.kid),
        ),
    ] {
        call(&server, &plain_session, method, &route, with_code.clone())
            .await
            .assert_error(400, "resource.api_key.2fa_disabled");
    }
    let listed = Client::new()
        .get(server.resource("api_keys"))
        .session(&plain_session)
        .send()
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.json().as_array().unwrap().len(), 1);

    let user = env.user_with("member", "active", true).await;
    let session = server.login(&user).await;
    let mut codes = Codes::after_login(&user);
    let post = |body: serde_json::Value| call(&server, &session, "POST", "api_keys", body);
    post(serde_json::json!({ "algorithm": "HS256" }))
        .await
        .assert_error(422, "resource.api_key.missing_totp");
    post(serde_json::json!({ "algorithm": "HS256", "totp_code": " " }))
        .await
        .assert_error(422, "resource.api_key.missing_totp");
    post(serde_json::json!({ "algorithm": "HS256", "totp_code": codes.wrong() }))
        .await
        .assert_error(422, "resource.api_key.invalid_totp");
    let missing = post(serde_json::json!({ "totp_code": "123456" })).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        [
            "resource.api_key.missing_algorithm",
            "resource.api_key.empty_algorithm"
        ]
    );
    post(serde_json::json!({ "algorithm": "HS256", "scope": "", "totp_code": "123456" }))
        .await
        .assert_error(422, "resource.api_key.empty_scope");
    post(serde_json::json!({ "algorithm": "RS256", "totp_code": codes.fresh().await }))
        .await
        .assert_error(422, "algorithm.inclusion");
    let mine = format!(
        "SELECT count(*) FROM api_keys WHERE key_holder_account_id = {}",
        user.id
    );
    assert_eq!(env.count(&mine).await, 0);

    // A pending user cannot create a key, nor re-activate one made while active.
    let old_key = env.api_key(&user.uid).await;
    env.sql(&format!(
        "UPDATE api_keys SET state = 'disabled' WHERE kid = '{}'",
        old_key.kid
    ))
    .await;
    env.sql(&format!(
        "UPDATE users SET state = 'pending' WHERE id = {}",
        user.id
    ))
    .await;
    post(serde_json::json!({ "algorithm": "HS256", "totp_code": codes.fresh().await }))
        .await
        .assert_error(422, "key_holder_account.invalid");
    call(
        &server,
        &session,
        "PATCH",
        &format!("api_keys/{}", old_key.kid),
        serde_json::json!({ "state": "active", "totp_code": codes.fresh().await }),
    )
    .await
    .assert_error(422, "state.invalid");
    assert_eq!(env.count(&mine).await, 1);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys WHERE kid = '{}' AND state = 'disabled'",
            old_key.kid
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn the_list_is_ordered_and_paged_as_barong_does() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let other = env.user("member").await;
    let session = server.login(&user).await;
    let mut kids = Vec::new();
    for _ in 0..3 {
        kids.push(env.api_key(&user.uid).await.kid);
    }
    env.api_key(&other.uid).await;
    let list = |query: &str| {
        Client::new()
            .get(server.resource(&format!("api_keys?{query}")))
            .session(&session)
            .send()
    };
    let listed_kids = |response: &Response| -> Vec<String> {
        response
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    };

    let all = list("").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(listed_kids(&all), kids, "ascending by id, only the user's");
    // The same answer to the Bearer token Envoy would forward.
    let by_token = Client::new()
        .get(server.resource("api_keys"))
        .header("authorization", &bearer(&server, &session).await)
        .send()
        .await;
    assert_eq!(by_token.status, 200, "{}", by_token.text());
    assert_eq!(by_token.json(), all.json());
    let desc = list("ordering=desc&order_by=id").await;
    let mut reversed = kids.clone();
    reversed.reverse();
    assert_eq!(listed_kids(&desc), reversed);

    let second = list("limit=2&page=2").await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(listed_kids(&second), &kids[2..]);
    assert_eq!(second.header("total"), Some("3"));
    assert_eq!(second.header("page"), Some("2"));
    assert_eq!(second.header("per-page"), Some("2"));
    let past = list("page=9").await;
    assert_eq!(past.status, 200);
    assert!(listed_kids(&past).is_empty());

    list("ordering=sideways")
        .await
        .assert_error(422, "resource.api_key.invalid_ordering");
    list("order_by=secret")
        .await
        .assert_error(422, "resource.api_key.invalid_attribute");
    list("page=0").await.assert_error(422, "non_positive_page");
    list("page=x").await.assert_error(422, "non_integer_page");
    list("limit=101").await.assert_error(422, "invalid_limit");
    list("limit=0").await.assert_error(422, "invalid_limit");
    list("limit=many")
        .await
        .assert_error(422, "non_integer_limit");
    // Every failed check is reported at once, as Grape does.
    let both = list("ordering=up&order_by=nope").await;
    assert_eq!(
        both.errors(),
        [
            "resource.api_key.invalid_ordering",
            "resource.api_key.invalid_attribute"
        ]
    );
}

#[tokio::test]
async fn a_disabled_key_is_refused_by_the_gate_right_after_and_can_come_back() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let session = server.login(&user).await;
    let mut codes = Codes::after_login(&user);
    let key = env.api_key(&user.uid).await;
    // Cached by the gate before the change, so the change must evict it.
    assert_eq!(decide(&server, &key).await.status, 200);

    let route = format!("api_keys/{}", key.kid);
    let disabled = call(
        &server,
        &session,
        "PATCH",
        &route,
        serde_json::json!({ "state": "disabled", "scope": "read", "totp_code": codes.fresh().await }),
    )
    .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    let body = disabled.json();
    assert_eq!(
        keys(&body),
        [
            "algorithm",
            "created_at",
            "kid",
            "scope",
            "state",
            "updated_at"
        ]
    );
    assert_eq!(body["state"], "disabled");
    assert_eq!(body["scope"], serde_json::json!(["read"]));
    // The store's change notice reaches the gate's key cache: refused within moments.
    TestEnv::eventually(2000, || async { decide(&server, &key).await.status == 401 }).await;
    decide(&server, &key)
        .await
        .assert_error(401, "authz.apikey_not_active");

    call(
        &server,
        &session,
        "PATCH",
        &route,
        serde_json::json!({ "state": "revoked", "totp_code": codes.fresh().await }),
    )
    .await
    .assert_error(422, "state.inclusion");
    call(
        &server,
        &session,
        "PATCH",
        &route,
        serde_json::json!({ "state": "", "totp_code": "123456" }),
    )
    .await
    .assert_error(422, "resource.api_key.empty_state");

    let active = call(
        &server,
        &session,
        "PATCH",
        &route,
        serde_json::json!({ "state": "active", "totp_code": codes.fresh().await }),
    )
    .await;
    assert_eq!(active.status, 200, "{}", active.text());
    assert_eq!(active.json()["state"], "active");
    assert_eq!(
        active.json()["scope"],
        serde_json::json!(["read"]),
        "scope kept"
    );
    TestEnv::eventually(2000, || async { decide(&server, &key).await.status == 200 }).await;
}

#[tokio::test]
async fn a_deleted_key_is_gone_and_other_users_keys_are_not_found() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let other = env.user("member").await;
    let session = server.login(&user).await;
    let mut codes = Codes::after_login(&user);
    let key = env.api_key(&user.uid).await;
    let theirs = env.api_key(&other.uid).await;
    assert_eq!(decide(&server, &key).await.status, 200);

    // Another user's key is as unknown as a made-up kid, to update or to delete.
    call(
        &server,
        &session,
        "PATCH",
        &format!("api_keys/{}", theirs.kid),
        serde_json::json!({ "state": "disabled", "totp_code": codes.fresh().await }),
    )
    .await
    .assert_error(404, "record.not_found");
    call(
        &server,
        &session,
        "DELETE",
        &format!("api_keys/{}?totp_code={}", theirs.kid, codes.fresh().await),
        serde_json::json!({}),
    )
    .await
    .assert_error(404, "record.not_found");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys WHERE kid = '{}' AND state = 'active'",
            theirs.kid
        ))
        .await,
        1
    );

    call(
        &server,
        &session,
        "DELETE",
        &format!("api_keys/{}", key.kid),
        serde_json::json!({}),
    )
    .await
    .assert_error(422, "resource.api_key.missing_totp");
    let deleted = call(
        &server,
        &session,
        "DELETE",
        &format!("api_keys/{}?totp_code={}", key.kid, codes.fresh().await),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert!(deleted.body.is_empty());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys WHERE kid = '{}'",
            key.kid
        ))
        .await,
        0
    );
    TestEnv::eventually(2000, || async { decide(&server, &key).await.status == 401 }).await;
    decide(&server, &key)
        .await
        .assert_error(401, "authz.unexistent_apikey");
}
