//! The resource API (`/api/v2/auth/resource/…`): the user's own account, reached with a
//! session (through the gate, CSRF included) or with a Bearer token we minted (as Envoy
//! forwards it), with the same answers either way.

use crate::support::{Client, Server, Session, TestEnv, TestUser, UA};

const BALANCES: &str = "/api/v2/peatio/account/balances";

/// A token the decision endpoint mints for this session, as Envoy would forward it.
pub async fn bearer(server: &Server, session: &Session) -> String {
    let decided = Client::new()
        .get(server.decision(BALANCES))
        .session(session)
        .send()
        .await;
    assert_eq!(decided.status, 200, "{}", decided.text());
    decided.header("authorization").unwrap().to_string()
}

async fn outbox(env: &TestEnv, name: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM event_outbox WHERE name = '{name}'"
    ))
    .await
}

#[tokio::test]
async fn the_current_user_is_read_with_a_session_or_a_bearer_token() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;

    let by_session = Client::new()
        .get(server.resource("users/me"))
        .session(&session)
        .send()
        .await;
    assert_eq!(by_session.status, 200, "{}", by_session.text());
    let body = by_session.json();
    assert_eq!(body["email"], user.email.as_str());
    assert_eq!(body["uid"], user.uid.as_str());
    assert!(body.get("csrf_token").is_none(), "{body}");

    let token = bearer(&server, &session).await;
    let by_token = Client::new()
        .get(server.resource("users/me"))
        .header("authorization", &token)
        .send()
        .await;
    assert_eq!(by_token.status, 200, "{}", by_token.text());
    assert_eq!(by_token.json(), body);

    // Barong's answers without a usable credential.
    Client::new()
        .get(server.resource("users/me"))
        .send()
        .await
        .assert_error(401, "jwt.decode_and_verify");
    Client::new()
        .get(server.resource("users/me"))
        .header("authorization", "Bearer not.a.token")
        .send()
        .await
        .assert_error(401, "jwt.decode_and_verify");
    Client::new()
        .get(server.resource("users/me"))
        .header("cookie", "_barong_session=forged")
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
    // A token for a user who no longer exists names nobody.
    env.sql(&format!("DELETE FROM users WHERE uid = '{}'", user.uid))
        .await;
    Client::new()
        .get(server.resource("users/me"))
        .header("authorization", &token)
        .send()
        .await
        .assert_error(404, "record.not_found");
}

#[tokio::test]
async fn data_is_set_as_json_text_and_a_session_needs_its_csrf_token() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let put = |body: serde_json::Value, csrf: Option<&str>| {
        let mut request = Client::new()
            .request("PUT", server.resource("users/me"))
            .session(&session)
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        request.send()
    };
    put(serde_json::json!({ "data": "{\"language\":\"ru\"}" }), None)
        .await
        .assert_error(401, "authz.missing_csrf_token");
    put(
        serde_json::json!({ "data": "{not json" }),
        Some(&session.csrf),
    )
    .await
    .assert_error(422, "data.invalid_format");
    let missing = put(serde_json::json!({}), Some(&session.csrf)).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        ["resource.user.missing_data", "resource.user.empty_data"]
    );

    let updated = put(
        serde_json::json!({ "data": "{\"language\":\"ru\"}" }),
        Some(&session.csrf),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["data"], "{\"language\":\"ru\"}");
    // Barong publishes the update though its record does not show `data`.
    assert_eq!(outbox(&env, "model.user.updated").await, 1);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE uid = '{}' AND data = '{{\"language\":\"ru\"}}'",
            user.uid
        ))
        .await,
        1
    );
}

async fn change_password(
    server: &Server,
    session: &Session,
    old: &str,
    new: &str,
    confirm: &str,
) -> crate::support::Response {
    Client::new()
        .request("PUT", server.resource("users/password"))
        .session(session)
        .header("x-csrf-token", &session.csrf)
        .json(&serde_json::json!({
            "old_password": old, "new_password": new, "confirm_password": confirm,
        }))
        .send()
        .await
}

