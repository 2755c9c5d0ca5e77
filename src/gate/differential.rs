//! The compiled matchers against the linear scans they replaced (issue 13): thousands of
//! random tables and requests from a seeded generator, each answered by the compiled
//! structure and by a copy of the old scan kept here as the oracle. Any difference is a
//! change of semantics.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use time::OffsetDateTime;

use super::permissions::{Action, Matched, Permissions, Verdict};
use super::restrictions::{self, Hit, Restrictions, Rule};
use crate::domain::policy::{PermissionRow, RestrictionRow};
use crate::net::fuzz::Gen;
use crate::net::geoip::Location;

/// The permissions table as it was before issue 13: every row of the role, in order.
mod linear_permissions {
    use super::*;

    struct Rule {
        id: i64,
        verb: String,
        path: String,
        action: Action,
        topic: Option<String>,
    }

    pub struct Linear {
        by_role: HashMap<String, Vec<Rule>>,
    }

    impl Linear {
        pub fn compile(rows: &[PermissionRow]) -> Linear {
            let mut by_role: HashMap<String, Vec<Rule>> = HashMap::new();
            for row in rows {
                let Some(action) = Action::parse(&row.action) else {
                    continue;
                };
                by_role.entry(row.role.clone()).or_default().push(Rule {
                    id: row.id,
                    verb: row.verb.to_ascii_uppercase(),
                    path: row.path.clone(),
                    action,
                    topic: row.topic.clone(),
                });
            }
            Linear { by_role }
        }

        pub fn role_exists(&self, role: &str) -> bool {
            self.by_role.contains_key(role)
        }

        pub fn evaluate(&self, role: &str, verb: &str, path: &str) -> (Verdict, Matched) {
            let mut matched = Matched::default();
            let mut audit_topic: Option<Option<String>> = None;
            for rule in self.by_role.get(role).map(Vec::as_slice).unwrap_or(&[]) {
                let verb_matches = rule.verb == verb
                    || rule.verb == "ALL"
                    || (verb == "HEAD" && rule.verb == "GET" && rule.action == Action::Drop);
                if !verb_matches || !path.starts_with(&rule.path) {
                    continue;
                }
                match rule.action {
                    Action::Accept => matched.accept.push(rule.id),
                    Action::Drop => matched.drop.push(rule.id),
                    Action::Audit => {
                        matched.audit.push(rule.id);
                        audit_topic.get_or_insert_with(|| rule.topic.clone());
                    }
                }
            }
            let verdict = if matched.drop.is_empty() && !matched.accept.is_empty() {
                Verdict::Allow { audit: audit_topic }
            } else {
                Verdict::Deny
            };
            (verdict, matched)
        }
    }
}

/// The restrictions as they were before issue 13: subnets and geo values scanned in order.
mod linear_restrictions {
    use super::*;

    #[derive(Default)]
    struct CategoryRules {
        all: Option<Hit>,
        ips: HashMap<IpAddr, Hit>,
        subnets: Vec<(IpNet, Hit)>,
        continents: Vec<(String, Hit)>,
        countries: Vec<(String, Hit)>,
    }

    impl CategoryRules {
        fn find(&self, ip: IpAddr, location: &mut dyn FnMut() -> Option<Location>) -> Option<Hit> {
            if let Some(hit) = self.all {
                return Some(hit);
            }
            if let Some(hit) = self.ips.get(&ip) {
                return Some(*hit);
            }
            if let Some((_, hit)) = self.subnets.iter().find(|(net, _)| net.contains(&ip)) {
                return Some(*hit);
            }
            if self.continents.is_empty() && self.countries.is_empty() {
                return None;
            }
            let loc = location()?;
            let continent = self.continents.iter().find(|(value, _)| {
                !value.is_empty() && (*value == loc.continent_code || *value == loc.continent_name)
            });
            if let Some((_, hit)) = continent {
                return Some(*hit);
            }
            self.countries
                .iter()
                .find(|(value, _)| {
                    !value.is_empty()
                        && (*value == loc.country_code
                            || *value == loc.country_code3
                            || *value == loc.country_name)
                })
                .map(|(_, hit)| *hit)
        }

        fn is_empty(&self) -> bool {
            self.all.is_none()
                && self.ips.is_empty()
                && self.subnets.is_empty()
                && self.continents.is_empty()
                && self.countries.is_empty()
        }
    }

    #[derive(Default)]
    pub struct Linear {
        categories: [CategoryRules; 4],
    }

