//! Hostile input at the gate and the identity API, sent as an attacker would: it gets a clear
//! 4xx, never a 500, never an answer that tells accounts apart, and never leaves half a change
//! or a hole in the audit trail behind.

use std::time::Duration;

use serde_json::json;

use crate::support::{Client, Server, Session, TestEnv, UA};

const BALANCES: &str = "/api/v2/peatio/account/balances";

fn long_agent() -> String {
    "Mozilla/5.0 ".repeat(260)
}

#[tokio::test]
async fn a_long_user_agent_tells_no_account_apart() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let agent = long_agent();
    assert!(agent.len() > 3000);
    let login = |email: String| {
        Client::new()
            .post(server.identity("sessions"))
            .header("user-agent", &agent)
            .json(&json!({ "email": email, "password": "Wrong-password1" }))
            .send()
    };
    login(user.email.clone())
        .await
        .assert_error(401, "identity.session.invalid_params");
    login("nobody-here@example.com".into())
        .await
        .assert_error(401, "identity.session.invalid_params");
    // The failed attempt on the real account is on record, its agent cut to the column.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {} AND action = 'login'
             AND result = 'failed' AND char_length(user_agent) = 1024",
            user.id
        ))
        .await,
        1
    );
    let reset = |email: String| {
        Client::new()
            .post(server.identity("users/password/generate_code"))
            .header("user-agent", &agent)
            .json(&json!({ "email": email }))
            .send()
    };
    assert_eq!(reset(user.email.clone()).await.status, 201);
    assert_eq!(reset("nobody-here@example.com".into()).await.status, 201);
    // A session opened with such an agent works with it.
    let opened = Client::new()
        .post(server.identity("sessions"))
        .header("user-agent", &agent)
        .json(&json!({ "email": user.email, "password": user.password }))
        .send()
        .await;
    assert_eq!(opened.status, 200, "{}", opened.text());
}

/// The newest reset token emailed to `email`.
async fn reset_token(env: &TestEnv, email: &str) -> String {
    let client = env.store.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT payload->'record'->>'token' FROM event_outbox
             WHERE name = 'system.user.password.reset.token'
               AND payload->'record'->'user'->>'email' = $1
             ORDER BY id DESC LIMIT 1",
            &[&email],
        )
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn a_failed_reset_request_leaves_the_last_link_working() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let user = env.user("member").await;
    let request = || {
        Client::new()
            .post(server.identity("users/password/generate_code"))
            .json(&json!({ "email": user.email }))
            .send()
    };
    assert_eq!(request().await.status, 201);
    let emailed = reset_token(&env, &user.email).await;
    // The next request fails on its way (the database refuses its event).
    env.sql(
        "ALTER TABLE event_outbox ADD CONSTRAINT refuse_resets
         CHECK (name <> 'system.user.password.reset.token') NOT VALID",
    )
    .await;
    let failed = request().await;
    assert!(failed.status >= 500, "{}", failed.text());
    env.sql("ALTER TABLE event_outbox DROP CONSTRAINT refuse_resets")
        .await;
    // The link the user holds still works: the failed request replaced nothing.
    let done = Client::new()
        .post(server.identity("users/password/confirm_code"))
        .json(&json!({
            "reset_password_token": emailed,
            "password": "Xwqe213PZCXwe",
            "confirm_password": "Xwqe213PZCXwe",
        }))
        .send()
        .await;
    assert_eq!(done.status, 201, "{}", done.text());
}