#[tokio::test]
async fn a_password_change_checks_the_old_one_and_ends_the_other_sessions() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let here = server.login(&user).await;
    let elsewhere = server.login(&user).await;
    let new = "Oox8ohNgae!x7";

    change_password(&server, &here, &user.password, new, "different")
        .await
        .assert_error(422, "resource.password.doesnt_match");
    change_password(&server, &here, "Wrong-password1!", new, new)
        .await
        .assert_error(400, "resource.password.prev_pass_not_correct");
    change_password(
        &server,
        &here,
        &user.password,
        &user.password,
        &user.password,
    )
    .await
    .assert_error(400, "resource.password.no_change_provided");
    change_password(&server, &here, &user.password, "short", "short")
        .await
        .assert_error(422, "password.requirements");
    let blank = change_password(&server, &here, "", "", "").await;
    assert_eq!(
        blank.errors(),
        [
            "resource.user.empty_old_password",
            "resource.user.empty_new_password",
            "resource.user.empty_confirm_password"
        ]
    );
    let failed = format!(
        "SELECT count(*) FROM activities a JOIN users u ON u.id = a.user_id
         WHERE u.uid = '{}' AND a.topic = 'password' AND a.result = 'failed'",
        user.uid
    );
    assert_eq!(env.count(&failed).await, 3);

    let changed = change_password(&server, &here, &user.password, new, new).await;
    assert_eq!(changed.status, 201, "{}", changed.text());
    assert_eq!(outbox(&env, "system.user.password.change").await, 1);
    // This session goes on; the other one ended (decisions.md #13).
    let me = |session: &Session| {
        Client::new()
            .get(server.resource("users/me"))
            .session(session)
            .send()
    };
    assert_eq!(me(&here).await.status, 200);
    me(&elsewhere)
        .await
        .assert_error(401, "authz.invalid_session");
    // The new password opens sessions; the old one does not.
    let renamed = TestUser {
        password: new.to_string(),
        ..user.clone()
    };
    server.login(&renamed).await;
    let old = Client::new()
        .post(server.identity("sessions"))
        .header("user-agent", UA)
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(old.status, 401, "{}", old.text());
}

#[tokio::test]
async fn users_manage_their_public_labels_and_only_read_private_ones() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let call = |method: &str, route: &str, body: Option<serde_json::Value>| {
        let mut request = Client::new()
            .request(method, server.resource(route))
            .session(&session)
            .header("x-csrf-token", &session.csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    let created = call(
        "POST",
        "labels",
        Some(serde_json::json!({ "key": "Trader  Tier", "value": "gold" })),
    )
    .await;
    assert_eq!(created.status, 422, "{}", created.text());
    assert_eq!(created.errors(), ["key.invalid"]);
    let created = call(
        "POST",
        "labels",
        Some(serde_json::json!({ "key": "Tier", "value": "Gold" })),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let label = created.json();
    assert_eq!(
        (
            label["key"].as_str(),
            label["value"].as_str(),
            label["scope"].as_str()
        ),
        (Some("tier"), Some("gold"), Some("public"))
    );
    call(
        "POST",
        "labels",
        Some(serde_json::json!({ "key": "tier", "value": "silver" })),
    )
    .await
    .assert_error(422, "key.taken");
    call(
        "POST",
        "labels",
        Some(serde_json::json!({ "key": "ab", "value": "gold" })),
    )
    .await
    .assert_error(422, "key.too_short");
    assert_eq!(outbox(&env, "model.label.created").await, 1);

    // A private label (the system's) is listed but cannot be changed or removed.
    env.sql(&format!(
        "INSERT INTO labels (user_id, key, value, scope) VALUES ({}, 'kyc', 'verified', 'private')",
        user.id
    ))
    .await;
    let listed = call("GET", "labels?ordering=desc", None).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let keys: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}:{}",
                l["key"].as_str().unwrap(),
                l["scope"].as_str().unwrap()
            )
        })
        .collect();
    assert!(keys.contains(&"tier:public".to_string()), "{keys:?}");
    assert!(keys.contains(&"kyc:private".to_string()), "{keys:?}");
    call("GET", "labels?ordering=sideways", None)
        .await
        .assert_error(422, "resource.labels.invalid_ordering");
    assert_eq!(
        call("GET", "labels/kyc", None).await.json()["value"],
        "verified"
    );
    call("GET", "labels/nothing", None)
        .await
        .assert_error(404, "record.not_found");
    call(
        "PATCH",
        "labels/kyc",
        Some(serde_json::json!({ "value": "rejected" })),
    )
    .await
    .assert_error(400, "resource.labels.private");
    call("DELETE", "labels/kyc", None)
        .await
        .assert_error(400, "resource.labels.private");

    let patched = call(
        "PATCH",
        "labels/tier",
        Some(serde_json::json!({ "value": "Platinum" })),
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["value"], "platinum");
    assert_eq!(outbox(&env, "model.label.updated").await, 1);
    let deleted = call("DELETE", "labels/tier", None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    call("GET", "labels/tier", None)
        .await
        .assert_error(404, "record.not_found");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM labels WHERE user_id = {} AND key = 'tier'",
            user.id
        ))
        .await,
        0
    );
}

