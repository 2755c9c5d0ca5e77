//! Request methods as the gate judges them.
//!
//! Methods are case-sensitive tokens in HTTP, so `post` and `POST` are different methods to a
//! server that routes on them, and an unknown one may be routed like GET (Rails runs the GET
//! action for HEAD, Rack's method override rewrites others). The gate therefore judges only the
//! methods it knows, by their canonical upper-case name; fronts refuse anything else, and the
//! built-in proxy forwards the canonical name, so the upstream acts on the verb that was judged.

/// The methods a request may carry through any front. CONNECT is not among them: a gateway
/// has nothing to tunnel.
pub const KNOWN: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
];

/// The canonical name of a known method, whatever its letter case; `None` for anything else.
pub fn canonical(method: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .find(|known| known.eq_ignore_ascii_case(method.trim()))
        .copied()
}

/// Methods that change nothing, so a cross-site request cannot do harm with them: the only
/// ones that need no CSRF token.
pub fn is_safe(verb: &str) -> bool {
    ["GET", "HEAD", "OPTIONS"]
        .iter()
        .any(|safe| safe.eq_ignore_ascii_case(verb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_in_any_case_become_canonical() {
        assert_eq!(canonical("GET"), Some("GET"));
        assert_eq!(canonical("post"), Some("POST"));
        assert_eq!(canonical("Patch"), Some("PATCH"));
        assert_eq!(canonical(" delete "), Some("DELETE"));
        for unknown in ["", "PROPFIND", "CONNECT", "GETS", "G ET", "BREW", "get\0"] {
            assert_eq!(canonical(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn only_get_head_and_options_are_safe() {
        for safe in ["GET", "head", "Options"] {
            assert!(is_safe(safe));
        }
        for unsafe_verb in ["POST", "patch", "Put", "DELETE", "TRACE", "PROPFIND", ""] {
            assert!(!is_safe(unsafe_verb), "{unsafe_verb}");
        }
    }
}
