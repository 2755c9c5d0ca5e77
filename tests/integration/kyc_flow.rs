//! The KYC flow with KYCAID (a local fake of its API): a submitted profile becomes an applicant,
//! KYCAID being down delays it without duplicating it, document batches are uploaded and
//! verified, and KYCAID's completed verifications (announced by signed callbacks) set the
//! `document` and `profile` labels, the level, the events and the emails, which the gate sees
//! at once. Local KYC and a missing token send nothing.

use std::time::Duration;

use portcullis::domain::kyc::KycJob;
use portcullis::services::kyc::{DocumentFile, DocumentFiles, KycWorker, PostalAddress};
use portcullis::store;
use serde_json::{Value, json};

use crate::support::kycaid::{FakeKycaid, TOKEN};
use crate::support::smtp::{SmtpSink, WAIT};
use crate::support::{Client, Server, Session, TestEnv, TestUser, jwt_claims, random_suffix};

const CALLBACK: &str = "/api/v2/auth/public/kyc";
const BALANCES: &str = "/api/v2/peatio/account/balances";

/// Submits a profile for `user` (through the gate, with the session and CSRF).
async fn submit_profile(server: &Server, session: &Session) -> Value {
    let submitted = Client::new()
        .post(server.resource("profiles"))
        .session(session)
        .header("x-csrf-token", &session.csrf)
        .json(&json!({
            "first_name": "Anna", "last_name": "Smith", "dob": "1990-05-17",
            "country": "GB", "city": "London", "confirm": true
        }))
        .send()
        .await;
    assert_eq!(submitted.status, 201, "{}", submitted.text());
    assert_eq!(submitted.json()["state"], "submitted");
    submitted.json()
}

/// The applicant id saved on the user's profile, once there is one.
async fn applicant_of(env: &TestEnv, user: &TestUser) -> String {
    let mut found = None;
    for _ in 0..250 {
        let client = env.store.client().await.unwrap();
        found = store::users::applicant_id(&client, user.id).await.unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    found.expect("the applicant id is saved within 5 s")
}

async fn label(env: &TestEnv, user: &TestUser, key: &str) -> Option<String> {
    let client = env.store.client().await.unwrap();
    client
        .query_opt(
            "SELECT value FROM labels WHERE user_id = $1 AND key = $2 AND scope = 'private'",
            &[&user.id, &key],
        )
        .await
        .unwrap()
        .map(|r| r.get(0))
}

async fn outbox(env: &TestEnv, name: &str) -> Vec<Value> {
    let client = env.store.client().await.unwrap();
    client
        .query(
            "SELECT payload FROM event_outbox WHERE name = $1 ORDER BY id",
            &[&name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Posts a callback as KYCAID signs it.
async fn callback(server: &Server, body: &Value) -> u16 {
    let body = body.to_string();
    let signature = portcullis::authn::kycaid::sign(TOKEN, body.as_bytes());
    Client::new()
        .post(server.url(CALLBACK))
        .header("content-type", "application/json")
        .header("x-data-integrity", &signature)
        .body(body.into_bytes())
        .send()
        .await
        .status
}

fn completed(applicant_id: &str, verification_id: &str) -> Value {
    json!({
        "type": "VERIFICATION_COMPLETED",
        "request_id": format!("{}{}", random_suffix(), random_suffix()),
        "applicant_id": applicant_id,
        "verification_id": verification_id,
        "status": "completed",
        "verified": true,
    })
}

/// The level in the JWT the gate mints for the session.
async fn level_in_token(server: &Server, session: &Session) -> Value {
    let answer = Client::new()
        .get(server.decision(BALANCES))
        .session(session)
        .send()
        .await;
    let bearer = answer
        .header("authorization")
        .expect("the gate allows")
        .to_string();
    jwt_claims(bearer.strip_prefix("Bearer ").unwrap())["level"].clone()
}

/// A user at level 2 (email and phone verified) with a submitted profile KYCAID knows.
async fn applicant_user(env: &TestEnv, server: &Server) -> (TestUser, Session, String) {
    let user = env.user("member").await;
    let client = env.store.client().await.unwrap();
    let settings = &server.app.settings.users;
    store::labels::set(&client, settings, user.id, "phone", "verified", "private")
        .await
        .unwrap();
    let session = server.login(&user).await;
    submit_profile(server, &session).await;
    let applicant = applicant_of(env, &user).await;
    (user, session, applicant)
}

async fn job_done(env: &TestEnv, kind: &str, user: &TestUser) {
    let query = format!(
        "SELECT count(*) FROM kyc_jobs WHERE kind = '{kind}' AND user_id = {} AND done_at IS NOT NULL",
        user.id
    );
    TestEnv::eventually(5_000, || {
        let query = query.clone();
        async move { env.count(&query).await == 1 }
    })
    .await;
}

#[tokio::test]
async fn a_submitted_profile_becomes_a_kycaid_applicant_and_keeps_its_id() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let server = env.start_with(&kycaid.config()).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    submit_profile(&server, &session).await;

    let applicant = applicant_of(&env, &user).await;
    let created = kycaid.requests_to("POST", "/applicants");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].content_type, "application/json");
    assert_eq!(
        created[0].json(),
        json!({
            "type": "PERSON", "first_name": "Anna", "last_name": "Smith", "dob": "1990-05-17",
            "residence_country": "GB", "email": user.email, "external_applicant_id": user.uid,
        })
    );
    assert_eq!(applicant, "applicant-1");
    job_done(&env, "applicant", &user).await;
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE attempts = 0 AND last_error IS NULL")
            .await,
        1
    );
    assert_eq!(kycaid.state.lock().unwrap().unauthorized, 0);

    // A later profile updates the same applicant rather than making a second one.
    env.sql(&format!(
        "UPDATE profiles SET state = 'rejected' WHERE user_id = {}",
        user.id
    ))
    .await;
    submit_profile(&server, &session).await;
    TestEnv::eventually(5_000, || async {
        kycaid.requests_to("PATCH", "/applicants/applicant-1").len() == 1
    })
    .await;
    assert_eq!(kycaid.requests_to("POST", "/applicants").len(), 1);
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {} AND applicant_id = 'applicant-1'",
            user.id
        ))
        .await,
        2
    );
}