#[tokio::test]
async fn the_history_lists_the_users_own_activities_page_by_page() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let get = |route: &str| {
        Client::new()
            .get(server.resource(route))
            .session(&session)
            .send()
    };
    get("users/activity/password")
        .await
        .assert_error(422, "resource.user.no_activity");
    get("users/activity/everything")
        .await
        .assert_error(422, "resource.user.wrong_topic");
    get("users/activity/all?time_from=yesterday")
        .await
        .assert_error(422, "resource.user.non_integer_time_from");
    get("users/activity/all?limit=500")
        .await
        .assert_error(422, "invalid_limit");
    // Three failed password changes, after the login's session activity.
    for _ in 0..3 {
        change_password(
            &server,
            &session,
            "Wrong-password1!",
            "Oox8ohNgae!x7",
            "Oox8ohNgae!x7",
        )
        .await
        .assert_error(400, "resource.password.prev_pass_not_correct");
    }
    let all = get("users/activity/all").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.header("total"), Some("4"));
    let password = get("users/activity/password?limit=2&page=1").await;
    assert_eq!(password.status, 200, "{}", password.text());
    assert_eq!(password.header("total"), Some("3"));
    assert_eq!(password.header("per-page"), Some("2"));
    assert!(password.header("link").unwrap().contains("rel=\"next\""));
    let entries = password.json();
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries[0]["id"].as_i64() > entries[1]["id"].as_i64(),
        "newest first"
    );
    assert_eq!(entries[0]["topic"], "password");
    assert_eq!(entries[0]["result"], "failed");
    assert_eq!(entries[0]["user_agent"], UA);
    let second = get("users/activity/password?limit=2&page=2").await.json();
    assert_eq!(second.as_array().unwrap().len(), 1);
    get("users/activity/password?result=succeed")
        .await
        .assert_error(422, "resource.user.no_activity");
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_a_code_and_ends_every_session() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user_with("member", "active", true).await;
    let session = server.login(&user).await;
    let delete = |body: serde_json::Value| {
        Client::new()
            .request("DELETE", server.resource("users/me"))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .json(&body)
            .send()
    };
    delete(serde_json::json!({ "password": "Wrong-password1!" }))
        .await
        .assert_error(422, "resource.user.invalid_password");
    let missing = delete(serde_json::json!({ "password": user.password })).await;
    assert_eq!(
        missing.errors(),
        [
            "resource.user.missing_otp_code",
            "resource.user.empty_otp_code"
        ]
    );
    delete(serde_json::json!({ "password": user.password, "otp_code": "000000" }))
        .await
        .assert_error(422, "resource.user.invalid_otp");

    let deleted = delete(
        serde_json::json!({ "password": user.password, "otp_code": user.otp_code_steps_ahead(1) }),
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE uid = '{}' AND state = 'deleted'",
            user.uid
        ))
        .await,
        1
    );
    assert_eq!(outbox(&env, "system.user.account.deleted").await, 1);
    Client::new()
        .get(server.resource("users/me"))
        .session(&session)
        .send()
        .await
        .assert_error(401, "authz.invalid_session");
}

