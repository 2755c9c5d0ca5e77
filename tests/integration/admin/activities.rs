//! `GET /admin/activities` and `/admin/activities/admin`: users' history and the staff log,
//! filtered, paginated, with the users they name.

use serde_json::{Value, json};

use super::Staff;
use crate::support::TestEnv;

/// The rows of a listing that `keep` selects.
fn rows(listing: &Value, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    listing
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| keep(r))
        .cloned()
        .collect()
}

#[tokio::test]
async fn staff_read_a_users_history_with_the_user_and_filters_check_their_input() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    server.login(&member).await;
    let mut wrong = member.clone();
    wrong.password = "Wrong-Password-1".into();
    let failed = crate::support::Client::new()
        .post(server.identity("sessions"))
        .json(&json!({ "email": member.email, "password": wrong.password }))
        .send()
        .await;
    assert_eq!(failed.status, 401, "{}", failed.text());
    let support = Staff::new(&env, &server, "support").await;

    let listed = support
        .get(&server, &format!("activities?uid={}", member.uid))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.header("total"), Some("2"));
    let body = listed.json();
    // Newest first: the failed login, then the successful one; each names the user.
    assert_eq!(body[0]["result"], "failed");
    assert_eq!(body[1]["result"], "succeed");
    assert_eq!(body[0]["topic"], "session");
    assert_eq!(body[0]["action"], "login");
    assert_eq!(body[0]["user"]["uid"], member.uid);
    assert_eq!(body[0]["user"]["email"], member.email);
    assert_eq!(body[0]["user"]["role"], "member");
    assert!(body[0]["user_agent"].is_string());
    assert!(body[0].get("password").is_none());

    let by_email = support
        .get(
            &server,
            &format!("activities?email={}&action=login&limit=1", member.email),
        )
        .await;
    assert_eq!(by_email.header("total"), Some("2"));
    assert_eq!(by_email.json().as_array().unwrap().len(), 1);
    let future = support
        .get(
            &server,
            &format!("activities?uid={}&from=4102444800", member.uid),
        )
        .await;
    assert_eq!(future.status, 200);
    assert_eq!(future.json(), json!([]));
    support
        .get(&server, "activities?from=yesterday")
        .await
        .assert_error(422, "admin.activity.non_integer_from");
    support
        .get(&server, "activities?to=")
        .await
        .assert_error(422, "admin.activity.empty_to");
    support
        .get(&server, "activities?page=0")
        .await
        .assert_error(422, "non_positive_page");

    // Compliance may not read activities; a member never reaches the endpoint.
    Staff::new(&env, &server, "compliance")
        .await
        .get(&server, "activities")
        .await
        .assert_error(401, "admin.ability.not_permitted");
    let refused = Staff::new(&env, &server, "member")
        .await
        .get(&server, "activities")
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text());
}

#[tokio::test]
async fn the_staff_log_names_actor_and_target_and_keeps_before_and_after() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    let session = server.login(&member).await;
    let submitted = crate::support::Client::new()
        .post(server.resource("profiles"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .json(&json!({ "first_name": "Anna", "last_name": "Smith", "confirm": true }))
        .send()
        .await;
    assert_eq!(submitted.status, 201, "{}", submitted.text());
    let boss = env.user("superadmin").await;
    let superadmin = Staff::new_as(&server, &boss).await;
    let reviewed = superadmin
        .send(
            &server,
            "PUT",
            "profiles",
            &json!({ "uid": member.uid, "state": "verified" }),
        )
        .await;
    assert_eq!(reviewed.status, 200, "{}", reviewed.text());

    // Written off the request path: poll briefly.
    let route = format!("activities/admin?target_uid={}&topic=profiles", member.uid);
    let mut found = Vec::new();
    for _ in 0..100 {
        let listed = superadmin.get(&server, &route).await;
        assert_eq!(listed.status, 200, "{}", listed.text());
        found = rows(&listed.json(), |_| true);
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found.len(), 1, "{found:?}");
    let entry = &found[0];
    assert_eq!(entry["action"], "update");
    assert_eq!(entry["result"], "succeed");
    assert_eq!(entry["admin"]["uid"], boss.uid);
    assert_eq!(entry["target"]["uid"], member.uid);
    let data: Value = serde_json::from_str(entry["data"].as_str().unwrap()).unwrap();
    assert_eq!(data["before"]["state"], "submitted");
    assert_eq!(data["after"]["state"], "verified");
    assert!(
        !entry["data"].as_str().unwrap().contains("Smith"),
        "no personal data"
    );

    superadmin
        .get(&server, "activities/admin?range=updated")
        .await
        .assert_error(422, "admin.activity.invalid_range");
    // The permissions table keeps plain admins out of the staff log: through the gate (a
    // session here; behind Envoy, its decision before the token is minted).
    let admin_user = env.user("admin").await;
    let session = server.login(&admin_user).await;
    let through_gate = |route: &str| {
        crate::support::Client::new()
            .get(server.admin(route))
            .session(&session)
            .send()
    };
    through_gate("activities/admin")
        .await
        .assert_error(401, "authz.invalid_permission");
    assert_eq!(through_gate("activities").await.status, 200);
    // With a token minted for another path, the table still decides.
    Staff::new_as(&server, &admin_user)
        .await
        .get(&server, "activities/admin")
        .await
        .assert_error(401, "authz.invalid_permission");
}
