//! `/resource/documents` and `/resource/addresses`: uploads as real multipart bodies, with a
//! session (CSRF included) and with a Bearer token; every refusal's code, with nothing left
//! behind (no row, no file); labels, level and state, events and KYC jobs after an upload;
//! the masked list; files served to their owner alone; on local disk and on a real
//! S3-compatible server (moto), each shared by two nodes.

use std::path::{Path, PathBuf};

use portcullis::config::{KycProvider, Settings, StorageKind};

use crate::resource::bearer;
use crate::support::kycaid::FakeKycaid;
use crate::support::moto::Moto;
use crate::support::multipart::{Form, jpeg, pdf, png};
use crate::support::{Client, Response, Server, Session, TestEnv, TestUser, random_suffix};

/// How a request is authenticated: a session (with its CSRF token) or a Bearer token.
enum Auth {
    Session(Session),
    Bearer(String),
}

impl Auth {
    async fn send(
        &self,
        server: &Server,
        method: &str,
        route: &str,
        form: Option<&Form>,
    ) -> Response {
        let mut request = Client::new().request(method, server.resource(route));
        request = match self {
            Auth::Session(session) => request
                .session(session)
                .header("x-csrf-token", &session.csrf),
            Auth::Bearer(token) => request.header("authorization", token),
        };
        if let Some(form) = form {
            request = request
                .header("content-type", &form.content_type())
                .body(form.body());
        }
        request.send().await
    }

    async fn upload(&self, server: &Server, route: &str, form: &Form) -> Response {
        self.send(server, "POST", route, Some(form)).await
    }

    async fn get(&self, server: &Server, route: &str) -> Response {
        self.send(server, "GET", route, None).await
    }

    /// GET of an absolute path on the server (the entity's `upload`).
    async fn get_path(&self, server: &Server, path: &str) -> Response {
        let mut request = Client::new().get(server.url(path));
        request = match self {
            Auth::Session(session) => request.session(session),
            Auth::Bearer(token) => request.header("authorization", token),
        };
        request.send().await
    }
}

/// A fresh directory for one test's local storage.
fn upload_dir() -> PathBuf {
    std::env::temp_dir().join(format!("portcullis-uploads-{}", random_suffix()))
}

/// Every file under `dir`.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn local(dir: &Path, provider: KycProvider) -> impl FnOnce(&mut Settings) {
    let dir = dir.to_path_buf();
    move |s: &mut Settings| {
        s.uploads.storage = StorageKind::Local;
        s.uploads.local_dir = dir;
        s.kyc.provider = provider;
    }
}

fn passport(number: &str, identificator: &str) -> Form {
    Form::new()
        .text("doc_type", "Passport")
        .text("doc_number", number)
        .text("doc_expire", "2099-12-31")
        .text("identificator", identificator)
        .text("metadata", r#"{"side":"both"}"#)
}

async fn documents_of(env: &TestEnv, user: &TestUser) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM documents d JOIN users u ON u.id = d.user_id WHERE u.uid = '{}'",
        user.uid
    ))
    .await
}

async fn label(env: &TestEnv, user: &TestUser, key: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM labels l JOIN users u ON u.id = l.user_id \
         WHERE u.uid = '{}' AND l.key = '{key}' AND l.value = 'pending' AND l.scope = 'private'",
        user.uid
    ))
    .await
}

async fn jobs(env: &TestEnv, user: &TestUser, kind: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM kyc_jobs j JOIN users u ON u.id = j.user_id \
         WHERE u.uid = '{}' AND j.kind = '{kind}'",
        user.uid
    ))
    .await
}

async fn events(env: &TestEnv, name: &str) -> i64 {
    env.count(&format!(
        "SELECT count(*) FROM event_outbox WHERE name = '{name}'"
    ))
    .await
}

