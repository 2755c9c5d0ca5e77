//! Restrictions: whitelist, maintenance, blacklist and blocklogin, by scope (all, ip,
//! ip_subnet, continent, country), compiled from the table into lookups.
//!
//! Semantics follow Barong (§5): categories in the fixed order whitelist → maintenance →
//! blacklist → blocklogin; inside a category, scopes all → ip → ip_subnet → continent →
//! country, first match wins. Geo values match ISO codes and names, case-insensitively
//! (decisions.md #8).
//!
//! Compiled so that a check costs the same for ten rows or ten thousand (issue 13): addresses
//! and geo values in hash maps, subnets in a [`SubnetTable`]; each keeps, per key, the first row
//! in table order, which is the row a scan of the table would have found.

use std::net::IpAddr;

use foldhash::HashMap;
use ipnet::IpNet;

use super::subnet_table::SubnetTable;
use crate::domain::policy::RestrictionRow;
/// What makes a restriction row valid lives below the gate, with the rows (the store writes
/// drafts too); re-exported here where the gate's readers look for it.
pub use crate::domain::policy::{
    CATEGORIES, Draft, SCOPES, STATES, effective_code, validate_value,
};
use crate::net::geoip::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Whitelist,
    Maintenance,
    Blacklist,
    Blocklogin,
}

impl Category {
    pub fn parse(value: &str) -> Option<Category> {
        match value {
            "whitelist" => Some(Category::Whitelist),
            "maintenance" => Some(Category::Maintenance),
            "blacklist" => Some(Category::Blacklist),
            "blocklogin" => Some(Category::Blocklogin),
            _ => None,
        }
    }

    pub fn error_code(self) -> &'static str {
        match self {
            Category::Whitelist => "authz.restrict.whitelist",
            Category::Maintenance => "authz.restrict.maintenance",
            Category::Blacklist => "authz.restrict.blacklist",
            Category::Blocklogin => "authz.restrict.blocklogin",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub id: i64,
    pub category: Category,
    pub status: u16,
}

/// Geo values of one scope: lower-cased value → the first row holding it, with its place in
/// the table. Empty values are left out (they never match) but counted, because a category
/// with geo rows asks for the location whatever their values.
#[derive(Debug, Default)]
struct GeoValues {
    first: HashMap<String, (usize, Hit)>,
    rows: usize,
}

impl GeoValues {
    fn insert(&mut self, value: &str, place: usize, hit: Hit) {
        self.rows += 1;
        if !value.is_empty() {
            self.first
                .entry(value.to_lowercase())
                .or_insert((place, hit));
        }
    }

    /// The first row, in table order, whose value equals one of `fields`: the row a scan
    /// comparing each row with every field would find.
    fn first_of(&self, fields: &[&str]) -> Option<Hit> {
        fields
            .iter()
            .filter_map(|field| self.first.get(*field))
            .min_by_key(|(place, _)| *place)
            .map(|(_, hit)| *hit)
    }
}

#[derive(Debug, Default)]
struct CategoryRules {
    all: Option<Hit>,
    ips: HashMap<IpAddr, Hit>,
    subnets: SubnetTable<Hit>,
    continents: GeoValues,
    countries: GeoValues,
}

impl CategoryRules {
    /// Scopes all, ip and ip_subnet: what the address alone decides.
    fn find_by_address(&self, ip: IpAddr) -> Option<Hit> {
        self.all
            .or_else(|| self.ips.get(&ip).copied())
            .or_else(|| self.subnets.find(ip))
    }

    fn has_geo_rows(&self) -> bool {
        self.continents.rows > 0 || self.countries.rows > 0
    }

    /// Scopes continent, then country (codes and names, decisions.md #8).
    fn find_by_location(&self, loc: &Location) -> Option<Hit> {
        self.continents
            .first_of(&[&loc.continent_code, &loc.continent_name])
            .or_else(|| {
                self.countries
                    .first_of(&[&loc.country_code, &loc.country_code3, &loc.country_name])
            })
    }

    fn is_empty(&self) -> bool {
        self.all.is_none() && self.ips.is_empty() && self.subnets.is_empty() && !self.has_geo_rows()
    }
}

/// Enabled restrictions, compiled.
#[derive(Debug, Default)]
pub struct Restrictions {
    /// Indexed in evaluation order: whitelist, maintenance, blacklist, blocklogin.
    categories: [CategoryRules; 4],
}

/// What the restrictions say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing matched (or a whitelist matched): go on.
    Clear,
    Deny(Hit),
}

