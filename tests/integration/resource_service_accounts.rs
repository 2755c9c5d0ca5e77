//! `/resource/service_accounts/api_keys` (Barong §8.8): an owner manages the keys of their
//! service accounts with their own 2FA and TOTP, under the `resource.service_accounts.*`
//! codes; nobody reaches another owner's account, and the gate follows every change at once.

use crate::resource::bearer;
use crate::resource_api_keys::{Codes, call, decide};
use crate::support::{Client, TestEnv, TestKey};

/// A service account `owner_id` owns.
async fn owned_account(env: &TestEnv, owner_id: i64) -> String {
    let uid = env.service_account("member").await;
    env.sql(&format!(
        "UPDATE service_accounts SET owner_id = {owner_id} WHERE uid = '{uid}'"
    ))
    .await;
    uid
}

#[tokio::test]
async fn an_owner_creates_lists_changes_and_deletes_a_service_accounts_key() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let owner = env.user_with("member", "active", true).await;
    let account = owned_account(&env, owner.id).await;
    let session = server.login(&owner).await;
    let mut codes = Codes::after_login(&owner);

    let created = call(
        &server,
        &session,
        "POST",
        "service_accounts/api_keys",
        serde_json::json!({
            "service_account_uid": account,
            "algorithm": "HS256",
            "scope": "trade",
            "totp_code": codes.fresh().await,
        }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body["state"], "active");
    assert_eq!(body["scope"], serde_json::json!(["trade"]));
    let key = TestKey {
        kid: body["kid"].as_str().unwrap().to_string(),
        secret: body["secret"].as_str().unwrap().to_string(),
    };
    // The key is the service account's, not the owner's.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys k JOIN service_accounts s ON s.id = k.key_holder_account_id
             WHERE k.kid = '{}' AND k.key_holder_account_type = 'ServiceAccount' AND s.uid = '{account}'",
            key.kid
        ))
        .await,
        1
    );
    let decided = decide(&server, &key).await;
    assert_eq!(decided.status, 200, "{}", decided.text());

    // Listed without the secret (no TOTP needed), with a Bearer token as with the session.
    let token = bearer(&server, &session).await;
    let listed = Client::new()
        .get(server.resource(&format!(
            "service_accounts/api_keys?service_account_uid={account}"
        )))
        .header("authorization", &token)
        .send()
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.header("total"), Some("1"));
    let list = listed.json();
    assert_eq!(list[0]["kid"], key.kid.as_str());
    assert!(list[0].get("secret").is_none(), "{list}");
    // The owner's own key list does not hold it.
    let own = Client::new()
        .get(server.resource("api_keys"))
        .header("authorization", &token)
        .send()
        .await;
    assert_eq!(own.json(), serde_json::json!([]));

    // Disabled: the gate refuses it at once.
    let updated = call(
        &server,
        &session,
        "PUT",
        &format!("service_accounts/api_keys/{}", key.kid),
        serde_json::json!({
            "service_account_uid": account,
            "state": "disabled",
            "totp_code": codes.fresh().await,
        }),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["state"], "disabled");
    assert!(updated.json().get("secret").is_none());
    let refused = decide(&server, &key).await;
    assert_eq!(refused.status, 401, "{}", refused.text());

    let deleted = call(
        &server,
        &session,
        "DELETE",
        &format!(
            "service_accounts/api_keys/{}?service_account_uid={account}&totp_code={}",
            key.kid,
            codes.fresh().await
        ),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM api_keys WHERE kid = '{}'",
            key.kid
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn every_service_account_key_error_in_barongs_order() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let owner = env.user_with("member", "active", true).await;
    let account = owned_account(&env, owner.id).await;
    let stranger = env.user_with("member", "active", false).await;
    let theirs = owned_account(&env, stranger.id).await;
    let session = server.login(&owner).await;
    let mut codes = Codes::after_login(&owner);
    let post = |body: serde_json::Value| {
        call(&server, &session, "POST", "service_accounts/api_keys", body)
    };

    // Parameters first: every refusal in one answer.
    let missing = post(serde_json::json!({})).await;
    assert_eq!(missing.status, 422, "{}", missing.text());
    let errors = missing.json()["errors"].clone();
    for code in [
        "resource.serviceaccount.missing_service_account_uid",
        "resource.serviceaccount.missing_algorithm",
    ] {
        assert!(
            errors.as_array().unwrap().iter().any(|e| e == code),
            "{code} in {errors}"
        );
    }
    post(serde_json::json!({ "service_account_uid": account, "algorithm": "HS256", "scope": " " }))
        .await
        .assert_error(422, "resource.serviceaccount.empty_scope");

    // Then the account: another owner's is as absent as an unknown one, before any TOTP.
    post(serde_json::json!({ "service_account_uid": theirs, "algorithm": "HS256" }))
        .await
        .assert_error(404, "resource.service_account.doesnt_exist");
    post(serde_json::json!({ "service_account_uid": "SA0000000000", "algorithm": "HS256" }))
        .await
        .assert_error(404, "resource.service_account.doesnt_exist");

    // Then the owner's TOTP.
    post(serde_json::json!({ "service_account_uid": account, "algorithm": "HS256" }))
        .await
        .assert_error(422, "resource.service_accounts.missing_totp");
    post(serde_json::json!({
        "service_account_uid": account, "algorithm": "HS256", "totp_code": codes.wrong(),
    }))
    .await
    .assert_error(422, "resource.service_accounts.invalid_totp");
    post(serde_json::json!({
        "service_account_uid": account, "algorithm": "RS256", "totp_code": codes.fresh().await,
    }))
    .await
    .assert_error(422, "algorithm.inclusion");

    // Listing: ordering codes of this family, and the account check.
    let list = |query: String| {
        let session = &session;
        let server = &server;
        async move {
            Client::new()
                .get(server.resource(&format!("service_accounts/api_keys{query}")))
                .session(session)
                .send()
                .await
        }
    };
    list(format!("?service_account_uid={account}&ordering=up"))
        .await
        .assert_error(422, "resource.service_accounts.invalid_ordering");
    list(format!("?service_account_uid={account}&order_by=secret"))
        .await
        .assert_error(422, "resource.service_accounts.invalid_attribute");
    list(String::new())
        .await
        .assert_error(422, "resource.serviceaccount.missing_service_account_uid");
    list(format!("?service_account_uid={theirs}"))
        .await
        .assert_error(404, "resource.service_account.doesnt_exist");

    // A kid that is not this account's.
    call(
        &server,
        &session,
        "PUT",
        "service_accounts/api_keys/0123456789abcdef",
        serde_json::json!({
            "service_account_uid": account, "state": "disabled", "totp_code": codes.fresh().await,
        }),
    )
    .await
    .assert_error(404, "record.not_found");
    assert_eq!(env.count("SELECT count(*) FROM api_keys").await, 0);

    // An owner without 2FA is refused with this family's code.
    let plain_session = server.login(&stranger).await;
    call(
        &server,
        &plain_session,
        "POST",
        "service_accounts/api_keys",
        serde_json::json!({ "service_account_uid": theirs, "algorithm": "HS256", "totp_code": "123456" }),
    )
    .await
    .assert_error(400, "resource.service_accounts.2fa_disabled");
}

#[tokio::test]
async fn an_owner_leaving_active_disables_their_service_accounts_and_keys() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let owner = env.user_with("member", "active", true).await;
    let account = owned_account(&env, owner.id).await;
    let key = env.api_key(&account).await;
    let bystander = env.service_account("member").await;
    let session = server.login(&owner).await;
    let mut codes = Codes::after_login(&owner);
    let decided = decide(&server, &key).await;
    assert_eq!(decided.status, 200, "{}", decided.text());

    // Deleting the account moves the owner to `deleted`.
    let deleted = call(
        &server,
        &session,
        "DELETE",
        "users/me",
        serde_json::json!({ "password": owner.password, "otp_code": codes.fresh().await }),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM service_accounts WHERE uid = '{account}' AND state = 'disabled'"
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM service_accounts WHERE uid = '{bystander}' AND state = 'active'"
        ))
        .await,
        1,
        "another owner's account is untouched"
    );
    TestEnv::eventually(2000, || async { decide(&server, &key).await.status == 401 }).await;
}