#[tokio::test]
async fn a_batch_is_stored_listed_masked_and_served_to_its_owner_alone() {
    let env = TestEnv::new().await;
    let dir = upload_dir();
    let server = env.start_adjusted(local(&dir, KycProvider::Local)).await;
    let user = env.user("member").await;
    let auth = Auth::Session(server.login(&user).await);
    let (front, back) = (jpeg(2048), png(4096));
    let form = passport("AB 123-456", "batch-1")
        .file("upload[]", "front.JPG", "image/jpeg", &front)
        .file("upload[]", "back.png", "image/png", &back);
    let created = auth.upload(&server, "documents", &form).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body[0]["doc_type"], "Passport");
    assert_eq!(body[0]["doc_number"], "AB******56");
    assert_eq!(body[0]["doc_expire"], "2099-12-31");
    assert_eq!(body[0]["metadata"], r#"{"side":"both"}"#);

    // One row per file, sharing the identificator; the number sealed, with its index.
    assert_eq!(documents_of(&env, &user).await, 2);
    let sealed = env
        .count(
            "SELECT count(*) FROM documents WHERE identificator = 'batch-1' \
             AND doc_number_encrypted LIKE 'v1:%' AND doc_number_encrypted NOT LIKE '%123%' \
             AND length(doc_number_index) = 64 AND doc_category IS NULL",
        )
        .await;
    assert_eq!(sealed, 2);
    assert_eq!(files_in(&dir).len(), 2);
    // Nothing the client named is in the stored keys.
    for path in files_in(&dir) {
        let name = path.to_string_lossy().to_string();
        assert!(!name.contains("front") && !name.contains("back"), "{name}");
    }

    // Local KYC: `document: pending`, level and state recomputed, events written.
    assert_eq!(label(&env, &user, "document").await, 1);
    assert_eq!(events(&env, "model.document.created").await, 2);
    assert_eq!(events(&env, "model.label.created").await, 1);
    assert_eq!(jobs(&env, &user, "documents").await, 0);
    let me = auth.get(&server, "users/me").await;
    assert!(
        me.json()["labels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["key"] == "document" && l["value"] == "pending"),
        "{}",
        me.text()
    );

    // The list, masked; each upload is our own guarded route.
    let listed = auth.get(&server, "documents").await;
    assert_eq!(listed.status, 200);
    let list = listed.json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["doc_number"], "AB******56");
    let upload = list[0]["upload"].as_str().unwrap().to_string();
    assert!(
        upload.starts_with("/api/v2/auth/resource/documents/") && upload.ends_with("/upload"),
        "{upload}"
    );

    // The owner reads the exact bytes back, with a Bearer token as with the session.
    let token = match &auth {
        Auth::Session(session) => Auth::Bearer(bearer(&server, session).await),
        Auth::Bearer(_) => unreachable!(),
    };
    for who in [&auth, &token] {
        let file = who.get_path(&server, &upload).await;
        assert_eq!(file.status, 200, "{}", file.text());
        assert_eq!(file.body.as_ref(), front.as_slice());
        assert_eq!(file.header("content-type"), Some("image/jpeg"));
        assert_eq!(file.header("x-content-type-options"), Some("nosniff"));
        let disposition = file.header("content-disposition").unwrap();
        assert!(
            disposition.starts_with("attachment; filename=\"document-"),
            "{disposition}"
        );
    }
    let second = who_gets(&token, &server, list[1]["upload"].as_str().unwrap()).await;
    assert_eq!(second.body.as_ref(), back.as_slice());
    assert_eq!(second.header("content-type"), Some("image/png"));

    // Another user: the list is theirs (empty), the file is not found.
    let other = env.user("member").await;
    let other = Auth::Session(server.login(&other).await);
    assert_eq!(
        other.get(&server, "documents").await.json(),
        serde_json::json!([])
    );
    other
        .get_path(&server, &upload)
        .await
        .assert_error(404, "record.not_found");
    for bad in [
        "/api/v2/auth/resource/documents/999999999/upload",
        "/api/v2/auth/resource/documents/abc/upload",
    ] {
        auth.get_path(&server, bad)
            .await
            .assert_error(404, "record.not_found");
    }

    // A second node on the same directory serves the same file.
    let node_b = env.start_adjusted(local(&dir, KycProvider::Local)).await;
    let from_b = token.get_path(&node_b, &upload).await;
    assert_eq!(from_b.body.as_ref(), front.as_slice());
    let _ = std::fs::remove_dir_all(&dir);
}

