//! `cors.origins`: Barong's format (`*` or a comma list of http(s) origins), parsed once into
//! the origins' normal form. `net::cors` compares request origins against it.

use serde::Deserialize;

/// The origins the auth API answers cross-origin calls from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct CorsOrigins {
    any: bool,
    listed: Vec<String>,
}

impl CorsOrigins {
    /// True when `*` is among the origins: every origin is allowed.
    pub fn any(&self) -> bool {
        self.any
    }

    /// True when `origin` is one of the listed origins (`*` lists none).
    pub fn lists(&self, origin: &str) -> bool {
        normalise_origin(origin).is_some_and(|o| self.listed.contains(&o))
    }
}

impl std::str::FromStr for CorsOrigins {
    type Err = String;
    fn from_str(text: &str) -> Result<CorsOrigins, String> {
        let mut origins = CorsOrigins::default();
        for origin in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if origin == "*" {
                origins.any = true;
            } else {
                origins.listed.push(normalise_origin(origin).ok_or_else(|| {
                    format!("{origin:?} is not an http(s) origin like https://example.com")
                })?);
            }
        }
        Ok(origins)
    }
}

impl TryFrom<String> for CorsOrigins {
    type Error = String;
    fn try_from(text: String) -> Result<CorsOrigins, String> {
        text.parse()
    }
}

/// `scheme://host[:port]` in lower case, with the scheme's default port dropped; `None` for
/// anything that is not an http(s) origin (a path, a query, user info, another scheme).
pub fn normalise_origin(origin: &str) -> Option<String> {
    let uri: http::Uri = origin.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = uri.authority()?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return None;
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    let default_port = if scheme == "https" { 443 } else { 80 };
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_kept_in_their_normal_form() {
        let o: CorsOrigins = "https://Exchange.example:443, http://localhost:3000"
            .parse()
            .unwrap();
        assert!(!o.any());
        assert!(o.lists("https://exchange.example"));
        assert!(o.lists("http://LOCALHOST:3000"));
        assert!(!o.lists("http://exchange.example"));
    }

    #[test]
    fn mistakes_are_named() {
        for bad in [
            "exchange.example",
            "https://exchange.example/app",
            "ftp://exchange.example",
            "https://user@exchange.example",
        ] {
            let err = bad.parse::<CorsOrigins>().unwrap_err();
            assert!(err.contains(bad), "{err}");
        }
        let star: CorsOrigins = "*".parse().unwrap();
        assert!(star.any() && !star.lists("https://exchange.example"));
        assert_eq!("".parse::<CorsOrigins>(), Ok(CorsOrigins::default()));
    }
}