#[tokio::test]
async fn over_long_values_cannot_wipe_the_audit_trail() {
    let env = TestEnv::new().await;
    env.sql(
        "INSERT INTO permissions (role, verb, path, action, topic) VALUES
           ('audited', 'ALL', 'api/v2/peatio/admin', 'ACCEPT', NULL),
           ('audited', 'POST', 'api/v2/peatio/admin', 'AUDIT', 'withdrawals')",
    )
    .await;
    let server = env.start().await;
    let admin = env.user("audited").await;
    let session = server.login(&admin).await;
    let member = env.user_with("member", "active", true).await;
    let key = env.api_key(&member.uid).await;
    let agent = long_agent();
    let poisoned_uid = "A".repeat(40);
    let poison = || {
        let mut request = Client::new()
            .get(server.decision(&format!(
                "/api/v2/peatio/admin/members?uid={poisoned_uid}&note={}",
                "x".repeat(20_000)
            )))
            .header("user-agent", &agent);
        for (name, value) in key.headers() {
            request = request.header(&name, &value);
        }
        request.send()
    };
    // Denials with over-long values before, around and after an admin's audited write, so
    // that they share the writer's batches.
    for _ in 0..5 {
        poison().await.assert_error(401, "authz.invalid_permission");
    }
    let audited = Client::new()
        .post(server.decision("/api/v2/peatio/admin/withdraws/1/process"))
        .session(&session)
        .header("x-csrf-token", &session.csrf)
        .send()
        .await;
    assert_eq!(audited.status, 200, "{}", audited.text());
    for _ in 0..5 {
        poison().await.assert_error(401, "authz.invalid_permission");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let admin_id = admin.id;
    let member_id = member.id;
    TestEnv::eventually(5000, || {
        let env = &env;
        async move {
            env.count(&format!(
                "SELECT count(*) FROM activities WHERE user_id = {admin_id}
                 AND category = 'admin' AND result = 'succeed' AND topic = 'withdrawals'"
            ))
            .await
                == 1
        }
    })
    .await;
    TestEnv::eventually(5000, || {
        let env = &env;
        async move {
            env.count(&format!(
                "SELECT count(*) FROM activities WHERE user_id = {member_id}
                 AND category = 'admin' AND result = 'denied'"
            ))
            .await
                == 10
        }
    })
    .await;
    // The denials are on record, cut to fit; the made-up uid is no target.
    assert_eq!(
        env.count(&format!(
            "SELECT count(*) FROM activities WHERE user_id = {member_id} AND target_uid IS NULL
             AND char_length(user_agent) = 1024 AND length(data) <= 8192"
        ))
        .await,
        10
    );
}

async fn member_session(env: &TestEnv, server: &Server) -> Session {
    let user = env.user("member").await;
    server.login(&user).await
}

#[tokio::test]
async fn csrf_covers_every_unsafe_method_in_any_letter_case() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let session = member_session(&env, &server).await;
    for method in ["patch", "Post", "pUT", "delete", "TRACE"] {
        Client::new()
            .request(method, server.decision(BALANCES))
            .session(&session)
            .send()
            .await
            .assert_error(401, "authz.missing_csrf_token");
    }
    // Methods the gate does not know are refused, with or without a session.
    for method in ["PROPFIND", "BREW", "CONNECTX"] {
        Client::new()
            .request(method, server.decision(BALANCES))
            .session(&session)
            .header("x-csrf-token", &session.csrf)
            .send()
            .await
            .assert_error(400, "authz.invalid_request");
    }
    // At nginx's front, the original method counts the same way.
    let nginx = Client::new()
        .get(server.url("/api/v2/auth/_/nginx"))
        .session(&session)
        .header("x-original-method", "delete")
        .header("x-original-uri", BALANCES)
        .send()
        .await;
    assert_eq!(
        (nginx.status, nginx.header("x-authz-error")),
        (401, Some("authz.missing_csrf_token"))
    );
    // Safe methods need no token.
    for method in ["GET", "head", "Options"] {
        let safe = Client::new()
            .request(method, server.decision(BALANCES))
            .session(&session)
            .send()
            .await;
        assert_ne!(safe.status, 401, "{method}: {}", safe.text());
    }
}

#[tokio::test]
async fn the_original_method_and_uri_are_required() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let session = member_session(&env, &server).await;
    let nginx = |method: Option<&'static str>, uri: Option<&'static str>| {
        let mut request = Client::new()
            .get(server.url("/api/v2/auth/_/nginx"))
            .session(&session);
        if let Some(method) = method {
            request = request.header("x-original-method", method);
        }
        if let Some(uri) = uri {
            request = request.header("x-original-uri", uri);
        }
        request.send()
    };
    for (method, uri) in [
        (None, Some(BALANCES)),
        (Some("POST"), None),
        (Some("BREW"), Some(BALANCES)),
        (Some(""), Some(BALANCES)),
    ] {
        let denied = nginx(method, uri).await;
        assert_eq!(denied.status, 403, "{method:?} {uri:?}");
        assert_eq!(denied.header("x-authz-status"), Some("400"));
        assert_eq!(
            denied.header("x-authz-error"),
            Some("authz.invalid_request")
        );
    }
    let traefik = |method: Option<&'static str>| {
        let mut request = Client::new()
            .get(server.url("/api/v2/auth/_/forward-auth"))
            .session(&session)
            .header("x-forwarded-uri", BALANCES);
        if let Some(method) = method {
            request = request.header("x-forwarded-method", method);
        }
        request.send()
    };
    traefik(None)
        .await
        .assert_error(400, "authz.invalid_request");
    traefik(Some("MKCOL"))
        .await
        .assert_error(400, "authz.invalid_request");
    assert_eq!(traefik(Some("GET")).await.status, 200);
}

