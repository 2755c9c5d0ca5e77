//! `GET /admin/metrics`: sign-ups and logins per day in a window that its parameters set,
//! and the applications waiting for review.

use serde_json::json;

use super::Staff;
use crate::support::TestEnv;

#[tokio::test]
async fn metrics_count_per_day_within_the_window_and_refuse_bad_bounds() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    // Two days of history, then one event far outside the window.
    env.sql(&format!(
        "INSERT INTO activities (user_id, category, user_ip, user_agent, topic, action, result, created_at) VALUES
         ({id}, 'user', '1.2.3.4', 'ua', 'account', 'signup', 'succeed', '2024-03-01 10:00:00+00'),
         ({id}, 'user', '1.2.3.4', 'ua', 'account', 'signup', 'succeed', '2024-03-01 23:59:00+00'),
         ({id}, 'user', '1.2.3.4', 'ua', 'session', 'login', 'succeed', '2024-03-02 08:00:00+00'),
         ({id}, 'user', '1.2.3.4', 'ua', 'session', 'login', 'failed', '2024-03-02 09:00:00+00'),
         ({id}, 'user', '1.2.3.4', 'ua', 'session', 'login::2fa', 'succeed', '2024-03-02 09:30:00+00'),
         ({id}, 'user', '1.2.3.4', 'ua', 'account', 'signup', 'succeed', '2023-01-01 00:00:00+00');
         INSERT INTO labels (user_id, key, value, scope) VALUES ({id}, 'document', 'pending', 'private');",
        id = member.id
    ))
    .await;
    let support = Staff::new(&env, &server, "support").await;

    let window = support
        .get(
            &server,
            "metrics?created_from=2024-03-01&created_to=2024-03-02",
        )
        .await;
    assert_eq!(window.status, 200, "{}", window.text());
    assert_eq!(
        window.json(),
        json!({
            "signups": { "2024-03-01": 2 },
            "sucessful_logins": { "2024-03-02": 1 },
            "failed_logins": { "2024-03-02": 1 },
            "pending_applications": 1,
        })
    );
    // Unix seconds work too: 2024-03-02 00:00 UTC onwards.
    let seconds = support
        .get(
            &server,
            "metrics?created_from=1709337600&created_to=1709424000",
        )
        .await;
    assert_eq!(seconds.json()["signups"], json!({}));
    assert_eq!(
        seconds.json()["sucessful_logins"],
        json!({ "2024-03-02": 1 })
    );

    support
        .get(&server, "metrics?created_from=March")
        .await
        .assert_error(422, "admin.metrics.invalid_created_from");
    support
        .get(&server, "metrics?created_to=2024-02-30")
        .await
        .assert_error(422, "admin.metrics.invalid_created_to");
    support
        .get(
            &server,
            "metrics?created_from=2024-03-02&created_to=2024-03-01",
        )
        .await
        .assert_error(422, "admin.metrics.invalid_range");
    // The default window is the last week: the 2024 history is outside it.
    let recent = support.get(&server, "metrics").await;
    assert_eq!(recent.status, 200, "{}", recent.text());
    assert_eq!(recent.json()["failed_logins"], json!({}));

    // A role the permissions table lets in but whose abilities do not cover users.
    env.sql("INSERT INTO permissions (role, verb, path, action) VALUES ('trader', 'get', 'api/v2/auth/admin', 'accept')")
        .await;
    Staff::new(&env, &server, "trader")
        .await
        .get(&server, "metrics")
        .await
        .assert_error(401, "admin.ability.not_permitted");
}