#[tokio::test]
async fn stored_data_mails_its_owner_a_notice_without_the_data() {
    use crate::support::smtp::{self, SmtpSink, WAIT};
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&smtp::mail_config(sink.port())).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let stored = Client::new()
        .post(server.resource("data_storage"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .json(&serde_json::json!({ "title": "Personal", "data": "{\"tax_id\":\"<b>1</b>\"}" }))
        .send()
        .await;
    assert_eq!(stored.status, 201, "{}", stored.text());
    let mail = sink.wait_for(&user.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Account Data Recorded");
    assert!(
        mail.text_body().contains("\"Personal\""),
        "{}",
        mail.text_body()
    );
    assert!(mail.text_body().contains(&user.email));
    // The data itself is never mailed.
    assert!(!mail.text_body().contains("tax_id"));
    assert!(!mail.html_body().contains("tax_id"));
}

#[tokio::test]
async fn data_is_stored_under_the_configured_titles_once_each() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let store = |title: &str, data: &str| {
        Client::new()
            .post(server.resource("data_storage"))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .json(&serde_json::json!({ "title": title, "data": data }))
            .send()
    };
    store("phone", "{}")
        .await
        .assert_error(422, "title.exclusion");
    store("diary", "{}")
        .await
        .assert_error(422, "title.inclusion");
    store("personal", "{nope")
        .await
        .assert_error(422, "data.invalid_format");

    let stored = store("Personal", "{\"tax_id\":\"123\"}").await;
    assert_eq!(stored.status, 201, "{}", stored.text());
    assert_eq!(stored.json()["title"], "Personal");
    assert_eq!(stored.json()["data"], "{\"tax_id\":\"123\"}");
    store("personal", "{}")
        .await
        .assert_error(422, "title.taken");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM labels WHERE user_id = {} AND key = 'personal'
             AND value = 'recorded' AND scope = 'private'",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(outbox(&env, "model.data_storage.created").await, 1);
    // The user's record carries it.
    let me = Client::new()
        .get(server.resource("users/me"))
        .session(&session)
        .send()
        .await
        .json();
    assert_eq!(me["data_storages"][0]["title"], "Personal");
}

#[tokio::test]
async fn owners_list_their_own_service_accounts_only() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let owner = env.user("member").await;
    let mine = env.service_account("sa_maker").await;
    let someone_elses = env.service_account("sa_maker").await;
    env.sql(&format!(
        "UPDATE service_accounts SET owner_id = {} WHERE uid = '{mine}'",
        owner.id
    ))
    .await;
    let session = server.login(&owner).await;
    let listed = Client::new()
        .get(server.resource("service_accounts"))
        .session(&session)
        .send()
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let body = listed.json();
    let uids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|sa| sa["uid"].as_str().unwrap())
        .collect();
    assert_eq!(uids, [mine.as_str()]);
    assert!(!uids.contains(&someone_elses.as_str()));
    assert_eq!(body[0]["role"], "sa_maker");
    assert_eq!(body[0]["state"], "active");
}

#[tokio::test]
async fn a_password_change_and_a_deleted_account_are_emailed() {
    use crate::support::smtp::{SmtpSink, WAIT};
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&sink.mail_config()).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let new = "Oox8ohNgae!x7";
    let changed = change_password(&server, &session, &user.password, new, new).await;
    assert_eq!(changed.status, 201, "{}", changed.text());
    let mail = sink.wait_for(&user.email, 1, WAIT).await.remove(0);
    assert_eq!(mail.subject(), "Password Changed");
    assert!(mail.text_body().contains(&user.email));

    let deleted = Client::new()
        .request("DELETE", server.resource("users/me"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .json(&serde_json::json!({ "password": new }))
        .send()
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let mails = sink.wait_for(&user.email, 2, WAIT).await;
    assert_eq!(mails[1].subject(), "Account Deleted");
}

#[tokio::test]
async fn concurrent_profile_creations_leave_exactly_one_open_profile() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let create = || {
        Client::new()
            .post(server.resource("profiles"))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .json(&serde_json::json!({ "first_name": "Anna", "country": "GB" }))
            .send()
    };
    let answers = futures_util::future::join_all((0..6).map(|_| create())).await;
    let created = answers.iter().filter(|a| a.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers.iter().map(|a| a.text()).collect::<Vec<_>>()
    );
    for refused in answers.iter().filter(|a| a.status != 201) {
        refused.assert_error(422, "state.exists");
    }
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {}",
            user.id
        ))
        .await,
        1
    );
}