#[tokio::test]
async fn blocklogin_stops_every_path_that_opens_a_session() {
    let env = TestEnv::new().await;
    env.restrict("blocklogin", "ip", "4.4.4.4", Some(403)).await;
    let server = env.start().await;
    let from_blocked = |method: &'static str, path: &'static str| {
        Client::new()
            .request(method, server.url(path))
            .header("x-forwarded-for", "4.4.4.4")
            .header("user-agent", UA)
            .json(&json!({}))
            .send()
    };
    for path in [
        "/api/v2/auth/identity/sessions",
        "/api/v2/auth/identity/sessions/auth0",
        "/api/v2/auth/identity/users",
        "/api/v2/auth/identity/users/email/confirm_code",
    ] {
        from_blocked("POST", path)
            .await
            .assert_error(403, "authz.restrict.blocklogin");
        // As Envoy would ask about it, too.
        Client::new()
            .post(server.decision(path))
            .header("x-forwarded-for", "4.4.4.4")
            .send()
            .await
            .assert_error(403, "authz.restrict.blocklogin");
    }
    // Everything else stays open to that address.
    let ping = from_blocked("GET", "/api/v2/auth/identity/ping").await;
    assert_eq!(ping.status, 200, "{}", ping.text());
    let code = from_blocked("POST", "/api/v2/auth/identity/users/email/generate_code").await;
    assert_ne!(code.status, 403, "{}", code.text());
}

#[tokio::test]
async fn unknown_api_key_ids_are_remembered_and_limited_per_address() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[api_keys]\nunknown_per_ip = { max = 3, window = 60 }")
        .await;
    let probe = |kid: String, from: &'static str| {
        Client::new()
            .get(server.decision(BALANCES))
            .header("x-forwarded-for", from)
            .header("x-auth-apikey", &kid)
            .header("x-auth-nonce", "1")
            .header("x-auth-signature", "00")
            .send()
    };
    let first = format!("{:016x}", 1u64);
    for n in 1..=3u64 {
        probe(format!("{n:016x}"), "5.5.5.5")
            .await
            .assert_error(401, "authz.unexistent_apikey");
    }
    // A known-unknown kid costs nothing and stays answered as such.
    for _ in 0..5 {
        probe(first.clone(), "5.5.5.5")
            .await
            .assert_error(401, "authz.unexistent_apikey");
    }
    // A new random kid from the same address is not looked up.
    let limited = probe(format!("{:016x}", 0xdead_beef_u64), "5.5.5.5").await;
    limited.assert_error(429, "authz.too_many_attempts");
    // Other addresses, and real keys, are not affected.
    probe(format!("{:016x}", 99u64), "6.6.6.6")
        .await
        .assert_error(401, "authz.unexistent_apikey");
    let user = env.user_with("member", "active", true).await;
    let key = env.api_key(&user.uid).await;
    let mut real = Client::new()
        .get(server.decision(BALANCES))
        .header("x-forwarded-for", "6.6.6.6");
    for (name, value) in key.headers() {
        real = real.header(&name, &value);
    }
    let real = real.send().await;
    assert_eq!(real.status, 200, "{}", real.text());
}

#[tokio::test]
async fn answers_from_other_services_are_read_only_up_to_a_bound() {
    let env = TestEnv::new().await;
    let fakes = crate::support::fakes::Fakes::start().await;
    // A captcha service whose "yes" comes after eight megabytes.
    let server = env
        .start_with(&format!(
            "[captcha]\nkind = \"recaptcha\"\nrecaptcha_secret_key = \"s\"\nrecaptcha_verify_url = \"{}\"",
            fakes.url("/huge")
        ))
        .await;
    let started = std::time::Instant::now();
    Client::new()
        .post(server.identity("users"))
        .json(&json!({
            "email": "huge@example.com",
            "password": "Iequ4geiEWQw!",
            "captcha_response": "answer",
        }))
        .send()
        .await
        .assert_error(422, "identity.captcha.verification_failed");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        env.count("SELECT count(*) FROM users WHERE email = 'huge@example.com'")
            .await,
        0
    );
}

