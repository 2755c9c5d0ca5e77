//! Labels through `/admin/users/labels…`: the KYC review path. A reviewer's label recomputes
//! the level, emits what it means (`system.document.verified` and its mail), decides the
//! profile, and is refused on a superadmin unless the reviewer is one.

use serde_json::json;

use portcullis::config::{KycProvider, StorageKind};

use super::users::{Refusal, admin_change, outbox, staff_of};
use crate::support::multipart::{Form, jpeg};
use crate::support::smtp::{SmtpSink, WAIT};
use crate::support::{Client, TestEnv};

#[tokio::test]
async fn a_review_verifies_documents_raises_the_level_and_mails_the_user() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let server = env.start_with(&sink.mail_config()).await;
    let (compliance, _) = staff_of(&env, &server, "compliance").await;
    let user = env.user("member").await;
    let bystander = env.user("member").await;
    let level = |uid: String| {
        let env = &env;
        async move {
            env.count(&format!(
                "SELECT level::bigint FROM users WHERE uid = '{uid}'"
            ))
            .await
        }
    };

    // The phone is verified and a document waits: the user is in the review queue.
    for (key, value) in [("phone", "verified"), ("document", "pending")] {
        let set = compliance
            .send(
                &server,
                "POST",
                "users/labels/update",
                &json!({ "uid": user.uid, "key": key, "value": value, "scope": "private" }),
            )
            .await;
        assert_eq!(set.status, 201, "{}", set.text());
    }
    assert_eq!(level(user.uid.clone()).await, 2);
    let queue = compliance.get(&server, "users/documents/pending").await;
    assert_eq!(queue.status, 200, "{}", queue.text());
    assert_eq!(
        queue.json().as_array().unwrap().len(),
        1,
        "{}",
        queue.text()
    );
    assert_eq!(queue.json()[0]["uid"], user.uid.as_str());
    assert_eq!(queue.header("total"), Some("1"));
    // The list's filters apply to the queue.
    let filtered = compliance
        .get(
            &server,
            &format!("users/documents/pending?uid={}", bystander.uid),
        )
        .await;
    assert_eq!(filtered.json(), json!([]), "{}", filtered.text());
    compliance
        .get(&server, "users/documents/pending?range=deleted")
        .await
        .assert_error(422, "admin.user.invalid_range");
    let extended = compliance
        .get(&server, "users/documents/pending?extended=true")
        .await;
    assert_eq!(extended.status, 200, "{}", extended.text());
    assert!(
        extended.json()[0]["labels"].is_array(),
        "{}",
        extended.text()
    );

    // Verified: level 3, the system event, the mail, out of the queue.
    let verified = compliance
        .send(
            &server,
            "PUT",
            "users/labels",
            &json!({ "uid": user.uid, "key": "document", "value": "verified", "scope": "private", "description": "Passport checked" }),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text());
    assert_eq!(verified.json()["value"], "verified");
    assert_eq!(verified.json()["description"], "Passport checked");
    assert_eq!(level(user.uid.clone()).await, 3);
    assert_eq!(outbox(&env, "system.document.verified", &user.uid).await, 1);
    assert!(outbox(&env, "model.label.updated", &user.uid).await >= 1);
    let mails = sink.wait_for(&user.email, 1, WAIT).await;
    assert!(
        mails.iter().any(|m| m.text_body().contains("verified")),
        "{:?}",
        mails.iter().map(|m| m.subject()).collect::<Vec<_>>()
    );
    let queue = compliance.get(&server, "users/documents/pending").await;
    assert_eq!(queue.json(), json!([]));
    let change = admin_change(&env, "labels", &user.uid).await;
    assert_eq!(change["before"]["value"], "pending", "{change}");
    assert_eq!(change["after"]["value"], "verified", "{change}");

    // Who holds a label, and how many hold each private one.
    let holders = compliance
        .get(&server, "users/labels?key=document&value=verified")
        .await;
    assert_eq!(holders.status, 200, "{}", holders.text());
    assert_eq!(holders.json().as_array().unwrap().len(), 1);
    assert_eq!(holders.header("total"), Some("1"));
    compliance
        .get(&server, "users/labels?key=document")
        .await
        .assert_errors(422, &["admin.user.missing_value", "admin.user.empty_value"]);
    let counts = compliance.get(&server, "users/labels/list").await;
    assert_eq!(counts.status, 200, "{}", counts.text());
    let counts = counts.json();
    let count_of = |key: &str, value: &str| {
        counts
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key && c["value"] == value)
            .map(|c| c["count"].as_i64().unwrap())
    };
    assert_eq!(count_of("document", "verified"), Some(1));
    // Every test user has its email verified; staff included.
    assert!(count_of("email", "verified").unwrap() >= 3);

    // Deleting the label brings the level down again.
    let deleted = compliance
        .send(
            &server,
            "DELETE",
            &format!("users/labels?uid={}&key=document&scope=private", user.uid),
            &json!({}),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json(), json!(200));
    assert_eq!(level(user.uid.clone()).await, 2);
    compliance
        .send(
            &server,
            "DELETE",
            &format!("users/labels?uid={}&key=document&scope=private", user.uid),
            &json!({}),
        )
        .await
        .assert_error(404, "admin.label.doesnt_exist");
    // Nobody else was touched.
    assert_eq!(level(bystander.uid.clone()).await, 1);
}