#[tokio::test]
async fn a_profile_is_drafted_then_submitted_sealed_at_rest_and_shown_masked() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let call = |method: &str, route: &str, body: serde_json::Value| {
        Client::new()
            .request(method, server.resource(route))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .json(&body)
            .send()
    };
    call("PUT", "profiles", serde_json::json!({ "city": "London" }))
        .await
        .assert_error(404, "resource.profile.doesnt_exist_or_not_editable");
    let refused = call(
        "POST",
        "profiles",
        serde_json::json!({ "first_name": "R2<D2>", "country": "XX", "dob": "2999-01-01" }),
    )
    .await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(
        refused.errors(),
        [
            "first_name.invalid",
            "dob.in_future",
            "country.must have alpha2 or alpha3 format"
        ]
    );

    let drafted = call(
        "POST",
        "profiles",
        serde_json::json!({ "first_name": "Anna", "last_name": "Smith", "dob": "1990-05-17", "country": "GB" }),
    )
    .await;
    assert_eq!(drafted.status, 201, "{}", drafted.text());
    let body = drafted.json();
    assert_eq!(body["state"], "drafted");
    assert_eq!(body["first_name"], "Anna");
    assert_eq!(body["last_name"], "S****", "masked");
    assert_eq!(body["dob"], "1990-05-**", "masked");
    call(
        "POST",
        "profiles",
        serde_json::json!({ "first_name": "Bob" }),
    )
    .await
    .assert_error(422, "state.exists");
    // Sealed at rest: the clear text is nowhere in the row.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {} AND last_name_encrypted NOT LIKE '%Smith%'
             AND dob_encrypted NOT LIKE '%1990%'",
            user.id
        ))
        .await,
        1
    );

    let submitted = call(
        "PUT",
        "profiles",
        serde_json::json!({ "city": "London", "confirm": true }),
    )
    .await;
    assert_eq!(submitted.status, 200, "{}", submitted.text());
    assert_eq!(submitted.json()["state"], "submitted");
    assert_eq!(submitted.json()["city"], "London");
    assert_eq!(submitted.json()["first_name"], "Anna", "kept");
    call("PUT", "profiles", serde_json::json!({ "city": "Leeds" }))
        .await
        .assert_error(404, "resource.profile.doesnt_exist_or_not_editable");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM labels WHERE user_id = {} AND key = 'profile'
             AND value = 'submitted' AND scope = 'private'",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(outbox(&env, "model.profile.created").await, 1);
    assert_eq!(outbox(&env, "model.profile.updated").await, 1);
    let mine = Client::new()
        .get(server.resource("profiles/me"))
        .session(&session)
        .send()
        .await;
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert_eq!(mine.json()[0]["state"], "submitted");
}

#[tokio::test]
async fn activities_record_the_callers_address_country_and_browser() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let login = Client::new()
        .post(server.url("/api/v2/auth/identity/sessions"))
        .header("user-agent", UA)
        .header("x-forwarded-for", "81.2.69.160")
        .json(&serde_json::json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT user_ip, user_ip_country, user_agent, topic, action, result FROM activities
             WHERE user_id = $1",
            &[&user.id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "81.2.69.160");
    assert_eq!(
        row.get::<_, Option<String>>(1).as_deref(),
        Some("United Kingdom")
    );
    assert_eq!(row.get::<_, String>(2), UA);
    assert_eq!(
        (
            row.get::<_, String>(3),
            row.get::<_, String>(4),
            row.get::<_, String>(5)
        ),
        ("session".into(), "login".into(), "succeed".into())
    );
    // An address the database does not know records no country rather than a wrong one.
    let unknown = server.login(&user).await;
    let listed = Client::new()
        .get(server.resource("users/activity/session"))
        .session(&unknown)
        .send()
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let entries = listed.json();
    assert_eq!(entries[0]["user_ip"], "127.0.0.1");
    assert!(entries[0]["user_ip_country"].is_null(), "{entries}");
    assert_eq!(entries[1]["user_ip_country"], "United Kingdom");
}
