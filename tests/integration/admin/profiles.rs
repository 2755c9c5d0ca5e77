//! `/admin/profiles`: every profile for staff, unmasked; a profile created by staff; the
//! review of a submitted one setting the `profile` label, the events and the four-eyes rule.

use serde_json::json;

use super::Staff;
use crate::support::{Client, Server, TestEnv, TestUser};

async fn submit(server: &Server, user: &TestUser) {
    let session = server.login(user).await;
    let submitted = Client::new()
        .post(server.resource("profiles"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .json(&json!({
            "first_name": "Anna", "last_name": "Smith", "dob": "1990-05-17",
            "country": "GB", "city": "London", "confirm": true
        }))
        .send()
        .await;
    assert_eq!(submitted.status, 201, "{}", submitted.text());
}

async fn profile_label(env: &TestEnv, user: &TestUser) -> String {
    env.store
        .client()
        .await
        .unwrap()
        .query_one(
            "SELECT value FROM labels WHERE user_id = $1 AND key = 'profile' AND scope = 'private'",
            &[&user.id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn staff_list_profiles_unmasked_and_a_review_sets_the_label_and_emits_events() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    submit(&server, &member).await;
    let compliance = Staff::new(&env, &server, "compliance").await;

    let listed = compliance.get(&server, "profiles").await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.header("total"), Some("1"));
    let profile = &listed.json()[0];
    assert_eq!(profile["uid"], member.uid);
    assert_eq!(profile["last_name"], "Smith", "unmasked for staff");
    assert_eq!(profile["dob"], "1990-05-17");
    assert_eq!(profile["state"], "submitted");
    assert_eq!(profile["author"], "user");

    let verified = compliance
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": member.uid, "state": "verified" }),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    assert_eq!(verified.json()["state"], "verified");
    assert_eq!(verified.json()["first_name"], "Anna");
    assert_eq!(profile_label(&env, &member).await, "verified");
    assert_eq!(
        env.count("SELECT count(*) FROM event_outbox WHERE name = 'model.profile.updated'")
            .await,
        1
    );
    assert_eq!(
        env.count("SELECT count(*) FROM event_outbox WHERE name = 'system.profile.verified'")
            .await,
        1
    );
    // Only a submitted profile is reviewed.
    compliance
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": member.uid, "state": "rejected" }),
        )
        .await
        .assert_error(404, "admin.profiles.doesnt_exist_or_not_editable");

    let missing = compliance
        .send(&server, "PUT", "profiles", &json!({ "state": "verified" }))
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.errors(),
        ["admin.profile.missing_uid", "admin.profile.empty_uid"]
    );
    compliance
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": "ID0000000000" }),
        )
        .await
        .assert_error(404, "admin.user.doesnt_exist");
    let other = env.user("member").await;
    submit(&server, &other).await;
    compliance
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": other.uid, "state": "approved" }),
        )
        .await
        .assert_error(422, "state.inclusion");
    compliance
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": other.uid, "dob": "3000-01-01" }),
        )
        .await
        .assert_error(422, "dob.in_future");
    let boss = env.user("superadmin").await;
    compliance
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": boss.uid, "state": "verified" }),
        )
        .await
        .assert_error(422, "admin.profiles.superadmin_change");

    // Support reads profiles but does not decide them: the permissions table refuses first,
    // and where a row lets support through, the abilities still do.
    let support = Staff::new(&env, &server, "support").await;
    assert_eq!(support.get(&server, "profiles").await.status, 200);
    let verdict = json!({ "uid": other.uid, "state": "verified" });
    support
        .send(&server, "PUT", "profiles", &verdict)
        .await
        .assert_error(401, "authz.invalid_permission");
    env.sql("INSERT INTO permissions (role, verb, path, action) VALUES ('support', 'put', 'api/v2/auth/admin/profiles', 'accept')")
        .await;
    TestEnv::eventually(2_000, || async {
        support
            .send(&server, "PUT", "profiles", &verdict)
            .await
            .errors()
            == ["admin.ability.not_permitted"]
    })
    .await;
    assert_eq!(profile_label(&env, &other).await, "submitted");
}

#[tokio::test]
async fn a_profile_staff_created_is_verified_by_someone_else_when_four_eyes_are_required() {
    let env = TestEnv::with_config("[kyc]\nprofile_double_verification = true\n").await;
    let server = env.start().await;
    let member = env.user("member").await;
    let admin_user = env.user("admin").await;
    let admin = Staff::new_as(&server, &admin_user).await;

    let created = admin
        .send(
            &server,
            "POST",
            "profiles",
            &json!({ "uid": member.uid, "first_name": "Olga", "last_name": "Ivanova", "country": "UA" }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["state"], "submitted");
    assert_eq!(profile_label(&env, &member).await, "submitted");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {} AND author = '{}'",
            member.id, admin_user.uid
        ))
        .await,
        1
    );
    admin
        .send(&server, "POST", "profiles", &json!({ "uid": member.uid }))
        .await
        .assert_error(422, "state.exists");

    admin
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": member.uid, "state": "verified" }),
        )
        .await
        .assert_error(422, "admin.profiles.second_admin_approval");
    assert_eq!(profile_label(&env, &member).await, "submitted");
    let second = Staff::new(&env, &server, "admin").await;
    let verified = second
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": member.uid, "state": "verified" }),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    assert_eq!(profile_label(&env, &member).await, "verified");

    // Creating is checked too (decisions.md #17): technical reads profiles, and with a row
    // letting it through the table, its abilities still refuse.
    env.sql("INSERT INTO permissions (role, verb, path, action) VALUES ('technical', 'post', 'api/v2/auth/admin/profiles', 'accept')")
        .await;
    let another = env.user("member").await;
    let technical = Staff::new(&env, &server, "technical").await;
    TestEnv::eventually(2_000, || async {
        technical
            .send(&server, "POST", "profiles", &json!({ "uid": another.uid }))
            .await
            .errors()
            == ["admin.ability.not_permitted"]
    })
    .await;
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {}",
            another.id
        ))
        .await,
        0
    );
}