#[tokio::test]
async fn while_kycaid_is_down_the_job_is_retried_and_sent_once_when_it_returns() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    kycaid.set(|s| s.down = true);
    let server = env.start_with(&kycaid.config()).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    submit_profile(&server, &session).await;

    TestEnv::eventually(5_000, || async {
        env.count(
            "SELECT count(*) FROM kyc_jobs WHERE attempts >= 2 AND done_at IS NULL
             AND last_error LIKE '%HTTP 503%' AND next_attempt_at > created_at",
        )
        .await
            == 1
    })
    .await;
    assert!(kycaid.requests().is_empty());
    let client = env.store.client().await.unwrap();
    assert_eq!(
        store::users::applicant_id(&client, user.id).await.unwrap(),
        None
    );

    kycaid.set(|s| s.down = false);
    applicant_of(&env, &user).await;
    job_done(&env, "applicant", &user).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        kycaid.requests_to("POST", "/applicants").len(),
        1,
        "no duplicate"
    );
}

#[tokio::test]
async fn kycaid_refusing_the_details_rejects_the_profile() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    kycaid.set(|s| s.refuse_applicants = true);
    let server = env.start_with(&kycaid.config()).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    submit_profile(&server, &session).await;
    job_done(&env, "applicant", &user).await;
    assert_eq!(
        env.count(
            "SELECT count(*) FROM kyc_jobs WHERE last_error = \
             'POST /applicants: HTTP 422 (validation: residence_country)'"
        )
        .await,
        1,
        "the reason names the parameter, not KYCAID's message"
    );
    assert_eq!(
        label(&env, &user, "profile").await.as_deref(),
        Some("rejected")
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {} AND state = 'rejected'",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(outbox(&env, "system.profile.rejected").await.len(), 1);
}

