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
use portcullis::net::geoip::Location;
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
    c.bench_function("gate/permissions evaluate, 10 rows", |b| {
        b.iter(|| {
            black_box(permissions.evaluate("member", "GET", "api/v2/peatio/account/balances"))
        })
    });
    // Issue 13: the decision must cost the same with a large table. The extra rows look like
    // real ones (per-resource paths over a few roles, verbs and actions) and none of them
    // matches the request, so the verdict stays the 10-row one.
    for total in [10_000, 100_000] {
        let mut big = rows.clone();
        big.extend((rows.len()..total).map(|i| synthetic_permission(i as i64)));
        let permissions = Permissions::compile(&big);
        assert!(matches!(
            permissions.check("member", "GET", "api/v2/peatio/account/balances"),
            portcullis::gate::permissions::Verdict::Allow { .. }
        ));
        c.bench_function(
            &format!("gate/permissions member GET balances, {total} rows"),
            |b| {
                b.iter(|| {
                    black_box(permissions.check("member", "GET", "api/v2/peatio/account/balances"))
                })
            },
        );
    }
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
    // Issue 13: ip, ip_subnet and country rows over three categories, none matching the
    // client; the location is known (a GeoIP hit), so every country row is compared.
    let uk = Location {
        country_code: "gb".into(),
        country_code3: "gbr".into(),
        country_name: "united kingdom".into(),
        continent_code: "eu".into(),
        continent_name: "europe".into(),
        country_display: "United Kingdom".into(),
    };
    for total in [10, 10_000] {
        let rows: Vec<RestrictionRow> = (0..total).map(synthetic_restriction).collect();
        let restrictions = Restrictions::compile(&rows);
        assert_eq!(
            restrictions.check(ip, true, &mut || Some(uk.clone())),
            portcullis::gate::restrictions::Verdict::Clear
        );
        c.bench_function(
            &format!("gate/restrictions {total} rows ip+subnet+country, no match"),
            |b| b.iter(|| black_box(restrictions.check(ip, true, &mut || Some(uk.clone())))),
        );
    }
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

/// Row `i` of a large permissions table: resource paths under prefixes the default member
/// rules also use, so the compiled structure shares their nodes.
fn synthetic_permission(i: i64) -> PermissionRow {
    const ROLES: [&str; 4] = ["member", "admin", "trader", "support"];
    const VERBS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "ALL"];
    const PREFIXES: [&str; 4] = [
        "api/v2/peatio/market/orders/",
        "api/v2/peatio/account/withdraws/",
        "api/v2/finex/market/trades/",
        "api/v2/barong/admin/users/",
    ];
    let n = i as usize;
    let action = match n % 10 {
        0 => "DROP",
        1 => "AUDIT",
        _ => "ACCEPT",
    };
    PermissionRow {
        id: i,
        action: action.into(),
        role: ROLES[n % ROLES.len()].into(),
        verb: VERBS[n / 4 % VERBS.len()].into(),
        path: format!("{}{}", PREFIXES[n / 20 % PREFIXES.len()], n),
        topic: (action == "AUDIT").then(|| format!("topic{}", n % 7)),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

/// Row `i` of a large restrictions table: private and shared addresses and networks (IPv4 /16
/// and /24, IPv6 /48) and countries other than the client's. Every 9 rows hold every kind
/// (scope, category, prefix length) once, so that 10 rows and 10,000 ask the same lookups:
/// the compiled table costs per kind of row, not per row.
fn synthetic_restriction(i: i64) -> RestrictionRow {
    const CATEGORIES: [&str; 3] = ["blacklist", "maintenance", "blocklogin"];
    const COUNTRIES: [&str; 8] = ["US", "fr", "Germany", "CHN", "jp", "Brazil", "ind", "UA"];
    let n = i as usize;
    let (scope, value) = match n % 3 {
        0 => (
            "ip",
            format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255),
        ),
        1 => match n / 3 % 3 {
            0 => (
                "ip_subnet",
                format!("172.{}.{}.0/24", 16 + (n >> 8 & 15), n & 255),
            ),
            1 => ("ip_subnet", format!("100.{}.0.0/16", 64 + (n & 63))),
            _ => ("ip_subnet", format!("2001:db8:{:x}::/48", n & 0xffff)),
        },
        _ => ("country", COUNTRIES[n / 3 % COUNTRIES.len()].to_string()),
    };
    RestrictionRow {
        id: i,
        category: CATEGORIES[n / 3 % CATEGORIES.len()].into(),
        scope: scope.into(),
        value,
        code: None,
        state: "enabled".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

criterion_group!(benches, tokens, policy);
criterion_main!(benches);