#[tokio::test]
async fn a_profile_label_decides_the_profile_and_label_writes_are_checked() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let (admin, _) = staff_of(&env, &server, "admin").await;
    let (superadmin, _) = staff_of(&env, &server, "superadmin").await;
    let boss = env.user("superadmin").await;
    let user = env.user("member").await;
    env.sql(&format!(
        "INSERT INTO profiles (user_id, country, state) VALUES ({}, 'UA', 'submitted')",
        user.id
    ))
    .await;

    let decided = admin
        .send(
            &server,
            "POST",
            "users/labels/update",
            &json!({ "uid": user.uid, "key": "profile", "value": "rejected", "scope": "private" }),
        )
        .await;
    assert_eq!(decided.status, 201, "{}", decided.text());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {} AND state = 'rejected'",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(outbox(&env, "system.profile.rejected", &user.uid).await, 1);
    assert_eq!(outbox(&env, "model.profile.updated", &user.uid).await, 1);

    // A public label, created once.
    let created = admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": " VIP ", "value": "Gold", "description": "Big spender" }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(created.json()["key"], "vip");
    assert_eq!(created.json()["value"], "gold");
    assert_eq!(created.json()["scope"], "public");
    assert_eq!(created.json()["description"], "Big spender");
    assert!(outbox(&env, "model.label.created", &user.uid).await >= 1);
    admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": "vip", "value": "silver" }),
        )
        .await
        .assert_error(422, "key.taken");

    // Model and parameter checks.
    let refused = admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": "a!", "value": "ok-value", "scope": "secret" }),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert_eq!(
        refused.errors(),
        vec!["key.too_short", "key.invalid", "scope.inclusion"]
    );
    admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": "vip" }),
        )
        .await
        .assert_errors(422, &["admin.user.missing_value", "admin.user.empty_value"]);
    admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": "tier", "value": "gold", "description": " " }),
        )
        .await
        .assert_error(422, "admin.user.empty_description");
    admin
        .send(
            &server,
            "PUT",
            "users/labels",
            &json!({ "uid": user.uid, "key": "vip", "value": "gold" }),
        )
        .await
        .assert_errors(422, &["admin.user.missing_scope", "admin.user.empty_scope"]);
    admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": "UNKNOWN000", "key": "vip", "value": "gold" }),
        )
        .await
        .assert_error(404, "admin.user.doesnt_exist");

    admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": "tier", "value": "gold", "description": "a\u{0}b" }),
        )
        .await
        .assert_error(422, "admin.user.invalid_description");

    // Updates need the label unless the legacy write may create it.
    admin
        .send(
            &server,
            "PUT",
            "users/labels",
            &json!({ "uid": user.uid, "key": "tier", "value": "gold", "scope": "public" }),
        )
        .await
        .assert_error(404, "admin.label.doesnt_exist");
    admin
        .send(&server, "POST", "users/labels/update", &json!({ "uid": user.uid, "key": "tier", "value": "gold", "scope": "public", "replace": false }))
        .await
        .assert_error(404, "admin.label.doesnt_exist");
    admin
        .send(&server, "POST", "users/labels/update", &json!({ "uid": user.uid, "key": "tier", "value": "gold", "scope": "public", "replace": "maybe" }))
        .await
        .assert_error(422, "admin.user.non_boolean_replace");
    let updated = admin
        .send(
            &server,
            "PUT",
            "users/labels",
            &json!({ "uid": user.uid, "key": "vip", "value": "platinum", "scope": "public" }),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["value"], "platinum");
    // The description stays when none is given.
    assert_eq!(updated.json()["description"], "Big spender");

    // A trigger label bans at once; only a superadmin labels a superadmin.
    let ban = admin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": user.uid, "key": "ban", "value": "fraud", "scope": "private" }),
        )
        .await;
    assert_eq!(ban.status, 200, "{}", ban.text());
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND state = 'banned'",
            user.id
        ))
        .await,
        1
    );
    for (method, route, body) in [
        (
            "POST",
            "users/labels".to_string(),
            json!({ "uid": boss.uid, "key": "vip", "value": "gold" }),
        ),
        (
            "POST",
            "users/labels/update".to_string(),
            json!({ "uid": boss.uid, "key": "email", "value": "rejected", "scope": "private" }),
        ),
        (
            "PUT",
            "users/labels".to_string(),
            json!({ "uid": boss.uid, "key": "email", "value": "rejected", "scope": "private" }),
        ),
        (
            "DELETE",
            format!("users/labels?uid={}&key=email&scope=private", boss.uid),
            json!({}),
        ),
    ] {
        admin
            .send(&server, method, &route, &body)
            .await
            .assert_error(422, "admin.user.superadmin_change");
    }
    let by_superadmin = superadmin
        .send(
            &server,
            "POST",
            "users/labels",
            &json!({ "uid": boss.uid, "key": "vip", "value": "gold" }),
        )
        .await;
    assert_eq!(by_superadmin.status, 200, "{}", by_superadmin.text());
}