async fn who_gets(auth: &Auth, server: &Server, path: &str) -> Response {
    let response = auth.get_path(server, path).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

#[tokio::test]
async fn every_refusal_has_its_code_and_leaves_nothing_behind() {
    let env = TestEnv::new().await;
    let dir = upload_dir();
    let server = env
        .start_adjusted(|s| {
            local(&dir, KycProvider::Local)(s);
            s.uploads.max_size_mb = 1;
            s.uploads.doc_num_limit = 3;
        })
        .await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let auth = Auth::Bearer(bearer(&server, &session).await);
    let ok = jpeg(2048);
    let good = || passport("AB123456", "x").file("upload", "a.jpg", "image/jpeg", &ok);
    let cases: Vec<(&str, Form, u16, Vec<&str>)> = vec![
        (
            "nothing at all",
            Form::new(),
            422,
            vec![
                "resource.document.missing_doc_type",
                "resource.document.empty_doc_type",
                "resource.document.missing_doc_number",
                "resource.document.empty_doc_number",
                "resource.document.missing_upload",
            ],
        ),
        (
            "blank fields and an upload field without a file",
            Form::new()
                .text("doc_type", " ")
                .text("doc_number", "")
                .file("upload[]", "", "application/octet-stream", b""),
            422,
            vec![
                "resource.document.empty_doc_type",
                "resource.document.empty_doc_number",
                "resource.document.empty_upload",
            ],
        ),
        (
            "no file",
            passport("AB123456", "x"),
            422,
            vec!["resource.document.missing_upload"],
        ),
        (
            "unknown type",
            good().text("doc_type", "Library card"),
            422,
            vec!["doc_type.inclusion"],
        ),
        (
            "bad number",
            good().text("doc_number", "AB_12/3"),
            422,
            vec!["doc_number.invalid"],
        ),
        (
            "long number",
            good().text("doc_number", &"1".repeat(129)),
            422,
            vec!["doc_number.too_long"],
        ),
        (
            "bad category, identificator and metadata",
            good()
                .text("doc_category", "portrait")
                .text("identificator", "a b")
                .text("metadata", "[1]"),
            422,
            vec![
                "doc_category.inclusion",
                "identificator.invalid",
                "metadata.invalid_format",
            ],
        ),
        (
            "expiry not a date",
            good().text("doc_expire", "soon"),
            422,
            vec!["resource.documents.expire_not_a_date"],
        ),
        (
            "expiry badly written",
            good().text("doc_expire", "2099-1-5"),
            422,
            vec!["resource.documents.invalid_format"],
        ),
        (
            "expiry missing",
            Form::new()
                .text("doc_type", "Passport")
                .text("doc_number", "AB123456")
                .file("upload", "a.jpg", "image/jpeg", &ok),
            422,
            vec!["resource.documents.invalid_format"],
        ),
        (
            "expired",
            good().text("doc_expire", "2001-01-01"),
            422,
            vec!["resource.documents.already_expired"],
        ),
        (
            "wrong extension",
            passport("AB123456", "x").file("upload", "a.exe", "image/jpeg", &ok),
            422,
            vec!["upload.invalid_extension"],
        ),
        (
            "no extension",
            passport("AB123456", "x").file("upload", "scan", "image/jpeg", &ok),
            422,
            vec!["upload.invalid_extension"],
        ),
        (
            "content not matching the extension",
            passport("AB123456", "x").file("upload", "a.pdf", "application/pdf", &ok),
            422,
            vec!["upload.content_mismatch"],
        ),
        (
            "html named png",
            passport("AB123456", "x").file(
                "upload",
                "a.png",
                "image/png",
                "<html><script>alert(1)</script></html>"
                    .repeat(60)
                    .as_bytes(),
            ),
            422,
            vec!["upload.content_mismatch"],
        ),
        (
            "empty file",
            passport("AB123456", "x").file("upload", "a.jpg", "image/jpeg", b""),
            422,
            vec!["upload.empty"],
        ),
        (
            "under the minimum",
            passport("AB123456", "x").file("upload", "a.jpg", "image/jpeg", &jpeg(1023)),
            422,
            vec!["upload.too_small"],
        ),
        (
            "over the maximum, after a good file",
            passport("AB123456", "x")
                .file("upload", "a.jpg", "image/jpeg", &ok)
                .file("upload", "b.pdf", "application/pdf", &pdf(1024 * 1024 + 1)),
            422,
            vec!["upload.too_large"],
        ),
        (
            "too many for the limit",
            passport("AB123456", "x")
                .file("upload", "a.jpg", "image/jpeg", &ok)
                .file("upload", "b.jpg", "image/jpeg", &jpeg(2048))
                .file("upload", "c.jpg", "image/jpeg", &jpeg(2048))
                .file("upload", "d.jpg", "image/jpeg", &jpeg(2048)),
            400,
            vec!["resource.documents.limit_will_be_reached"],
        ),
    ];
    for (case, form, status, codes) in cases {
        let response = auth.upload(&server, "documents", &form).await;
        assert_eq!(response.status, status, "{case}: {}", response.text());
        assert_eq!(response.errors(), codes, "{case}");
    }
    // A body that is not multipart is read as parameters: no file is missing_upload.
    let json = Client::new()
        .post(server.resource("documents"))
        .header(
            "authorization",
            match &auth {
                Auth::Bearer(t) => t,
                Auth::Session(_) => unreachable!(),
            },
        )
        .json(&serde_json::json!({"doc_type": "Passport", "doc_number": "AB1234", "upload": "x"}))
        .send()
        .await;
    json.assert_error(422, "resource.document.empty_upload");
    // A broken multipart body.
    let broken = Client::new()
        .post(server.resource("documents"))
        .header(
            "authorization",
            match &auth {
                Auth::Bearer(t) => t,
                Auth::Session(_) => unreachable!(),
            },
        )
        .header("content-type", "multipart/form-data; boundary=zzz")
        .body("--zzz\r\nContent-Disposition: form-data; name=\"doc_type\"\r\n\r\nPass")
        .send()
        .await;
    broken.assert_error(400, "request.invalid_multipart");

    // Nothing was written, and every stored file was deleted again.
    assert_eq!(documents_of(&env, &user).await, 0);
    assert_eq!(label(&env, &user, "document").await, 0);
    TestEnv::eventually(5_000, || {
        let dir = dir.clone();
        async move { files_in(&dir).is_empty() }
    })
    .await;

    // At the limit: one more would exceed it; above it (a lowered limit), it is reached.
    let three = passport("AB123456", "x")
        .file("upload", "a.jpg", "image/jpeg", &ok)
        .file("upload", "b.jpg", "image/jpeg", &jpeg(2048))
        .file("upload", "c.jpg", "image/jpeg", &jpeg(2048));
    assert_eq!(auth.upload(&server, "documents", &three).await.status, 201);
    auth.upload(&server, "documents", &good())
        .await
        .assert_error(400, "resource.documents.limit_will_be_reached");
    let lowered = env
        .start_adjusted(|s| {
            local(&dir, KycProvider::Local)(s);
            s.uploads.doc_num_limit = 2;
        })
        .await;
    auth.upload(&lowered, "documents", &good())
        .await
        .assert_error(400, "resource.documents.limit_reached");
    auth.upload(&lowered, "addresses", &Form::new())
        .await
        .assert_error(400, "resource.documents.limit_reached");
    assert_eq!(documents_of(&env, &user).await, 3);
    assert_eq!(files_in(&dir).len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn expiry_is_optional_when_not_required_and_addresses_have_their_own_codes() {
    let env = TestEnv::new().await;
    let dir = upload_dir();
    let server = env
        .start_adjusted(|s| {
            local(&dir, KycProvider::Local)(s);
            s.uploads.required_docs_expire = false;
        })
        .await;
    let user = env.user("member").await;
    let auth = Auth::Session(server.login(&user).await);
    let form = Form::new()
        .text("doc_type", "Utility Bill")
        .text("doc_number", "UB1")
        .text("doc_expire", "2001-1-1")
        .file("upload", "bill.pdf", "application/pdf", &pdf(3000));
    let created = auth.upload(&server, "documents", &form).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()[0]["doc_expire"], "2001-01-01");
    assert_eq!(created.json()[0]["doc_number"], "***");

    let response = auth.upload(&server, "addresses", &Form::new()).await;
    assert_eq!(response.status, 422);
    assert_eq!(
        response.errors(),
        [
            "resource.address.missing_country",
            "resource.address.empty_country",
            "resource.address.missing_address",
            "resource.address.empty_address",
            "resource.address.missing_city",
            "resource.address.missing_postcode",
            "resource.address.missing_upload",
        ]
    );
    let long = Form::new()
        .text("country", "UA")
        .text("address", &"x".repeat(256))
        .text("city", "")
        .text("postcode", "")
        .file("upload", "a.png", "image/png", &png(2000));
    auth.upload(&server, "addresses", &long)
        .await
        .assert_error(422, "address.too_long");
    assert_eq!(label(&env, &user, "address").await, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn kycaid_queues_a_job_once_a_batch_is_complete_and_one_per_address() {
    let env = TestEnv::new().await;
    let dir = upload_dir();
    let server = env.start_adjusted(local(&dir, KycProvider::Kycaid)).await;
    let user = env.user("member").await;
    let session = server.login(&user).await;
    let auth = Auth::Bearer(bearer(&server, &session).await);

    // A passport is two files: the first alone queues nothing and sets no label.
    let first = passport("PA1234", "pass-1").file("upload", "a.jpg", "image/jpeg", &jpeg(2048));
    assert_eq!(auth.upload(&server, "documents", &first).await.status, 201);
    assert_eq!(jobs(&env, &user, "documents").await, 0);
    assert_eq!(label(&env, &user, "document").await, 0);
    let second = passport("PA1234", "pass-1").file("upload", "b.jpg", "image/jpeg", &jpeg(2048));
    assert_eq!(auth.upload(&server, "documents", &second).await.status, 201);
    assert_eq!(jobs(&env, &user, "documents").await, 1);
    assert_eq!(
        env.count("SELECT count(*) FROM kyc_jobs WHERE kind = 'documents' AND subject = 'pass-1'")
            .await,
        1
    );
    assert_eq!(label(&env, &user, "document").await, 1);

    // An identity card is three files; two are not enough, three in one request are.
    let card = |n: usize, ident: &str| {
        let mut form = Form::new()
            .text("doc_type", "Identity card")
            .text("doc_number", "ID998877")
            .text("doc_expire", "2099-01-01")
            .text("identificator", ident);
        for i in 0..n {
            form = form.file("upload[]", &format!("{i}.png"), "image/png", &png(1500));
        }
        form
    };
    assert_eq!(
        auth.upload(&server, "documents", &card(2, "card-1"))
            .await
            .status,
        201
    );
    assert_eq!(jobs(&env, &user, "documents").await, 1);
    assert_eq!(
        auth.upload(&server, "documents", &card(3, "card-2"))
            .await
            .status,
        201
    );
    assert_eq!(jobs(&env, &user, "documents").await, 2);

    // An address: `Address` rows sharing a random identificator, the address sealed, the
    // label, and an address job for that identificator.
    let address = Form::new()
        .text("country", "UA")
        .text("address", "Khreshchatyk 1")
        .text("city", "Kyiv")
        .text("postcode", "01001")
        .file("upload", "bill.pdf", "application/pdf", &pdf(5000))
        .file("upload", "bill2.jpg", "image/jpeg", &jpeg(5000));
    let created = auth.upload(&server, "addresses", &address).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()[0]["doc_type"], "Address");
    assert_eq!(label(&env, &user, "address").await, 1);
    assert_eq!(jobs(&env, &user, "address").await, 1);
    let addressed = env
        .count(
            "SELECT count(*) FROM documents d JOIN kyc_jobs j \
             ON j.subject = d.identificator AND j.kind = 'address' \
             WHERE d.doc_type = 'Address' AND d.address_encrypted LIKE 'v1:%' \
             AND d.address_encrypted NOT LIKE '%Kyiv%'",
        )
        .await;
    assert_eq!(addressed, 2);
    let secrets = env.secrets();
    let client = env.store.client().await.unwrap();
    let sealed: String = client
        .query_one(
            "SELECT address_encrypted FROM documents WHERE doc_type = 'Address' LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let opened: serde_json::Value =
        serde_json::from_str(&secrets.open_string("document.address", &sealed).unwrap()).unwrap();
    assert_eq!(opened["city"], "Kyiv");
    assert_eq!(opened["postcode"], "01001");
    assert_eq!(events(&env, "model.document.created").await, 9);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_failed_database_write_deletes_the_stored_files() {
    let env = TestEnv::new().await;
    let dir = upload_dir();
    let server = env.start_adjusted(local(&dir, KycProvider::Local)).await;
    let user = env.user("member").await;
    let auth = Auth::Session(server.login(&user).await);
    env.sql(
        "CREATE FUNCTION refuse_documents() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
         CREATE TRIGGER refuse_documents BEFORE INSERT ON documents \
         FOR EACH ROW EXECUTE FUNCTION refuse_documents();",
    )
    .await;
    let form = passport("AB123456", "x")
        .file("upload", "a.jpg", "image/jpeg", &jpeg(2048))
        .file("upload", "b.jpg", "image/jpeg", &jpeg(2048));
    let response = auth.upload(&server, "documents", &form).await;
    assert_eq!(response.status, 500, "{}", response.text());
    assert_eq!(documents_of(&env, &user).await, 0);
    assert_eq!(events(&env, "model.document.created").await, 0);
    TestEnv::eventually(5_000, || {
        let dir = dir.clone();
        async move { files_in(&dir).is_empty() }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn s3(moto: &Moto, bucket: &str) -> impl FnOnce(&mut Settings) + Clone {
    let endpoint = moto.endpoint();
    let bucket = bucket.to_string();
    move |s: &mut Settings| {
        s.uploads.storage = StorageKind::Aws;
        s.uploads.endpoint = endpoint;
        s.uploads.bucket = bucket;
        s.uploads.region = "us-east-1".into();
        s.uploads.access_key_id = "testing".into();
        s.uploads.secret_access_key = Some(portcullis::config::Secret::new("testing"));
        s.uploads.path_style = true;
        s.uploads.allow_http = true;
        s.uploads.timeout = std::time::Duration::from_secs(5);
        s.kyc.provider = KycProvider::Local;
    }
}

#[tokio::test]
async fn two_nodes_share_files_on_s3_and_a_storage_outage_is_a_503() {
    let mut moto = Moto::start().await;
    let bucket = format!("pc-test-{}", random_suffix().to_lowercase());
    moto.create_bucket(&bucket).await;
    let env = TestEnv::new().await;
    let node_a = env.start_adjusted(s3(&moto, &bucket)).await;
    let node_b = env.start_adjusted(s3(&moto, &bucket)).await;
    let user = env.user("member").await;
    let session = node_a.login(&user).await;
    let auth = Auth::Session(session.clone());
    let scan = pdf(300_000);
    let form = passport("S3 0001", "s3-batch").file("upload", "scan.pdf", "application/pdf", &scan);
    let created = auth.upload(&node_a, "documents", &form).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let upload = created.json()[0]["upload"].as_str().unwrap().to_string();

    // Node B reads it from the bucket, for its owner only.
    let token = Auth::Bearer(bearer(&node_b, &session).await);
    let file = who_gets(&token, &node_b, &upload).await;
    assert!(
        file.body.as_ref() == scan.as_slice(),
        "{} bytes",
        file.body.len()
    );
    assert_eq!(file.header("content-type"), Some("application/pdf"));
    let other = env.user("member").await;
    Auth::Session(node_b.login(&other).await)
        .get_path(&node_b, &upload)
        .await
        .assert_error(404, "record.not_found");
    // The object is private: the bucket does not serve it without credentials.
    let key: String = env
        .store
        .client()
        .await
        .unwrap()
        .query_one("SELECT upload FROM documents LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    let direct = Client::new()
        .get(format!("{}/{bucket}/{key}", moto.endpoint()))
        .send()
        .await;
    assert_eq!(direct.status, 403, "{key}");

    // Storage down: the upload is refused with 503 and writes nothing; so is a download.
    moto.stop();
    let again =
        passport("S3 0002", "s3-batch-2").file("upload", "a.jpg", "image/jpeg", &jpeg(2048));
    auth.upload(&node_a, "documents", &again)
        .await
        .assert_error(503, "server.unavailable");
    assert_eq!(documents_of(&env, &user).await, 1);
    token
        .get_path(&node_b, &upload)
        .await
        .assert_error(503, "server.unavailable");
}

/// A proof of address all the way to KYCAID: a real multipart upload stored on the
/// S3-compatible server, read back from the bucket by the node's KYC worker, and sent to (a
/// fake of) KYCAID with its address, the file's own bytes and a verification.
#[tokio::test]
async fn an_address_on_s3_reaches_kycaid_with_its_address_and_its_file() {
    let mut moto = Moto::start().await;
    let bucket = format!("pc-test-{}", random_suffix().to_lowercase());
    moto.create_bucket(&bucket).await;
    let kycaid = FakeKycaid::start().await;
    let env = TestEnv::with_config(&kycaid.config()).await;
    let on_s3 = s3(&moto, &bucket);
    let server = env
        .start_adjusted(move |s| {
            on_s3(s);
            s.kyc.provider = KycProvider::Kycaid;
        })
        .await;
    let user = env.user("member").await;
    env.sql(&format!(
        "INSERT INTO profiles (user_id, state, applicant_id) VALUES ({}, 'submitted', 'applicant-9')",
        user.id
    ))
    .await;
    let auth = Auth::Session(server.login(&user).await);
    let bill = pdf(4000);
    let form = Form::new()
        .text("country", "UA")
        .text("address", "Khreshchatyk 1")
        .text("city", "Kyiv")
        .text("postcode", "01001")
        .file("upload", "bill.pdf", "application/pdf", &bill);
    let created = auth.upload(&server, "addresses", &form).await;
    assert_eq!(created.status, 201, "{}", created.text());

    let fake = &kycaid;
    TestEnv::eventually(10_000, || async move {
        !fake.requests_to("POST", "/verifications").is_empty()
    })
    .await;
    let addresses = kycaid.requests_to("POST", "/addresses");
    assert_eq!(addresses.len(), 1);
    assert_eq!(
        addresses[0].json(),
        serde_json::json!({
            "applicant_id": "applicant-9", "type": "REGISTERED", "country": "UA",
            "city": "Kyiv", "postal_code": "01001", "full_address": "Khreshchatyk 1",
        })
    );
    let files = kycaid.requests_to("POST", "/files");
    assert_eq!(files.len(), 1);
    assert!(
        files[0]
            .body
            .windows(bill.len())
            .any(|w| w == bill.as_slice()),
        "the stored file's bytes are sent"
    );
    let documents = kycaid.requests_to("POST", "/documents");
    assert_eq!(documents.len(), 1);
    assert_eq!(documents[0].json()["type"], "ADDRESS_DOCUMENT");
    assert_eq!(documents[0].json()["applicant_id"], "applicant-9");
    let verification = kycaid.requests_to("POST", "/verifications");
    assert_eq!(
        verification[0].json()["types"],
        serde_json::json!(["ADDRESS"])
    );
    TestEnv::eventually(5_000, || async {
        env.count("SELECT count(*) FROM kyc_jobs WHERE kind = 'address' AND done_at IS NOT NULL")
            .await
            == 1
    })
    .await;
    moto.stop();
}