#[tokio::test]
async fn a_completed_verification_verifies_the_labels_and_the_gate_sees_the_new_level() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let server = env
        .start_with(&format!("{}\n{}", kycaid.config(), sink.mail_config()))
        .await;
    let (user, session, applicant) = applicant_user(&env, &server).await;
    assert_eq!(level_in_token(&server, &session).await, 2);

    kycaid.set(|s| {
        s.verifications.insert(
            "verification-9".into(),
            json!({
                "verification_id": "verification-9", "applicant_id": applicant,
                "status": "completed", "verified": true,
                "verifications": {
                    "profile": { "verified": true, "comment": "" },
                    "document": { "verified": true, "comment": "" },
                    "facial": { "verified": true, "comment": "" }
                }
            }),
        );
    });
    let body = completed(&applicant, "verification-9");
    assert_eq!(callback(&server, &body).await, 200);
    job_done(&env, "verification", &user).await;

    assert_eq!(
        label(&env, &user, "document").await.as_deref(),
        Some("verified")
    );
    assert_eq!(
        label(&env, &user, "profile").await.as_deref(),
        Some("verified")
    );
    assert_eq!(label(&env, &user, "address").await, None, "not checked");
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND level = 3 AND state = 'active'",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM profiles WHERE user_id = {} AND state = 'verified'",
            user.id
        ))
        .await,
        1
    );
    // The gate's next token carries the new level.
    TestEnv::eventually(300, || async {
        level_in_token(&server, &session).await == 3
    })
    .await;

    let verified = outbox(&env, "system.document.verified").await;
    assert_eq!(verified.len(), 1);
    let record = &verified[0]["record"];
    assert_eq!(record["key"], "document");
    assert_eq!(record["value"], "verified");
    assert!(record["id"].is_i64());
    assert!(record.as_object().unwrap().contains_key("description"));
    assert_eq!(record["user"]["uid"], user.uid.as_str());
    assert_eq!(record["user"]["level"], 3);
    assert_eq!(outbox(&env, "system.profile.verified").await.len(), 1);
    assert!(outbox(&env, "system.document.rejected").await.is_empty());

    let mails = sink.wait_for(&user.email, 2, WAIT).await;
    let mut subjects: Vec<String> = mails.iter().map(|m| m.subject().to_string()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["Identity Documents Verified", "Profile Verified"]
    );

    // KYCAID redelivers the same callback: applied once.
    assert_eq!(callback(&server, &body).await, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE kind = 'verification'")
            .await,
        1
    );
    assert_eq!(
        kycaid
            .requests_to("GET", "/verifications/verification-9")
            .len(),
        1
    );
    assert_eq!(outbox(&env, "system.document.verified").await.len(), 1);
}

#[tokio::test]
async fn a_rejected_verification_rejects_the_document_and_the_profile() {
    let sink = SmtpSink::start().await;
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let server = env
        .start_with(&format!("{}\n{}", kycaid.config(), sink.mail_config()))
        .await;
    let (user, session, applicant) = applicant_user(&env, &server).await;
    kycaid.set(|s| {
        s.verifications.insert(
            "verification-3".into(),
            json!({
                "applicant_id": applicant, "status": "completed", "verified": false,
                "verifications": {
                    "profile": { "verified": false, "comment": "Name mismatch" },
                    "document": { "verified": true },
                    "facial": { "verified": false, "comment": "Face mismatch" }
                }
            }),
        );
    });
    // A status change to completed announces it as well.
    let body = json!({
        "type": "VERIFICATION_STATUS_CHANGED", "request_id": random_suffix(),
        "applicant_id": applicant, "verification_id": "verification-3",
        "verification_status": "completed",
    });
    assert_eq!(callback(&server, &body).await, 200);
    job_done(&env, "verification", &user).await;

    assert_eq!(
        label(&env, &user, "document").await.as_deref(),
        Some("rejected")
    );
    assert_eq!(
        label(&env, &user, "profile").await.as_deref(),
        Some("rejected")
    );
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM users WHERE id = {} AND level = 2",
            user.id
        ))
        .await,
        1
    );
    assert_eq!(level_in_token(&server, &session).await, 2);
    let rejected = outbox(&env, "system.document.rejected").await;
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["record"]["value"], "rejected");
    assert_eq!(outbox(&env, "system.profile.rejected").await.len(), 1);
    assert!(outbox(&env, "system.document.verified").await.is_empty());
    let mails = sink.wait_for(&user.email, 2, WAIT).await;
    let mut subjects: Vec<String> = mails.iter().map(|m| m.subject().to_string()).collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["Identity Documents Rejected", "Profile Rejected"]
    );
}

#[tokio::test]
async fn a_callback_for_an_unknown_applicant_is_recorded_and_changes_nothing() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let server = env.start_with(&kycaid.config()).await;
    let body = completed("applicant-nobody-knows", "verification-1");
    assert_eq!(callback(&server, &body).await, 200);
    assert_eq!(env.count("SELECT count(*) FROM kyc_callbacks").await, 1);
    assert_eq!(env.count("SELECT count(*) FROM kyc_jobs").await, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(kycaid.requests().is_empty());
}

