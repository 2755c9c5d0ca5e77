//! Auth0 login (`POST /identity/sessions/auth0`): id_tokens from a test tenant, sent as an
//! attacker would send them. Only an email Auth0 verified opens an account, the first login
//! binds the account to the token's subject, and `azp` and `nonce` are checked
//! (decisions.md #7, #25; security review 2026-12-01, finding 4).

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::fakes::Fakes;
use crate::support::{Client, Response, Server, TestEnv, UA, random_suffix};

const CODE: &str = "identity.session.auth0.invalid_params";
const SESSION_COOKIE: &str = "_barong_session";

/// An Auth0 tenant for tests: a signing key, its JWKS served by the fakes, id_tokens.
struct Tenant {
    issuer: portcullis::jwt::Issuer,
}

impl Tenant {
    fn new(fakes: &Fakes) -> Tenant {
        let issuer = portcullis::jwt::Issuer::new(
            portcullis::jwt::SigningKey::generate(),
            portcullis::config::JwtAlgorithm::RS256,
            3600,
            true,
        );
        let jwks = issuer.jwks();
        fakes.set(|s| s.jwks = jwks);
        Tenant { issuer }
    }

    /// A token for our client with `claims` over the defaults (`null` removes a default).
    fn token(&self, claims: Value) -> String {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut all = json!({ "iss": "https://tenant.auth0.test/", "aud": "client-1", "iat": now, "exp": now + 600 });
        for (name, value) in claims.as_object().unwrap() {
            if value.is_null() {
                all.as_object_mut().unwrap().remove(name);
            } else {
                all[name] = value.clone();
            }
        }
        self.issuer.sign(&all)
    }

    /// A token of `sub` with a verified `email`, and `claims` over that.
    fn verified(&self, sub: &str, email: &str, claims: Value) -> String {
        let mut all = json!({ "sub": sub, "email": email, "email_verified": true });
        all.as_object_mut()
            .unwrap()
            .extend(claims.as_object().unwrap().clone());
        self.token(all)
    }
}

/// A server with Auth0 on, trusting `tenant`'s keys.
struct Auth0Server {
    server: Server,
    tenant: Tenant,
    _fakes: Fakes,
}

impl Auth0Server {
    async fn start(env: &TestEnv) -> Auth0Server {
        let fakes = Fakes::start().await;
        let tenant = Tenant::new(&fakes);
        let server = env
            .start_with(&format!(
                "[auth0]\ndomain = \"tenant.auth0.test\"\nclient_id = \"client-1\"\njwks_url = \"{}\"",
                fakes.url("/auth0/.well-known/jwks.json")
            ))
            .await;
        Auth0Server {
            server,
            tenant,
            _fakes: fakes,
        }
    }

    fn url(&self) -> String {
        self.server.identity("sessions/auth0")
    }

    async fn send(&self, body: Value) -> Response {
        Client::new()
            .post(self.url())
            .header("user-agent", UA)
            .json(&body)
            .send()
            .await
    }

    async fn login(&self, token: String) -> Response {
        self.send(json!({ "id_token": token })).await
    }

    /// The logins sent at once (racing on a first login), and their statuses in order.
    async fn race(&self, tokens: Vec<String>) -> (Vec<Response>, Vec<u16>) {
        let answers = join_all(tokens.into_iter().map(|token| self.login(token))).await;
        let statuses = answers.iter().map(|r| r.status).collect();
        (answers, statuses)
    }
}

fn bodies(answers: &[Response]) -> Vec<String> {
    answers.iter().map(Response::text).collect()
}

fn subject() -> String {
    format!("auth0|{}", random_suffix())
}

fn new_email() -> String {
    format!("auth0-{}@example.com", random_suffix())
}

/// Refused with `status` and Barong's Auth0 code, and no session opened.
#[track_caller]
fn assert_refused(response: &Response, status: u16) {
    response.assert_error(status, CODE);
    assert_eq!(response.cookie(SESSION_COOKIE), None, "no session cookie");
}

/// Logged in (201 with a session) as the account `uid`.
#[track_caller]
fn assert_logged_in_as(response: &Response, uid: &str) {
    assert_eq!(response.status, 201, "{}", response.text());
    assert!(response.cookie(SESSION_COOKIE).is_some(), "session cookie");
    assert_eq!(response.json()["uid"].as_str(), Some(uid));
}

async fn bindings(env: &TestEnv) -> i64 {
    env.count("SELECT count(*) FROM user_identities").await
}