/// One enabled row, read: what it matches and what it says when it does.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rule<'a> {
    All,
    Ip(IpAddr),
    Subnet(IpNet),
    /// The trimmed value, as written (matched case-insensitively).
    Continent(&'a str),
    Country(&'a str),
}

impl<'a> Rule<'a> {
    /// `None` for a disabled row, an unknown category or scope, or an unreadable address:
    /// such rows never match.
    pub(super) fn read(row: &'a RestrictionRow) -> Option<(Rule<'a>, Hit)> {
        if row.state != "enabled" {
            return None;
        }
        let category = Category::parse(&row.category)?;
        let hit = Hit {
            id: row.id,
            category,
            status: effective_code(&row.category, &row.scope, row.code),
        };
        let value = row.value.trim();
        let rule = match row.scope.as_str() {
            "all" => Rule::All,
            "ip" => Rule::Ip(value.parse().ok()?),
            "ip_subnet" => Rule::Subnet(
                value
                    .parse::<IpNet>()
                    .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
                    .ok()?,
            ),
            "continent" => Rule::Continent(value),
            "country" => Rule::Country(value),
            _ => return None,
        };
        Some((rule, hit))
    }
}

impl Restrictions {
    pub fn compile(rows: &[RestrictionRow]) -> Restrictions {
        let mut compiled = Restrictions::default();
        for (place, row) in rows.iter().enumerate() {
            let Some((rule, hit)) = Rule::read(row) else {
                continue;
            };
            let rules = &mut compiled.categories[hit.category as usize];
            match rule {
                Rule::All => {
                    rules.all.get_or_insert(hit);
                }
                Rule::Ip(ip) => {
                    rules.ips.entry(ip).or_insert(hit);
                }
                Rule::Subnet(net) => rules.subnets.insert(net, hit),
                Rule::Continent(value) => rules.continents.insert(value, place, hit),
                Rule::Country(value) => rules.countries.insert(value, place, hit),
            }
        }
        compiled
    }

    /// True when a geo lookup could change the outcome (so it is skipped otherwise).
    pub fn needs_location(&self) -> bool {
        self.categories.iter().any(CategoryRules::has_geo_rows)
    }

    pub fn is_empty(&self) -> bool {
        self.categories.iter().all(CategoryRules::is_empty)
    }

    /// Evaluates the categories in order. `is_login` tells whether the request is the login
    /// path, the only one blocklogin denies. `location` is asked at most once, lazily.
    pub fn check(
        &self,
        ip: IpAddr,
        is_login: bool,
        location: &mut dyn FnMut() -> Option<Location>,
    ) -> Verdict {
        let mut located: Option<Option<Location>> = None;
        for (index, rules) in self.categories.iter().enumerate() {
            if rules.is_empty() {
                continue;
            }
            let hit = match rules.find_by_address(ip) {
                Some(hit) => Some(hit),
                None if rules.has_geo_rows() => located
                    .get_or_insert_with(&mut *location)
                    .as_ref()
                    .and_then(|loc| rules.find_by_location(loc)),
                None => None,
            };
            let Some(hit) = hit else {
                continue;
            };
            return match index {
                0 => Verdict::Clear,
                3 if !is_login => Verdict::Clear,
                _ => Verdict::Deny(hit),
            };
        }
        Verdict::Clear
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn row(id: i64, category: &str, scope: &str, value: &str, code: Option<i32>) -> RestrictionRow {
        RestrictionRow {
            id,
            category: category.into(),
            scope: scope.into(),
            value: value.into(),
            code,
            state: "enabled".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn uk() -> Option<Location> {
        Some(Location {
            country_code: "gb".into(),
            country_code3: "gbr".into(),
            country_name: "united kingdom".into(),
            continent_code: "eu".into(),
            continent_name: "europe".into(),
            country_display: "United Kingdom".into(),
        })
    }

    #[test]
    fn default_codes_follow_barong() {
        assert_eq!(effective_code("maintenance", "all", None), 471);
        assert_eq!(effective_code("blacklist", "ip", None), 401);
        assert_eq!(effective_code("blacklist", "all", None), 401);
        assert_eq!(effective_code("blacklist", "ip_subnet", None), 403);
        assert_eq!(effective_code("blacklist", "country", None), 423);
        assert_eq!(effective_code("blocklogin", "continent", None), 423);
        assert_eq!(effective_code("blacklist", "ip", Some(433)), 433);
        assert_eq!(effective_code("whitelist", "ip", Some(433)), 401);
        // Out of range codes fall back to the default.
        assert_eq!(effective_code("blacklist", "ip", Some(200)), 401);
        assert_eq!(effective_code("blacklist", "ip", Some(700)), 401);
    }

    #[test]
    fn categories_evaluate_in_order() {
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let r = Restrictions::compile(&[
            row(1, "maintenance", "ip", "1.2.3.4", None),
            row(2, "whitelist", "ip", "1.2.3.4", None),
        ]);
        assert_eq!(r.check(ip, false, &mut || None), Verdict::Clear);
        let r = Restrictions::compile(&[
            row(1, "blacklist", "ip", "1.2.3.4", Some(433)),
            row(2, "maintenance", "ip", "1.2.3.4", None),
        ]);
        match r.check(ip, false, &mut || None) {
            Verdict::Deny(hit) => {
                assert_eq!(hit.category, Category::Maintenance);
                assert_eq!(hit.status, 471);
            }
            v => panic!("{v:?}"),
        }
    }

    #[test]
    fn blocklogin_only_denies_the_login_path() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let r = Restrictions::compile(&[row(1, "blocklogin", "ip_subnet", "10.1.0.0/16", None)]);
        assert_eq!(r.check(ip, false, &mut || None), Verdict::Clear);
        assert!(matches!(r.check(ip, true, &mut || None), Verdict::Deny(h) if h.status == 403));
    }

    #[test]
    fn geo_matches_codes_and_names_case_insensitively() {
        let ip: IpAddr = "81.2.69.142".parse().unwrap();
        for value in ["GB", "gbr", "United Kingdom", "UNITED KINGDOM"] {
            let r = Restrictions::compile(&[row(1, "blacklist", "country", value, None)]);
            assert!(
                matches!(r.check(ip, false, &mut uk), Verdict::Deny(h) if h.status == 423),
                "{value}"
            );
        }
        for value in ["EU", "europe"] {
            let r = Restrictions::compile(&[row(1, "blacklist", "continent", value, Some(436))]);
            assert!(matches!(r.check(ip, false, &mut uk), Verdict::Deny(h) if h.status == 436));
        }
        let r = Restrictions::compile(&[row(1, "blacklist", "country", "US", None)]);
        assert_eq!(r.check(ip, false, &mut uk), Verdict::Clear);
        // Unknown location never matches a geo row.
        let r = Restrictions::compile(&[row(1, "blacklist", "country", "GB", None)]);
        assert_eq!(r.check(ip, false, &mut || None), Verdict::Clear);
    }

    #[test]
    fn location_is_looked_up_once_and_only_when_needed() {
        let ip: IpAddr = "81.2.69.142".parse().unwrap();
        let mut calls = 0;
        let r = Restrictions::compile(&[
            row(1, "maintenance", "country", "US", None),
            row(2, "blacklist", "country", "FR", None),
        ]);
        r.check(ip, false, &mut || {
            calls += 1;
            uk()
        });
        assert_eq!(calls, 1);
        let r = Restrictions::compile(&[row(1, "blacklist", "ip", "9.9.9.9", None)]);
        let mut calls = 0;
        r.check(ip, false, &mut || {
            calls += 1;
            uk()
        });
        assert_eq!(calls, 0);
    }

    #[test]
    fn disabled_rows_and_bad_values_are_inert() {
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let mut disabled = row(1, "blacklist", "all", "all", None);
        disabled.state = "disabled".into();
        let r = Restrictions::compile(&[disabled, row(2, "blacklist", "ip", "not-an-ip", None)]);
        assert_eq!(r.check(ip, false, &mut || None), Verdict::Clear);
        assert!(r.is_empty() || !r.needs_location());
    }

    #[test]
    fn values_are_validated_by_scope() {
        assert_eq!(validate_value("ip", "1.2.3.4"), Ok(()));
        assert_eq!(validate_value("ip", "2001:db8::1"), Ok(()));
        assert_eq!(validate_value("ip", "1.2.3"), Err("value.invalid"));
        assert_eq!(validate_value("ip_subnet", "1.2.3.0/24"), Ok(()));
        assert_eq!(
            validate_value("ip_subnet", "1.2.3.0/33"),
            Err("value.invalid")
        );
        assert_eq!(validate_value("country", ""), Err("value.blank"));
        assert_eq!(validate_value("country", "UA"), Ok(()));
    }
}