#[tokio::test]
async fn a_verification_about_another_applicant_is_not_applied() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let server = env.start_with(&kycaid.config()).await;
    let (user, _session, applicant) = applicant_user(&env, &server).await;
    kycaid.set(|s| {
        s.verifications.insert(
            "verification-x".into(),
            json!({
                "applicant_id": "someone-else", "status": "completed",
                "verifications": { "document": { "verified": true } }
            }),
        );
    });
    assert_eq!(
        callback(&server, &completed(&applicant, "verification-x")).await,
        200
    );
    job_done(&env, "verification", &user).await;
    assert_eq!(label(&env, &user, "document").await, None);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM kyc_jobs WHERE kind = 'verification' AND last_error IS NOT NULL"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn with_local_kyc_a_submitted_profile_queues_nothing() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let server = env
        .start_with(&format!("{}provider = \"local\"\n", kycaid.config()))
        .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    submit_profile(&server, &session).await;
    assert_eq!(env.count("SELECT count(*) FROM kyc_jobs").await, 0);
    assert_eq!(
        label(&env, &user, "profile").await.as_deref(),
        Some("submitted")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(kycaid.requests().is_empty());
}

#[tokio::test]
async fn without_a_token_jobs_wait_and_nothing_is_sent() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let config = kycaid.config().replace(TOKEN, "");
    let server = env.start_with(&config).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    submit_profile(&server, &session).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE kind = 'applicant' AND done_at IS NULL AND attempts = 0")
            .await,
        1
    );
    assert!(kycaid.requests().is_empty());
    assert_eq!(kycaid.state.lock().unwrap().unauthorized, 0);
}

/// The uploads' storage, as the KYC worker sees it: a fixed batch per identificator.
struct FakeFiles(Vec<DocumentFile>);

impl DocumentFiles for FakeFiles {
    async fn batch(&self, _: i64, identificator: &str) -> Result<Vec<DocumentFile>, String> {
        match identificator {
            "unreadable" => Err("storage unreachable".into()),
            _ => Ok(self.0.clone()),
        }
    }
}

fn passport(category: &str, bytes: &[u8]) -> DocumentFile {
    DocumentFile {
        doc_type: "Passport".into(),
        doc_number: Some("AB1234567".into()),
        doc_expire: Some("2031-02-03".into()),
        doc_category: Some(category.into()),
        file_name: format!("{category}.png"),
        content_type: "image/png".into(),
        bytes: bytes.to_vec(),
        address: None,
    }
}

#[tokio::test]
async fn a_document_batch_is_uploaded_and_verified_once_its_applicant_exists() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    // The worker alone, driven round by round (no server, so no second worker races it).
    let app = portcullis::app::App::build(env.settings(&kycaid.config()), None)
        .await
        .unwrap();
    let files = FakeFiles(vec![
        passport("selfie", b"selfie-bytes"),
        passport("front_side", b"\x89PNG-front"),
        passport("back_side", b"\x89PNG-back"),
    ]);
    let mut worker = KycWorker::new(app.kyc_parts(), files);
    let user = env.user("member").await;
    let client = env.store.client().await.unwrap();
    let job = KycJob::Documents {
        identificator: "batch-1".into(),
    };
    store::kyc_jobs::enqueue(&client, user.id, &job)
        .await
        .unwrap();

    // No applicant yet: the job waits, nothing is sent.
    worker.round().await;
    assert_eq!(
        env.count(
            "SELECT count(*) FROM kyc_jobs WHERE done_at IS NULL AND attempts = 1
             AND last_error = 'the applicant is not created yet'"
        )
        .await,
        1
    );
    assert!(kycaid.requests().is_empty());

    env.sql(&format!(
        "INSERT INTO profiles (user_id, state, applicant_id) VALUES ({}, 'submitted', 'applicant-42');
         UPDATE kyc_jobs SET next_attempt_at = now();",
        user.id
    ))
    .await;
    worker.round().await;

    let uploads = kycaid.requests_to("POST", "/files");
    assert_eq!(uploads.len(), 3);
    for upload in &uploads {
        assert!(
            upload
                .content_type
                .starts_with("multipart/form-data; boundary=")
        );
    }
    let front = String::from_utf8_lossy(&uploads[0].body).to_string();
    assert!(
        front.contains("name=\"file\"; filename=\"front_side.png\""),
        "{front}"
    );
    assert!(
        front.contains("Content-Type: image/png\r\n\r\n\u{FFFD}PNG-front\r\n"),
        "{front}"
    );
    let documents = kycaid.requests_to("POST", "/documents");
    assert_eq!(documents.len(), 2);
    let main = documents[0].json();
    assert_eq!(main["applicant_id"], "applicant-42");
    assert_eq!(main["type"], "PASSPORT");
    assert_eq!(main["document_number"], "AB1234567");
    assert_eq!(main["expiry_date"], "2031-02-03");
    assert!(main["front_side_id"].as_str().unwrap().starts_with("file-"));
    assert!(main["back_side_id"].as_str().unwrap().starts_with("file-"));
    assert_ne!(main["front_side_id"], main["back_side_id"]);
    let selfie = documents[1].json();
    assert_eq!(selfie["type"], "SELFIE_IMAGE");
    assert_eq!(selfie.get("back_side_id"), None);
    let verifications = kycaid.requests_to("POST", "/verifications");
    assert_eq!(verifications.len(), 1);
    assert_eq!(
        verifications[0].json(),
        json!({
            "applicant_id": "applicant-42", "types": ["DOCUMENT", "FACIAL"],
            "form_id": "form-7", "callback_url": "https://exchange.test/kyc",
        })
    );
    let progress: Value = client
        .query_one(
            "SELECT progress FROM kyc_jobs WHERE done_at IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        progress["verification_id"]
            .as_str()
            .unwrap()
            .starts_with("verification-")
    );
}