#[tokio::test]
async fn a_reviewer_reads_documents_unmasked_and_downloads_their_files() {
    let env = TestEnv::new().await;
    let dir = std::env::temp_dir().join(format!(
        "portcullis-uploads-{}",
        crate::support::random_suffix()
    ));
    let local = dir.clone();
    let server = env
        .start_adjusted(move |s| {
            s.uploads.storage = StorageKind::Local;
            s.uploads.local_dir = local;
            s.kyc.provider = KycProvider::Local;
        })
        .await;
    let (compliance, _) = staff_of(&env, &server, "compliance").await;
    let (support, _) = staff_of(&env, &server, "support").await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let scan = jpeg(2048);
    let form = Form::new()
        .text("doc_type", "Passport")
        .text("doc_number", "AB 123-456")
        .text("doc_expire", "2099-12-31")
        .file("upload[]", "front.jpg", "image/jpeg", &scan);
    let uploaded = Client::new()
        .post(server.resource("documents"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .header("content-type", &form.content_type())
        .body(form.body())
        .send()
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());

    // Local KYC: the document waits for a reviewer, who reads its number unmasked.
    let queue = compliance.get(&server, "users/documents/pending").await;
    assert_eq!(
        queue.json()[0]["uid"],
        user.uid.as_str(),
        "{}",
        queue.text()
    );
    let read = compliance
        .get(&server, &format!("users/{}", user.uid))
        .await;
    assert_eq!(read.status, 200, "{}", read.text());
    let document = read.json()["documents"][0].clone();
    assert_eq!(document["doc_number"], "AB 123-456");
    let path = document["upload"].as_str().unwrap().to_string();
    assert!(
        path.starts_with("/api/v2/auth/admin/users/documents/") && path.ends_with("/upload"),
        "{path}"
    );

    let file = Client::new()
        .get(server.url(&path))
        .header("authorization", &compliance.bearer)
        .send()
        .await;
    assert_eq!(file.status, 200, "{}", file.text());
    assert_eq!(file.header("content-type"), Some("image/jpeg"));
    assert_eq!(&file.body[..], &scan[..]);
    // Support reads labels and profiles, not documents.
    let refused = Client::new()
        .get(server.url(&path))
        .header("authorization", &support.bearer)
        .send()
        .await;
    refused.assert_error(401, "admin.ability.not_permitted");
    for missing in ["999999", "abc"] {
        compliance
            .get(&server, &format!("users/documents/{missing}/upload"))
            .await
            .assert_error(404, "record.not_found");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