/// The subject account `user_id` is bound to at Auth0.
async fn bound_subject(env: &TestEnv, user_id: i64) -> Option<String> {
    let client = env.store.client().await.unwrap();
    client
        .query_opt(
            "SELECT subject FROM user_identities WHERE user_id = $1 AND provider = 'auth0'",
            &[&user_id],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

async fn logins(env: &TestEnv, user_id: i64, result: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM activities WHERE user_id = {user_id} AND topic = 'session' \
         AND action LIKE 'login%' AND result = '{result}'"
    ))
    .await
}

async fn accounts_with(env: &TestEnv, email: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM users WHERE lower(email) = lower('{email}')"
    ))
    .await
}

async fn user_id_of(env: &TestEnv, email: &str) -> i64 {
    env.count(&format!(
        "SELECT id FROM users WHERE lower(email) = lower('{email}')"
    ))
    .await
}

#[tokio::test]
async fn auth0_logins_create_verified_accounts_and_pass_the_state_checks() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let tenant = &auth0.tenant;
    let (sub, address) = (subject(), new_email());
    let created = auth0
        .login(tenant.verified(&sub, &address, json!({})))
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(
        (
            created.json()["state"].as_str(),
            created.json()["level"].as_i64()
        ),
        (Some("active"), Some(1))
    );
    assert!(created.cookie(SESSION_COOKIE).is_some());
    let uid = created.json()["uid"].as_str().unwrap().to_string();
    assert_logged_in_as(
        &auth0
            .login(tenant.verified(&sub, &address, json!({})))
            .await,
        &uid,
    );

    assert_refused(
        &auth0
            .login(
                tenant.token(
                    json!({ "sub": subject(), "email": new_email(), "email_verified": false }),
                ),
            )
            .await,
        401,
    );
    assert_refused(
        &auth0
            .login(tenant.token(json!({ "sub": subject(), "email_verified": true })))
            .await,
        401,
    );
    assert_refused(
        &auth0
            .login(tenant.verified(&sub, &address, json!({ "aud": "someone-else" })))
            .await,
        422,
    );
    assert_refused(
        &auth0
            .login(tenant.verified(&sub, &address, json!({ "exp": 1 })))
            .await,
        422,
    );
    let stranger = Tenant::new(&Fakes::start().await);
    assert_refused(
        &auth0
            .login(stranger.verified(&sub, &address, json!({})))
            .await,
        422,
    );
    let missing = Client::new().post(auth0.url()).send().await;
    assert_eq!(
        missing.errors(),
        [
            "identity.session.missing_id_token",
            "identity.session.empty_id_token"
        ]
    );

    // Same checks as a password login (decisions.md #7): state, then 2FA.
    let banned = env.user_with("member", "banned", false).await;
    auth0
        .login(tenant.verified(&subject(), &banned.email, json!({})))
        .await
        .assert_error(401, "identity.session.banned");
    assert_eq!(bound_subject(&env, banned.id).await, None);
    let guarded = env.user_with("member", "active", true).await;
    let guarded_sub = subject();
    auth0
        .login(tenant.verified(&guarded_sub, &guarded.email, json!({})))
        .await
        .assert_error(401, "identity.session.missing_otp");
    assert_eq!(bound_subject(&env, guarded.id).await, None);
    let with_code = auth0
        .send(json!({
            "id_token": tenant.verified(&guarded_sub, &guarded.email, json!({})),
            "otp_code": guarded.otp_code(),
        }))
        .await;
    assert_logged_in_as(&with_code, &guarded.uid);
    assert_eq!(bound_subject(&env, guarded.id).await, Some(guarded_sub));
    let configs = Client::new()
        .get(auth0.server.public("configs/auth0"))
        .send()
        .await
        .json();
    assert_eq!(
        configs,
        json!({ "auth0_domain": "tenant.auth0.test", "auth0_client_id": "client-1" })
    );
}

#[tokio::test]
async fn an_unverified_email_never_opens_an_existing_account() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let victim = env.user("member").await;
    // Self sign-up at the tenant with the victim's address: Auth0 issues a token at once, with
    // the address unverified (or a tenant rule adds the claim in a shape we must not trust).
    for verified in [json!(false), Value::Null, json!("true"), json!(1)] {
        let token = auth0.tenant.token(json!({
            "sub": "auth0|attacker",
            "email": victim.email.to_uppercase(),
            "email_verified": verified,
        }));
        assert_refused(&auth0.login(token).await, 401);
    }
    assert_eq!(bindings(&env).await, 0);
    assert_eq!(logins(&env, victim.id, "succeed").await, 0);
    assert_eq!(
        env.count("SELECT count(*) FROM event_outbox WHERE name = 'system.session.create'")
            .await,
        0
    );
}