#[tokio::test]
async fn a_batch_resent_after_a_failure_does_not_create_its_documents_twice() {
    let env = TestEnv::new().await;
    let kycaid = FakeKycaid::start().await;
    let app = portcullis::app::App::build(env.settings(&kycaid.config()), None)
        .await
        .unwrap();
    let files = FakeFiles(vec![DocumentFile {
        doc_type: "Address".into(),
        doc_number: None,
        doc_expire: None,
        doc_category: None,
        file_name: "bill.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: b"%PDF-1.4".to_vec(),
        address: Some(PostalAddress {
            country: "DE".into(),
            address: "Unter den Linden 1".into(),
            city: "Berlin".into(),
            postcode: "10117".into(),
        }),
    }]);
    let mut worker = KycWorker::new(app.kyc_parts(), files);
    let user = env.user("member").await;
    env.sql(&format!(
        "INSERT INTO profiles (user_id, state, applicant_id) VALUES ({}, 'submitted', 'applicant-5');",
        user.id
    ))
    .await;
    let client = env.store.client().await.unwrap();
    let job = KycJob::Address {
        identificator: "bill".into(),
    };
    store::kyc_jobs::enqueue(&client, user.id, &job)
        .await
        .unwrap();
    // The document is made, then KYCAID goes down before the verification.
    env.sql("UPDATE kyc_jobs SET progress = '{\"documents\": {\"address\": \"document-77\"}}'")
        .await;
    kycaid.set(|s| s.down = true);
    worker.round().await;
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE attempts = 1 AND done_at IS NULL")
            .await,
        1
    );
    kycaid.set(|s| s.down = false);
    env.sql("UPDATE kyc_jobs SET next_attempt_at = now()").await;
    worker.round().await;
    assert!(
        kycaid.requests_to("POST", "/documents").is_empty(),
        "made already"
    );
    assert!(kycaid.requests_to("POST", "/files").is_empty());
    // The address the proof is checked against goes first, once.
    let addresses = kycaid.requests_to("POST", "/addresses");
    assert_eq!(addresses.len(), 1);
    assert_eq!(
        addresses[0].json(),
        json!({
            "applicant_id": "applicant-5", "type": "REGISTERED", "country": "DE",
            "city": "Berlin", "postal_code": "10117", "full_address": "Unter den Linden 1",
        })
    );
    let verification = kycaid.requests_to("POST", "/verifications");
    assert_eq!(verification.len(), 1);
    assert_eq!(verification[0].json()["types"], json!(["ADDRESS"]));
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE done_at IS NOT NULL AND last_error IS NULL")
            .await,
        1
    );

    // A batch whose files cannot be read waits.
    let unreadable = KycJob::Address {
        identificator: "unreadable".into(),
    };
    store::kyc_jobs::enqueue(&client, user.id, &unreadable)
        .await
        .unwrap();
    worker.round().await;
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE last_error = 'storage unreachable' AND done_at IS NULL")
            .await,
        1
    );
}
