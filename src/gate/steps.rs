//! The steps every decision takes before and after the credential, as functions of the policy
//! snapshot and the request's facts: admission of the request itself, restrictions, block and pass rules, the choice of
//! credential, the subject's state and the permission check. No I/O, no clock.

use std::net::IpAddr;

use super::audit_event::{AuditEvent, AuditResult};
use super::permissions::{Permissions, Verdict as PermissionVerdict};
use super::policy::{Policy, Rules};
use super::restrictions::{Hit, Verdict as RestrictionVerdict};
use super::{Denial, Facts, GateSettings};
use crate::domain::state;
use crate::domain::subject::{SubjectKind, SubjectRecord};
use crate::net::client_ip::UnreadableForwardedFor;
use crate::net::geoip::Location;
use crate::net::method;
use crate::net::path::{self, Forwarding};

/// The request as the gate judges it: the canonical method, the judged path, the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub verb: &'static str,
    pub path: String,
    pub ip: IpAddr,
}

/// Step 0, the request itself, as a front describes the original: a method the gate knows
/// (guessing would skip CSRF or widen a GET-only row), a path no proxy or upstream reads
/// differently (`net::path::judge`), and a client address that could be read.
pub fn admit(
    method: &str,
    raw_path: &str,
    forwarding: Forwarding,
    client: Result<IpAddr, UnreadableForwardedFor>,
) -> Result<Admitted, Denial> {
    let verb = method::canonical(method).ok_or(Denial::INVALID_REQUEST)?;
    let path = path::judge(raw_path, forwarding).map_err(|_| Denial::INVALID_PATH)?;
    let ip = client.map_err(|_| Denial::INVALID_FORWARDED_FOR)?;
    Ok(Admitted { verb, path, ip })
}

/// Step 1, restrictions (Barong §1.2.1): skipped on the whitelink path; blocklogin applies to
/// the paths that open a session only. `locate` is asked at most once, and only when a
/// continent or country row could decide.
pub fn restrictions(
    policy: &Policy,
    facts: &Facts<'_>,
    settings: &GateSettings,
    locate: &mut dyn FnMut(IpAddr) -> Option<Location>,
) -> Result<(), Denial> {
    match restriction_hit(policy, facts, settings, locate) {
        None => Ok(()),
        Some(hit) => {
            let code = hit.category.error_code();
            metrics::counter!("portcullis_restricted_total", "category" => code).increment(1);
            Err(Denial::restricted(hit.status, code))
        }
    }
}

/// The restriction that denies the request, if one does (step 1 without its counter, for
/// `explain`).
pub fn restriction_hit(
    policy: &Policy,
    facts: &Facts<'_>,
    settings: &GateSettings,
    locate: &mut dyn FnMut(IpAddr) -> Option<Location>,
) -> Option<Hit> {
    if policy.restrictions.is_empty() || facts.path == settings.whitelink_path {
        return None;
    }
    let is_login = settings.session_paths.iter().any(|p| p == facts.path);
    match policy
        .restrictions
        .check(facts.ip, is_login, &mut || locate(facts.ip))
    {
        RestrictionVerdict::Clear => None,
        RestrictionVerdict::Deny(hit) => Some(hit),
    }
}

/// Where the rules send a request that the restrictions let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Under a block rule: `authz.permission_denied`.
    Blocked,
    /// Under a pass rule: allowed without resolving any identity, even a valid cookie.
    Pass,
    /// Any API-key header present, even blank: the API-key path.
    ApiKey,
    /// Otherwise: the session cookie path.
    Session,
}

/// Steps 2–4: block before pass, pass before any credential, then the credential (Barong
/// §1.2.4: the API-key path wins whenever one of its headers is present).
pub fn route(rules: &Rules, facts: &Facts<'_>) -> Route {
    if rules.blocks(facts.path) {
        Route::Blocked
    } else if rules.passes(facts.path) {
        Route::Pass
    } else if facts.api_key.any_present() {
        Route::ApiKey
    } else {
        Route::Session
    }
}

/// Whether a subject in this state may hold a token: active, and pending when
/// `jwt.issue_for_pending` (Barong issues for pending users, quirk #20).
pub fn may_hold_token(subject: &SubjectRecord, settings: &GateSettings) -> bool {
    subject.state == state::ACTIVE
        || (settings.issue_for_pending && subject.state == state::PENDING)
}

/// The permission check's outcome, and the event to record, if any.
#[derive(Debug)]
pub struct Checked {
    pub result: Result<(), Denial>,
    pub audit: Option<AuditEvent>,
}

/// Last step, the permissions of the subject's role (§4). A denial, or an allow through an
/// AUDIT row, is recorded for users only, never for service accounts (Barong).
pub fn permission(
    permissions: &Permissions,
    facts: &Facts<'_>,
    subject: &SubjectRecord,
) -> Checked {
    let verdict = permissions.check(&subject.role, facts.verb, facts.path);
    let (result, audited) = match verdict {
        PermissionVerdict::Allow { audit: None } => (Ok(()), None),
        PermissionVerdict::Allow { audit: Some(topic) } => {
            (Ok(()), Some((topic, AuditResult::Succeed)))
        }
        PermissionVerdict::Deny => (
            Err(Denial::INVALID_PERMISSION),
            Some((None, AuditResult::Denied)),
        ),
    };
    let audit = audited
        .filter(|_| subject.kind == SubjectKind::User)
        .map(|(topic, outcome)| AuditEvent::new(subject.id, facts, topic, outcome));
    Checked { result, audit }
}