#[tokio::test]
async fn the_first_verified_login_binds_the_account_to_its_subject() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let tenant = &auth0.tenant;
    let owner = env.user("member").await;
    let sub = subject();

    let first = auth0
        .login(tenant.verified(&sub, &owner.email, json!({})))
        .await;
    assert_logged_in_as(&first, &owner.uid);
    assert_eq!(bindings(&env).await, 1);
    assert_eq!(bound_subject(&env, owner.id).await, Some(sub.clone()));
    assert_eq!(logins(&env, owner.id, "succeed").await, 1);

    // Another Auth0 account that verified the same address (say, recreated at the tenant, or
    // a second connection) does not open the bound account; the owner sees the attempt.
    let other = auth0
        .login(tenant.verified(&subject(), &owner.email, json!({})))
        .await;
    assert_refused(&other, 401);
    assert_eq!(bindings(&env).await, 1);
    assert_eq!(bound_subject(&env, owner.id).await, Some(sub.clone()));
    assert_eq!(logins(&env, owner.id, "succeed").await, 1);
    assert_eq!(logins(&env, owner.id, "failed").await, 1);

    // The subject is the identity: a changed email at Auth0 still opens the bound account,
    // and creates none for the new address.
    let moved = new_email();
    let renamed = auth0.login(tenant.verified(&sub, &moved, json!({}))).await;
    assert_logged_in_as(&renamed, &owner.uid);
    assert_eq!(accounts_with(&env, &moved).await, 0);
    assert_eq!(bindings(&env).await, 1);
    assert_eq!(logins(&env, owner.id, "succeed").await, 2);
}

#[tokio::test]
async fn a_new_email_opens_an_account_only_when_verified() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let tenant = &auth0.tenant;
    let (sub, address) = (subject(), new_email());

    let unverified = tenant.token(json!({ "sub": sub, "email": address, "email_verified": false }));
    assert_refused(&auth0.login(unverified).await, 401);
    assert_eq!(accounts_with(&env, &address).await, 0);
    assert_eq!(bindings(&env).await, 0);

    let verified = auth0
        .login(tenant.verified(&sub, &address, json!({})))
        .await;
    assert_eq!(verified.status, 201, "{}", verified.text());
    assert!(verified.cookie(SESSION_COOKIE).is_some());
    assert_eq!(accounts_with(&env, &address).await, 1);
    let user_id = user_id_of(&env, &address).await;
    assert_eq!(bound_subject(&env, user_id).await, Some(sub));
    assert_eq!(bindings(&env).await, 1);
    assert_eq!(logins(&env, user_id, "succeed").await, 1);
}

#[tokio::test]
async fn several_audiences_need_our_client_as_the_authorized_party() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let tenant = &auth0.tenant;
    let (sub, address) = (subject(), new_email());
    let two = json!(["client-1", "https://api.example.com/"]);

    for claims in [
        json!({ "aud": two }),
        json!({ "aud": two, "azp": "client-2" }),
        json!({ "aud": two, "azp": "" }),
        // A single audience does not need azp, but one that is there must be us.
        json!({ "azp": "client-2" }),
        json!({ "aud": ["client-1"], "azp": "client-2" }),
    ] {
        let refused = auth0
            .login(tenant.verified(&sub, &address, claims.clone()))
            .await;
        assert_refused(&refused, 422);
    }
    assert_eq!(accounts_with(&env, &address).await, 0);
    assert_eq!(bindings(&env).await, 0);

    let accepted = auth0
        .login(tenant.verified(&sub, &address, json!({ "aud": two, "azp": "client-1" })))
        .await;
    assert_eq!(accepted.status, 201, "{}", accepted.text());
    let uid = accepted.json()["uid"].as_str().unwrap().to_string();
    assert_logged_in_as(
        &auth0
            .login(tenant.verified(&sub, &address, json!({ "azp": "client-1" })))
            .await,
        &uid,
    );
    assert_eq!(bindings(&env).await, 1);
}