    impl Linear {
        pub fn compile(rows: &[RestrictionRow]) -> Linear {
            let mut compiled = Linear::default();
            // Reading a row is shared with the compiled table: issue 13 changed the lookups.
            for (rule, hit) in rows.iter().filter_map(Rule::read) {
                let rules = &mut compiled.categories[hit.category as usize];
                match rule {
                    Rule::All => {
                        rules.all.get_or_insert(hit);
                    }
                    Rule::Ip(ip) => {
                        rules.ips.entry(ip).or_insert(hit);
                    }
                    Rule::Subnet(net) => rules.subnets.push((net.trunc(), hit)),
                    Rule::Continent(value) => rules.continents.push((value.to_lowercase(), hit)),
                    Rule::Country(value) => rules.countries.push((value.to_lowercase(), hit)),
                }
            }
            compiled
        }

        pub fn needs_location(&self) -> bool {
            self.categories
                .iter()
                .any(|c| !c.continents.is_empty() || !c.countries.is_empty())
        }

        pub fn is_empty(&self) -> bool {
            self.categories.iter().all(CategoryRules::is_empty)
        }

        pub fn check(
            &self,
            ip: IpAddr,
            is_login: bool,
            location: &mut dyn FnMut() -> Option<Location>,
        ) -> restrictions::Verdict {
            let mut cached: Option<Option<Location>> = None;
            let mut locate = || cached.get_or_insert_with(&mut *location).clone();
            for (index, rules) in self.categories.iter().enumerate() {
                if rules.is_empty() {
                    continue;
                }
                let Some(hit) = rules.find(ip, &mut locate) else {
                    continue;
                };
                return match index {
                    0 => restrictions::Verdict::Clear,
                    3 if !is_login => restrictions::Verdict::Clear,
                    _ => restrictions::Verdict::Deny(hit),
                };
            }
            restrictions::Verdict::Clear
        }
    }
}

fn pick<'a>(g: &mut Gen, from: &[&'a str]) -> &'a str {
    from[g.below(from.len())]
}

