//! Restrictions: whitelist, maintenance, blacklist and blocklogin, by scope (all, ip,
//! ip_subnet, continent, country), compiled from the table into lookups.
//!
//! Semantics follow Barong (§5): categories in the fixed order whitelist → maintenance →
//! blacklist → blocklogin; inside a category, scopes all → ip → ip_subnet → continent →
//! country, first match wins. Geo values match ISO codes and names, case-insensitively
//! (decisions.md #8).

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

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

#[derive(Debug, Default)]
struct CategoryRules {
    all: Option<Hit>,
    ips: HashMap<IpAddr, Hit>,
    subnets: Vec<(IpNet, Hit)>,
    /// (lower-cased value, hit)
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

impl Restrictions {
    pub fn compile(rows: &[RestrictionRow]) -> Restrictions {
        let mut compiled = Restrictions::default();
        for row in rows.iter().filter(|r| r.state == "enabled") {
            let Some(category) = Category::parse(&row.category) else {
                continue;
            };
            let hit = Hit {
                id: row.id,
                category,
                status: effective_code(&row.category, &row.scope, row.code),
            };
            let rules = &mut compiled.categories[category as usize];
            let value = row.value.trim();
            match row.scope.as_str() {
                "all" => {
                    rules.all.get_or_insert(hit);
                }
                "ip" => {
                    if let Ok(ip) = value.parse::<IpAddr>() {
                        rules.ips.entry(ip).or_insert(hit);
                    }
                }
                "ip_subnet" => {
                    let net = value
                        .parse::<IpNet>()
                        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from));
                    if let Ok(net) = net {
                        rules.subnets.push((net.trunc(), hit));
                    }
                }
                "continent" => rules.continents.push((value.to_lowercase(), hit)),
                "country" => rules.countries.push((value.to_lowercase(), hit)),
                _ => {}
            }
        }
        compiled
    }

    /// True when a geo lookup could change the outcome (so it is skipped otherwise).
    pub fn needs_location(&self) -> bool {
        self.categories
            .iter()
            .any(|c| !c.continents.is_empty() || !c.countries.is_empty())
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
