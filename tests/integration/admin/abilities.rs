//! `GET /admin/abilities` and `GET /admin/levels`: the abilities of the caller's role decide.

use serde_json::json;

use super::Staff;
use crate::support::TestEnv;

#[tokio::test]
async fn each_role_reads_its_own_abilities_and_only_staff_read_levels() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let support = Staff::new(&env, &server, "support").await;
    let abilities = support.get(&server, "abilities").await;
    assert_eq!(abilities.status, 200, "{}", abilities.text());
    assert_eq!(
        abilities.json(),
        json!({
            "read": ["Ability", "Label", "Level", "Profile", "Activity"],
            "manage": ["User"],
        })
    );
    let levels = support.get(&server, "levels").await;
    assert_eq!(levels.status, 200, "{}", levels.text());
    assert_eq!(
        levels.json()[0],
        json!({ "id": 1, "key": "email", "value": "verified" })
    );

    // A role without abilities: `{}`, and the ability check refuses the model.
    env.sql("INSERT INTO permissions (role, verb, path, action) VALUES ('trader', 'all', 'api/v2/auth/admin', 'accept')")
        .await;
    let trader = Staff::new(&env, &server, "trader").await;
    let none = trader.get(&server, "abilities").await;
    assert_eq!(none.status, 200, "{}", none.text());
    assert_eq!(none.json(), json!({}));
    trader
        .get(&server, "levels")
        .await
        .assert_error(401, "admin.ability.not_permitted");

    // A member never gets past the permissions table.
    let member = Staff::new(&env, &server, "member").await;
    let refused = member.get(&server, "levels").await;
    assert_eq!(refused.status, 401, "{}", refused.text());
}