/// `text` cut at a random place (on a character boundary): a prefix of it.
fn cut(g: &mut Gen, text: &str) -> String {
    let mut at = g.below(text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    text[..at].to_string()
}

const ROLES: &[&str] = &["member", "admin", "trader", "Member"];
const ROW_VERBS: &[&str] = &[
    "GET", "GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "ALL", "ALL", "all", "get", "head",
    "OPTIONS",
];
const REQUEST_VERBS: &[&str] = &[
    "GET", "HEAD", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "ALL", "get",
];
const ACTIONS: &[&str] = &[
    "ACCEPT", "ACCEPT", "DROP", "AUDIT", "accept", "drop", "Audit", "ALL", "bogus",
];
const PATH_PIECES: &[&str] = &["api", "/", "v2", "peatio", "a", "ab", "b", "x", "/", "é"];

fn permission_table(g: &mut Gen) -> Vec<PermissionRow> {
    // Paths grow from a few stems, cut and extended, so that prefixes overlap a lot.
    let stems: Vec<String> = (0..1 + g.below(4))
        .map(|_| g.string(PATH_PIECES, 8))
        .collect();
    let size = if g.below(10) == 0 { 200 } else { g.below(30) };
    (0..size)
        .map(|_| {
            let stem = &stems[g.below(stems.len())];
            let path = match g.below(6) {
                0 => String::new(),
                1 => format!("/{stem}"),
                2 => format!("{}{}", cut(g, stem), g.string(PATH_PIECES, 2)),
                _ => cut(g, stem),
            };
            PermissionRow {
                id: g.below(50) as i64,
                action: pick(g, ACTIONS).into(),
                role: pick(g, ROLES).into(),
                verb: pick(g, ROW_VERBS).into(),
                path,
                topic: match g.below(3) {
                    0 => None,
                    _ => Some(format!("topic{}", g.below(5))),
                },
                created_at: OffsetDateTime::UNIX_EPOCH,
                updated_at: OffsetDateTime::UNIX_EPOCH,
            }
        })
        .collect()
}

#[test]
fn compiled_permissions_decide_as_the_linear_scan() {
    let mut g = Gen::new(0x13_0001);
    let mut allowed = 0;
    let mut audited = 0;
    for _ in 0..3_000 {
        let rows = permission_table(&mut g);
        let compiled = Permissions::compile(&rows);
        let linear = linear_permissions::Linear::compile(&rows);
        for role in ROLES.iter().chain(&["nobody", ""]) {
            assert_eq!(compiled.role_exists(role), linear.role_exists(role));
        }
        for _ in 0..30 {
            let role = pick(&mut g, ROLES);
            let verb = pick(&mut g, REQUEST_VERBS);
            let base = rows
                .get(g.below(rows.len().max(1)))
                .map(|row| row.path.as_str());
            let path = match (base, g.below(4)) {
                (Some(base), 0) => cut(&mut g, base),
                (Some(base), 1 | 2) => format!("{base}{}", g.string(PATH_PIECES, 3)),
                _ => g.string(PATH_PIECES, 8),
            };
            let expected = linear.evaluate(role, verb, &path);
            assert_eq!(
                compiled.evaluate(role, verb, &path),
                expected,
                "{role} {verb} {path:?} over {rows:#?}"
            );
            assert_eq!(compiled.check(role, verb, &path), expected.0);
            if let Verdict::Allow { audit } = &expected.0 {
                allowed += 1;
                audited += usize::from(audit.is_some());
            }
        }
    }
    // The generator must reach the interesting outcomes, not only denials.
    assert!(allowed > 5_000 && audited > 1_000, "{allowed} {audited}");
}

const CATEGORIES: &[&str] = &[
    "whitelist",
    "maintenance",
    "blacklist",
    "blocklogin",
    "bogus",
];
const GEO_VALUES: &[&str] = &[
    "GB",
    "gb",
    "gbr",
    "United Kingdom",
    "EU",
    "europe",
    "Europe",
    "US",
    "usa",
    "united states",
    "na",
    "north america",
    "",
    " ",
    "fr",
    "eu",
];

/// An address of a small space (so that rows and requests meet), or anywhere.
fn address(g: &mut Gen, v6: bool) -> IpAddr {
    let near = g.below(4) != 0;
    match (v6, near) {
        (false, true) => IpAddr::from([10, 0, g.below(4) as u8, g.below(8) as u8 * 32]),
        (false, false) => IpAddr::from((g.next() as u32).to_be_bytes()),
        (true, true) => {
            let low = (g.below(4) as u128) << 64 | (g.below(8) as u128) << 124 >> 64;
            IpAddr::from((0x2001_0db8_u128 << 96 | low).to_be_bytes())
        }
        (true, false) => IpAddr::from(((g.next() as u128) << 64 | g.next() as u128).to_be_bytes()),
    }
}

fn restriction_table(g: &mut Gen) -> Vec<RestrictionRow> {
    let size = if g.below(10) == 0 { 150 } else { g.below(25) };
    // A row of scope `all` decides its category before any subnet or geo row is read: most
    // tables go without, so that the scans below it are compared too.
    let with_all = g.below(4) == 0;
    (0..size)
        .map(|id| {
            let v6 = g.below(3) == 0;
            let (scope, value) = match g.below(12) {
                0 if with_all => ("all", "all".to_string()),
                1 | 2 => ("ip", address(g, v6).to_string()),
                0 | 3..=6 => {
                    let bits = if v6 { 128 } else { 32 };
                    let value = match g.below(8) {
                        0 => address(g, v6).to_string(),
                        1 => format!("{}/{}", address(g, v6), bits + 1),
                        _ => format!("{}/{}", address(g, v6), g.below(bits + 1)),
                    };
                    ("ip_subnet", format!("{}{value}", pick(g, &["", " "])))
                }
                7 | 8 => ("continent", pick(g, GEO_VALUES).to_string()),
                9 | 10 => ("country", pick(g, GEO_VALUES).to_string()),
                _ => (pick(g, &["bogus", "IP"]), address(g, v6).to_string()),
            };
            RestrictionRow {
                id: id as i64,
                category: pick(g, CATEGORIES).into(),
                scope: scope.into(),
                value,
                code: [None, Some(433), Some(200)][g.below(3)],
                state: pick(g, &["enabled", "enabled", "enabled", "disabled"]).into(),
                created_at: OffsetDateTime::UNIX_EPOCH,
                updated_at: OffsetDateTime::UNIX_EPOCH,
            }
        })
        .collect()
}

fn location(g: &mut Gen) -> Option<Location> {
    let place = |fields: [&str; 5]| Location {
        country_code: fields[0].into(),
        country_code3: fields[1].into(),
        country_name: fields[2].into(),
        continent_code: fields[3].into(),
        continent_name: fields[4].into(),
        country_display: fields[2].into(),
    };
    match g.below(6) {
        0 => None,
        1 => Some(place(["us", "usa", "united states", "na", "north america"])),
        // Fields that collide across scopes, and the case MaxMind would not send.
        2 => Some(place(["eu", "gbr", "europe", "eu", "europe"])),
        3 => Some(place(["GB", "gbr", "United Kingdom", "EU", "europe"])),
        4 => Some(place(["", "", "", "", ""])),
        _ => Some(place(["gb", "gbr", "united kingdom", "eu", "europe"])),
    }
}

#[test]
fn compiled_restrictions_decide_as_the_linear_scan() {
    let mut g = Gen::new(0x13_0002);
    let mut denied = [0usize; 4];
    for _ in 0..3_000 {
        let rows = restriction_table(&mut g);
        let compiled = Restrictions::compile(&rows);
        let linear = linear_restrictions::Linear::compile(&rows);
        assert_eq!(compiled.needs_location(), linear.needs_location());
        assert_eq!(compiled.is_empty(), linear.is_empty());
        for _ in 0..40 {
            let ip = match g.below(8) {
                0 => match address(&mut g, false) {
                    IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
                    v6 => v6,
                },
                n => address(&mut g, n < 3),
            };
            let is_login = g.below(2) == 0;
            let place = location(&mut g);
            let (mut asked, mut asked_before) = (0, 0);
            let verdict = compiled.check(ip, is_login, &mut || {
                asked += 1;
                place.clone()
            });
            let expected = linear.check(ip, is_login, &mut || {
                asked_before += 1;
                place.clone()
            });
            assert_eq!(verdict, expected, "{ip} {place:?} over {rows:#?}");
            assert_eq!(asked, asked_before, "location lookups, {ip} over {rows:#?}");
            if let restrictions::Verdict::Deny(hit) = verdict {
                denied[hit.category as usize] += 1;
            }
        }
    }
    assert!(denied[1..].iter().all(|&n| n > 1_000), "{denied:?}");
}

/// Overlapping subnets of every length, in random row orders, each length also holding a
/// sibling network that misses the address: the first row holding the address wins, as the
/// scan found it, whichever length that row has and wherever the siblings sit.
#[test]
fn overlapping_subnets_of_every_length_resolve_by_row_order() {
    let row = |id: i64, value: String| RestrictionRow {
        id,
        category: "blacklist".into(),
        scope: "ip_subnet".into(),
        value,
        code: None,
        state: "enabled".into(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    };
    // The network of `ip`'s length-`len` prefix with its last bit flipped.
    let sibling = |ip: IpAddr, len: u8| -> IpAddr {
        match ip {
            IpAddr::V4(v4) => (u32::from(v4) ^ 1 << (32 - len)).to_be_bytes().into(),
            IpAddr::V6(v6) => (u128::from(v6) ^ 1 << (128 - len)).to_be_bytes().into(),
        }
    };
    let mut g = Gen::new(0x13_0003);
    for (ip, bits) in [
        ("203.0.113.77".parse::<IpAddr>().unwrap(), 32u8),
        (
            "2001:db8:1234:5678:9abc:def0:1357:9bdf".parse().unwrap(),
            128,
        ),
    ] {
        // Rows holding the address have ids 0..=bits; their siblings, negative ids.
        let mut rows: Vec<RestrictionRow> = (0..=bits)
            .map(|len| row(len.into(), format!("{ip}/{len}")))
            .chain(
                (1..=bits).map(|len| row(-i64::from(len), format!("{}/{len}", sibling(ip, len)))),
            )
            .collect();
        for _ in 0..500 {
            for i in (1..rows.len()).rev() {
                rows.swap(i, g.below(i + 1));
            }
            let table = &rows[..1 + g.below(rows.len())];
            let compiled = Restrictions::compile(table);
            let linear = linear_restrictions::Linear::compile(table);
            let verdict = compiled.check(ip, false, &mut || None);
            assert_eq!(verdict, linear.check(ip, false, &mut || None));
            match table.iter().find(|row| row.id >= 0) {
                Some(first) => assert!(
                    matches!(verdict, restrictions::Verdict::Deny(h) if h.id == first.id),
                    "{verdict:?} {table:#?}"
                ),
                None => assert_eq!(verdict, restrictions::Verdict::Clear),
            }
        }
    }
}
