//! Criterion benchmarks of the functions on the decision path: token signing (ours against
//! jsonwebtoken's encoder), token reuse, permission and restriction checks, path normalisation,
//! HMAC verification.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::config::JwtAlgorithm;
use portcullis::domain::subject::{SubjectKind, SubjectRecord};
use portcullis::gate::permissions::Permissions;
use portcullis::gate::restrictions::Restrictions;
use portcullis::gate::subjects::{CachedSubject, TokenReuse};
use portcullis::jwt::{Issuer, SigningKey};
use portcullis::store::permissions::PermissionRow;
use portcullis::store::restrictions::RestrictionRow;
use time::OffsetDateTime;

fn subject() -> SubjectRecord {
    SubjectRecord {
        kind: SubjectKind::User,
        id: 1,
        uid: "ID5FFA98DC27".into(),
        username: None,
        email: "admin@barong.io".into(),
        role: "member".into(),
        level: 3,
        state: "active".into(),
        referral_id: None,
        otp: true,
    }
}

fn tokens(c: &mut Criterion) {
    let key = SigningKey::generate();
    let pem = key.private_pem();
    let issuer = Issuer::new(key, JwtAlgorithm::RS256, 3600, true);
    let record = subject();
    c.bench_function("jwt/mint_session (aws-lc-rs, key parsed once)", |b| {
        b.iter(|| black_box(issuer.mint_session(&record, 1_700_000_000)))
    });
    let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    let claims = serde_json::json!({"iat": 1, "exp": 2, "sub": "session", "iss": "barong",
        "aud": ["peatio", "barong"], "jti": "0123456789abcdef0123", "uid": record.uid,
        "username": null, "email": record.email, "role": record.role, "level": 3,
        "state": "active", "referral_id": null});
    c.bench_function("jwt/jsonwebtoken::encode (aws_lc_rs feature)", |b| {
        b.iter(|| black_box(jsonwebtoken::encode(&header, &claims, &encoding).unwrap()))
    });
    let cached = CachedSubject::new(record);
    let reuse = TokenReuse {
        enabled: true,
        fraction: 0.5,
    };
    cached.bearer(&issuer, reuse, 1_700_000_000);
    c.bench_function("jwt/reuse cached token", |b| {
        b.iter(|| black_box(cached.bearer(&issuer, reuse, 1_700_000_100)))
    });
}

fn policy(c: &mut Criterion) {
    let epoch = OffsetDateTime::UNIX_EPOCH;
    // The shipped member-like rules plus admin rows, as the default policy has them.
    let mut rows = Vec::new();
    for (i, (role, verb, path, action)) in [
        ("member", "ALL", "api/v2/peatio/account", "ACCEPT"),
        ("member", "ALL", "api/v2/peatio/market", "ACCEPT"),
        ("member", "ALL", "api/v2/finex/market", "ACCEPT"),
        ("member", "ALL", "api/v2/auth/resource", "ACCEPT"),
        ("member", "ALL", "api/v2/applogic", "ACCEPT"),
        ("member", "GET", "api/v2/ranger", "ACCEPT"),
        ("member", "GET", "api/v2/open_finance", "ACCEPT"),
        ("admin", "ALL", "api/v2", "ACCEPT"),
        ("admin", "ALL", "api/v2/auth/admin/permissions", "DROP"),
        ("admin", "POST", "api/v2/", "AUDIT"),
    ]
    .into_iter()
    .enumerate()
    {
        rows.push(PermissionRow {
            id: i as i64,
            action: action.into(),
            role: role.into(),
            verb: verb.into(),
            path: path.into(),
            topic: None,
            created_at: epoch,
            updated_at: epoch,
        });
    }
    let permissions = Permissions::compile(&rows);
    c.bench_function("gate/permissions member GET balances", |b| {
        b.iter(|| black_box(permissions.check("member", "GET", "api/v2/peatio/account/balances")))
    });
    let restriction = |id, category: &str, scope: &str, value: &str| RestrictionRow {
        id,
        category: category.into(),
        scope: scope.into(),
        value: value.into(),
        code: None,
        state: "enabled".into(),
        created_at: epoch,
        updated_at: epoch,
    };
    let restrictions = Restrictions::compile(&[
        restriction(1, "blacklist", "ip", "203.0.113.7"),
        restriction(2, "blacklist", "ip_subnet", "198.51.100.0/24"),
        restriction(3, "blocklogin", "ip_subnet", "192.0.2.0/24"),
    ]);
    let ip = "81.2.69.142".parse().unwrap();
    c.bench_function("gate/restrictions ip+subnet, no match", |b| {
        b.iter(|| black_box(restrictions.check(ip, false, &mut || None)))
    });
    c.bench_function("net/rule_path", |b| {
        b.iter(|| {
            black_box(portcullis::net::path::rule_path(
                "/api/v2/peatio/account/balances/btc",
            ))
        })
    });
    let secret = "0123456789abcdef0123456789abcdef";
    let signature = portcullis::authn::api_keys::sign(secret, "1700000000000", "0123456789abcdef");
    let verifier = portcullis::authn::api_keys::Verifier::new("HS256", secret.as_bytes());
    c.bench_function("authn/hmac signature verify (cached key)", |b| {
        b.iter(|| black_box(verifier.verify("1700000000000", "0123456789abcdef", &signature)))
    });
}

criterion_group!(benches, tokens, policy);
criterion_main!(benches);