/// Login CSRF: a page of another site posting a form that would log the victim's browser into
/// the attacker's account is refused; the exchange's own pages, listed origins, JSON callers
/// and bots are not.
#[tokio::test]
async fn another_sites_form_cannot_open_a_session() {
    let env = TestEnv::new().await;
    let server = env
        .start_with("[cors]\norigins = \"https://exchange.example\"")
        .await;
    let attacker = env.user("member").await;
    let form = format!(
        "email={}&password={}",
        attacker.email.replace('@', "%40"),
        attacker.password.replace('!', "%21")
    );
    let post = |extra: &[(&'static str, &'static str)]| {
        let mut request = Client::new()
            .post(server.identity("sessions"))
            .header("user-agent", UA)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone());
        for (name, value) in extra {
            request = request.header(name, value);
        }
        request.send()
    };
    post(&[
        ("sec-fetch-site", "cross-site"),
        ("origin", "https://evil.example"),
    ])
    .await
    .assert_error(403, "request.cross_site_form");
    // Browsers that do not send Sec-Fetch-Site still send Origin on a cross-site POST.
    post(&[("origin", "https://evil.example")])
        .await
        .assert_error(403, "request.cross_site_form");
    for fine in [
        vec![("sec-fetch-site", "same-origin")],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://exchange.example"),
        ],
        vec![],
    ] {
        let response = post(&fine).await;
        assert_eq!(response.status, 200, "{fine:?}: {}", response.text());
    }
    // Signup and email confirmation are guarded the same way.
    Client::new()
        .post(server.identity("users"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body("email=victim%40example.com&password=Iequ4geiEWQw%21")
        .send()
        .await
        .assert_error(403, "request.cross_site_form");
}

/// Every GeeTest challenge asked for is a call to GeeTest: nobody can make us flood it.
#[tokio::test]
async fn geetest_challenges_are_limited_per_caller() {
    let env = TestEnv::new().await;
    let fakes = crate::support::fakes::Fakes::start().await;
    let server = env
        .start_with(&format!(
            "[captcha]\nkind = \"geetest\"\ngeetest_id = \"gt-id\"\ngeetest_key = \"gt-key\"\n\
             geetest_api_url = \"{}\"\n[rate_limits]\ncaptcha_register_per_ip = {{ max = 2, window = 60 }}",
            fakes.url("/geetest")
        ))
        .await;
    fakes.set(|s| s.geetest_challenge = Some("0123456789abcdef0123456789abcdef".into()));
    let ask = |from: &'static str| {
        Client::new()
            .get(server.identity("users/register_geetest"))
            .header("x-forwarded-for", from)
            .send()
    };
    assert_eq!(ask("7.7.7.7").await.status, 200);
    assert_eq!(ask("7.7.7.7").await.status, 200);
    let limited = ask("7.7.7.7").await;
    limited.assert_error(429, "identity.user.too_many_attempts");
    assert!(limited.header("retry-after").is_some());
    assert_eq!(ask("7.7.7.8").await.status, 200);
    let calls = fakes
        .calls()
        .into_iter()
        .filter(|(kind, _)| kind == "geetest_register")
        .count();
    assert_eq!(calls, 3, "the limited call reached GeeTest");
}

