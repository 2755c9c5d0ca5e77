//! `GET /admin/api_keys`: one account's keys, without secrets, for roles that may read keys.

use super::Staff;
use crate::support::TestEnv;

#[tokio::test]
async fn staff_list_an_accounts_keys_without_secrets_and_every_refusal_has_its_code() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let member = env.user("member").await;
    let first = env.api_key(&member.uid).await;
    let second = env.api_key(&member.uid).await;
    let technical = Staff::new(&env, &server, "technical").await;

    let listed = technical
        .get(
            &server,
            &format!("api_keys?uid={}&ordering=desc", member.uid),
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(listed.header("total"), Some("2"));
    assert_eq!(listed.header("per-page"), Some("100"));
    let kids: Vec<String> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kids, [second.kid.clone(), first.kid.clone()]);
    assert!(!listed.text().contains(&first.secret));
    assert!(listed.json()[0].get("secret").is_none());

    let paged = technical
        .get(
            &server,
            &format!("api_keys?uid={}&ordering=desc&limit=1&page=2", member.uid),
        )
        .await;
    assert_eq!(paged.json()[0]["kid"], first.kid);
    // The links keep the filter.
    let link = paged.header("link").unwrap();
    assert!(
        link.contains(&format!(
            "?uid={}&ordering=desc&page=1&limit=1>; rel=\"first\"",
            member.uid
        )),
        "{link}"
    );

    technical
        .get(&server, "api_keys")
        .await
        .assert_error(422, "admin.apikey.missing_uid");
    technical
        .get(&server, "api_keys?uid=ID0000000000")
        .await
        .assert_error(404, "admin.user.doesnt_exist");
    technical
        .get(&server, &format!("api_keys?uid={}&ordering=up", member.uid))
        .await
        .assert_error(422, "api_keys.ordering.invalid_ordering");
    technical
        .get(
            &server,
            &format!("api_keys?uid={}&order_by=password", member.uid),
        )
        .await
        .assert_error(422, "api_keys.ordering.invalid_attribute");
    technical
        .get(&server, &format!("api_keys?uid={}&limit=0", member.uid))
        .await
        .assert_error(422, "invalid_limit");

    // Compliance reads documents, not keys.
    Staff::new(&env, &server, "compliance")
        .await
        .get(&server, &format!("api_keys?uid={}", member.uid))
        .await
        .assert_error(401, "admin.ability.not_permitted");
}