#[tokio::test]
async fn a_nonce_sent_by_the_front_end_must_be_in_the_token() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let tenant = &auth0.tenant;
    let user = env.user("member").await;
    let sub = subject();
    let with_nonce = |token: String, nonce: &str| json!({ "id_token": token, "nonce": nonce });

    // A token obtained for another login (no nonce, or another one) does not fit this one.
    for claims in [
        json!({}),
        json!({ "nonce": "n-other" }),
        json!({ "nonce": 7 }),
    ] {
        let token = tenant.verified(&sub, &user.email, claims);
        assert_refused(&auth0.send(with_nonce(token, "n-7f3a")).await, 422);
    }
    assert_eq!(bindings(&env).await, 0);
    assert_eq!(logins(&env, user.id, "succeed").await, 0);

    let token = tenant.verified(&sub, &user.email, json!({ "nonce": "n-7f3a" }));
    assert_logged_in_as(&auth0.send(with_nonce(token, "n-7f3a")).await, &user.uid);
    // No nonce from the front end: nothing to compare, whatever the token carries.
    for claims in [json!({}), json!({ "nonce": "n-any" })] {
        let token = tenant.verified(&sub, &user.email, claims);
        assert_logged_in_as(&auth0.login(token).await, &user.uid);
    }
    assert_eq!(logins(&env, user.id, "succeed").await, 3);
}

#[tokio::test]
async fn claims_that_cannot_be_stored_are_refused_never_a_server_error() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let tenant = &auth0.tenant;
    let users_before = env.count("SELECT count(*) FROM users").await;
    let long_email = format!("{}@example.com", "a".repeat(300));
    let long_domain = format!("someone@{}.com", "d".repeat(300));

    for claims in [
        json!({ "sub": "s".repeat(300), "email": new_email() }),
        json!({ "sub": "", "email": new_email() }),
        json!({ "sub": null, "email": new_email() }),
        json!({ "sub": 12345, "email": new_email() }),
        json!({ "sub": "auth0|a\u{0}b", "email": new_email() }),
        json!({ "sub": subject(), "email": long_email }),
        json!({ "sub": subject(), "email": long_domain }),
        json!({ "sub": subject(), "email": "not-an-email" }),
        json!({ "sub": subject(), "email": "a\u{0}b@example.com" }),
        json!({ "sub": subject(), "email": ["a@example.com"] }),
        json!({ "sub": subject(), "email": null }),
    ] {
        let mut verified = claims.clone();
        verified["email_verified"] = json!(true);
        let response = auth0.login(tenant.token(verified)).await;
        assert_eq!(response.status, 401, "claims {claims}: {}", response.text());
        assert_refused(&response, 401);
    }
    assert_eq!(env.count("SELECT count(*) FROM users").await, users_before);
    assert_eq!(bindings(&env).await, 0);
}

#[tokio::test]
async fn concurrent_first_logins_of_one_identity_all_open_the_same_account() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let owner = env.user("member").await;
    let new_address = new_email();

    // The same identity racing on its first login: on an existing account (racing to bind it)
    // and on a new address (racing to create it).
    for email in [owner.email.as_str(), new_address.as_str()] {
        let token = auth0.tenant.verified(&subject(), email, json!({}));
        let (answers, statuses) = auth0.race(vec![token; 4]).await;
        assert_eq!(statuses, [201; 4], "{email}: {:?}", bodies(&answers));
        let uids: Vec<Value> = answers.iter().map(|r| r.json()["uid"].clone()).collect();
        assert!(
            uids.iter().all(|uid| *uid == uids[0]),
            "one account: {uids:?}"
        );
        assert_eq!(accounts_with(&env, email).await, 1);
    }
    assert_eq!(bindings(&env).await, 2);
}

#[tokio::test]
async fn concurrent_first_logins_of_two_subjects_bind_only_one() {
    let env = TestEnv::new().await;
    let auth0 = Auth0Server::start(&env).await;
    let owner = env.user("member").await;
    let new_address = new_email();

    for email in [owner.email.as_str(), new_address.as_str()] {
        let tokens = (0..2)
            .map(|_| auth0.tenant.verified(&subject(), email, json!({})))
            .collect();
        let (answers, mut statuses) = auth0.race(tokens).await;
        statuses.sort();
        assert_eq!(statuses, [201, 401], "{email}: {:?}", bodies(&answers));
        let refused = answers.iter().find(|r| r.status == 401).unwrap();
        assert_refused(refused, 401);
        assert_eq!(accounts_with(&env, email).await, 1);
    }
    assert_eq!(bindings(&env).await, 2);
}