/// Every operation of the served OpenAPI document (identity, public, resource, admin), as a
/// superadmin, with each documented parameter set to hostile values in turn (a NUL, 100,000
/// characters, an object, a negative number; path parameters too): the answer is never a
/// 5xx.
#[tokio::test]
async fn no_documented_operation_answers_5xx_to_hostile_parameters() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let boss = env.user_with("superadmin", "active", false).await;
    let session = server.login(&boss).await;
    let bearer = crate::resource::bearer(&server, &session).await;
    let doc = Client::new()
        .get(server.url("/api/v2/auth/swagger_doc"))
        .send()
        .await
        .json();
    let huge = "x".repeat(100_000);
    let junk = [
        json!("a\u{0}b"),
        json!(huge),
        json!({ "a": [1, { "b": null }] }),
        json!(-1),
    ];
    let path_junk = ["%00", "x".repeat(300).leak() as &str, "-1"];
    let mut failures = Vec::new();
    let mut sent = 0;
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            // Operations that would end the caller's own account or session.
            // KYC callbacks answer 503 by design while KYC is not configured.
            if path.ends_with("/public/kyc") {
                continue;
            }
            if method == "delete"
                && (path.ends_with("/resource/users/me") || path.ends_with("/identity/sessions"))
            {
                continue;
            }
            let mut names: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] != "path")
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            for content in operation["requestBody"]["content"]
                .as_object()
                .into_iter()
                .flatten()
            {
                for name in content.1["schema"]["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                {
                    names.push(name.0.clone());
                }
            }
            for (round, value) in junk.iter().enumerate() {
                let target = path_junk[round % path_junk.len()];
                let concrete = regex_lite_replace(path, target);
                assert!(
                    server.url(&concrete).parse::<http::Uri>().is_ok(),
                    "{method} {path} -> {concrete}"
                );
                let body: serde_json::Map<String, serde_json::Value> =
                    names.iter().map(|n| (n.clone(), value.clone())).collect();
                let mut request = Client::new()
                    .request(&method.to_ascii_uppercase(), server.url(&concrete))
                    .header("authorization", &bearer);
                request = if method == "get" {
                    let query: Vec<String> = names
                        .iter()
                        .map(|n| {
                            // A URI holds at most 64 KiB: long, but not 100,000.
                            let text: String = value
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or(value.to_string())
                                .chars()
                                .take(4_000)
                                .collect();
                            format!("{n}={}", urlencode(&text))
                        })
                        .collect();
                    Client::new()
                        .request(
                            "GET",
                            server.url(&format!("{concrete}?{}", query.join("&"))),
                        )
                        .header("authorization", &bearer)
                } else {
                    request.json(&serde_json::Value::Object(body))
                };
                let answer = request.send().await;
                sent += 1;
                if answer.status >= 500 {
                    failures.push(format!(
                        "{} {concrete} [{round}] -> {} {}",
                        method.to_ascii_uppercase(),
                        answer.status,
                        answer.text().chars().take(200).collect::<String>()
                    ));
                }
            }
        }
    }
    assert!(sent > 300, "{sent} requests sent");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `path` with every `{name}` replaced by `value`.
fn regex_lite_replace(path: &str, value: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => {
                out.push_str(value);
                rest = &rest[start + end + 1..];
            }
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Percent-encodes everything but unreserved characters.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends `raw` on a new connection and returns the answer's status line and body, or panics
/// when nothing comes within `limit`.
async fn raw_exchange(server: &Server, raw: &[u8], limit: Duration) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // The server may answer (and close) before it has read all of `raw`.
    let _ = stream.write_all(raw).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(limit, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&answer);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer within {limit:?}: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused_before_they_are_read() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let head = |extra: usize| {
        format!(
            "GET /api/v2/auth/public/time HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(extra)
        )
        .into_bytes()
    };
    // Under 64 KiB of head: served.
    let (status, _) = raw_exchange(&server, &head(60 * 1024), Duration::from_secs(5)).await;
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    // Over it: 431, not buffered up to hyper's default ~400 KiB.
    let (status, _) = raw_exchange(&server, &head(80 * 1024), Duration::from_secs(5)).await;
    assert!(status.starts_with("HTTP/1.1 431"), "{status}");

    // A body announced longer than server.max_body_bytes (10 MiB): 413 at once, not after
    // reading 10 MiB or waiting for the body timeout (20 s) with one byte sent.
    let announced = format!(
        "POST /api/v2/auth/identity/sessions HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\n\
         Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{{"
    );
    let (status, body) = raw_exchange(&server, announced.as_bytes(), Duration::from_secs(5)).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "errors": ["request.body_too_large"] })
    );
    // One within the cap is read and judged as usual.
    let fine = format!(
        "POST /api/v2/auth/identity/sessions HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let (status, _) = raw_exchange(&server, fine.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        status.starts_with("HTTP/1.1 4") && !status.contains("413"),
        "{status}"
    );
}
