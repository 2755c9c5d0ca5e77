//! A Back Office access token at the gate and on the admin API: honoured while its family
//! lives and its user may hold a token, refused on every node the moment either ends.

use portcullis::authn::backoffice::new_family_id;
use portcullis::store;

use crate::support::{Client, Server, TestEnv, TestUser};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// An access token for `user` as a Back Office sign-in mints it, its family opened.
async fn access_token(env: &TestEnv, server: &Server, user: &TestUser) -> (String, String) {
    let client = env.store.client().await.unwrap();
    let row = store::users::find_by_uid(&client, &user.uid)
        .await
        .unwrap()
        .unwrap();
    let family = new_family_id();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (token, _) = server
        .app
        .gate
        .issuer
        .mint_access(&row.subject(), &family, 300, now);
    server
        .app
        .gate
        .families
        .as_ref()
        .unwrap()
        .keep(&family, &user.uid, 600)
        .await
        .unwrap();
    (token, family)
}

async fn decide(server: &Server, token: &str) -> crate::support::Response {
    Client::new()
        .get(server.decision(BALANCES))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
}

#[tokio::test]
async fn an_access_token_works_until_its_family_ends_on_every_node() {
    let env = TestEnv::new().await;
    let node_a = env.start().await;
    let node_b = env.start().await;
    let admin = env.user("admin").await;
    let (token, family) = access_token(&env, &node_a, &admin).await;

    // At the decision front: allowed, with a fresh session token for the upstream.
    let allowed = decide(&node_b, &token).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let forwarded = allowed.header("authorization").unwrap();
    assert_ne!(forwarded, format!("Bearer {token}"));
    let claims = crate::support::jwt_claims(forwarded);
    assert_eq!(claims["sub"], "session");
    assert_eq!(claims["uid"], admin.uid);
    // The token's header names its key.
    let header = token.split('.').next().unwrap();
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header).unwrap(),
    )
    .unwrap();
    assert!(header["kid"].is_string(), "{header}");

    // On the admin API, as the staff member.
    let abilities = Client::new()
        .get(node_b.admin("abilities"))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await;
    assert_eq!(abilities.status, 200, "{}", abilities.text());
    assert!(abilities.json()["manage"].is_array());

    // The family ends (sign-out): refused everywhere, at once.
    node_a
        .app
        .gate
        .families
        .as_ref()
        .unwrap()
        .revoke(&family)
        .await
        .unwrap();
    decide(&node_b, &token)
        .await
        .assert_error(401, "authz.invalid_session");
    Client::new()
        .get(node_a.admin("abilities"))
        .header("authorization", &format!("Bearer {token}"))
        .send()
        .await
        .assert_error(401, "jwt.decode_and_verify");

    // A token that is not ours changes nothing: the cookie path answers, as in Barong.
    Client::new()
        .get(node_a.decision(BALANCES))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
}

#[tokio::test]
async fn a_banned_users_access_token_is_refused_at_once() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let admin = env.user("admin").await;
    let (token, _) = access_token(&env, &server, &admin).await;
    assert_eq!(decide(&server, &token).await.status, 200);
    env.sql(&format!(
        "UPDATE users SET state = 'banned' WHERE uid = '{}'",
        admin.uid
    ))
    .await;
    TestEnv::eventually(1_000, || async {
        let answer = decide(&server, &token).await;
        answer.status == 401 && answer.errors() == ["authz.user_not_active"]
    })
    .await;
}
