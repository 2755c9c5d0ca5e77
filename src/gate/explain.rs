//! `explain`: why the gate would allow or deny a request of a given subject, step by step,
//! with the rows behind each step. Staff ask it (`POST /admin/explain`, `portcullis explain`)
//! when a user reports a refusal, or before they change a rule.
//!
//! The trace is made of the same step functions as [`Gate::decide`] (`steps`, `session`,
//! `api_key`, `permissions`), over the same policy snapshot, in the same order, so it cannot
//! drift from what the fronts decide. What it does not do is verify a credential: it takes
//! the subject as given (a user or service account by uid, or an API key by kid) and
//! answers what would happen once that credential verified. Nothing is recorded: an AUDIT
//! match is reported, not written.

use std::net::IpAddr;

use serde::Serialize;

use super::permissions::{Matched, Verdict};
use super::steps::{self, Route};
use super::{Denial, Facts, Gate, api_key, session};
use crate::authn::api_keys::{ApiKeyHeaders, NonceGuard};
use crate::authn::sessions::SessionStore;
use crate::domain::subject::{SubjectKind, SubjectRecord};
use crate::net::path::Forwarding;

/// Who the question is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// A user (`ID…`) or a service account (`SI…`), as with a session.
    Uid(String),
    /// An API key, as with its signed headers.
    Kid(String),
}

/// The request to explain.
#[derive(Debug, Clone)]
pub struct Question {
    pub method: String,
    /// The original path, as a front would receive it.
    pub path: String,
    pub who: Who,
    /// The client's address; without one, restrictions are not evaluated.
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

/// One step of the decision and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The method and path, judged as the fronts judge them.
    Request { path: String },
    /// `restriction`: the id of the row that denied; none when nothing did. `checked` is
    /// false when the question gave no address.
    Restrictions {
        checked: bool,
        restriction: Option<i64>,
    },
    /// The route the rules chose, and the rule (path prefix) that chose it, if any.
    Rules {
        route: &'static str,
        rule: Option<String>,
    },
    /// The subject, found, and whether it may hold a token.
    Subject {
        uid: String,
        kind: &'static str,
        role: String,
        state: String,
    },
    /// The API key's state, for a question about a key.
    Key { kid: String, active: bool },
    /// The rows of the role's permissions that matched, by action, and the verdict.
    Permissions {
        accept: Vec<i64>,
        drop: Vec<i64>,
        audit: Vec<i64>,
        allowed: bool,
    },
}

/// The decision, with the steps that led to it in the gate's order; the last step taken is
/// the one that decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The answer's status: 200, or the denial's.
    pub status: u16,
    /// The denial's code (`authz.*`), none for an allow.
    pub error: Option<&'static str>,
    pub steps: Vec<Step>,
}

impl Explanation {
    fn allow(steps: Vec<Step>) -> Explanation {
        Explanation {
            decision: "allow",
            status: 200,
            error: None,
            steps,
        }
    }

    fn deny(denial: Denial, steps: Vec<Step>) -> Explanation {
        Explanation {
            decision: "deny",
            status: denial.status.as_u16(),
            error: Some(denial.code),
            steps,
        }
    }
}

fn kind_name(kind: SubjectKind) -> &'static str {
    match kind {
        SubjectKind::User => "user",
        SubjectKind::ServiceAccount => "service_account",
    }
}

fn subject_step(record: &SubjectRecord) -> Step {
    Step::Subject {
        uid: record.uid.clone(),
        kind: kind_name(record.kind),
        role: record.role.clone(),
        state: record.state.clone(),
    }
}

impl<S: SessionStore, N: NonceGuard> Gate<S, N> {
    /// The decision on `question`, traced. `Err` only when the subject or key cannot be read
    /// (the store is down): a question the gate itself would answer with 503.
    pub async fn explain(&self, question: &Question) -> Result<Explanation, Denial> {
        let mut steps = Vec::new();
        let admitted = match steps::admit(
            &question.method,
            &question.path,
            Forwarding::AsIs,
            Ok(facts_ip(question)),
        ) {
            Ok(admitted) => admitted,
            Err(denial) => return Ok(Explanation::deny(denial, steps)),
        };
        steps.push(Step::Request {
            path: admitted.path.clone(),
        });
        let api_key = match &question.who {
            // Present headers send the request down the API-key path; their values are not
            // read here.
            Who::Kid(kid) => ApiKeyHeaders {
                kid: Some(kid),
                nonce: Some(""),
                signature: Some(""),
            },
            Who::Uid(_) => ApiKeyHeaders::default(),
        };
        let facts = Facts {
            verb: admitted.verb,
            path: &admitted.path,
            query: None,
            ip: admitted.ip,
            user_agent: &question.user_agent,
            session_id: None,
            bearer: None,
            csrf_token: None,
            api_key,
        };
        let policy = self.policy.current();
        let geoip = self.geoip.as_deref();
        let hit = question.ip.and_then(|_| {
            steps::restriction_hit(&policy, &facts, &self.settings, &mut |ip| {
                geoip.and_then(|g| g.locate(ip))
            })
        });
        steps.push(Step::Restrictions {
            checked: question.ip.is_some(),
            restriction: hit.map(|h| h.id),
        });
        if let Some(hit) = hit {
            let denial = Denial::restricted(hit.status, hit.category.error_code());
            return Ok(Explanation::deny(denial, steps));
        }
        let route = steps::route(&policy.rules, &facts);
        let (route_name, rule) = match route {
            Route::Blocked => ("block", policy.rules.block_of(facts.path)),
            Route::Pass => ("pass", policy.rules.pass_of(facts.path)),
            Route::ApiKey => ("api_key", None),
            Route::Session => ("session", None),
        };
        steps.push(Step::Rules {
            route: route_name,
            rule: rule.map(str::to_string),
        });
        match route {
            Route::Blocked => return Ok(Explanation::deny(Denial::PERMISSION_DENIED, steps)),
            Route::Pass => return Ok(Explanation::allow(steps)),
            Route::ApiKey | Route::Session => {}
        }
        let record = match self.subject_of(question, &mut steps).await? {
            Ok(record) => record,
            Err(denial) => return Ok(Explanation::deny(denial, steps)),
        };
        let (verdict, matched) = policy
            .permissions
            .evaluate(&record.role, facts.verb, facts.path);
        let Matched {
            accept,
            drop,
            audit,
        } = matched;
        let allowed = verdict != Verdict::Deny;
        steps.push(Step::Permissions {
            accept,
            drop,
            audit,
            allowed,
        });
        Ok(if allowed {
            Explanation::allow(steps)
        } else {
            Explanation::deny(Denial::INVALID_PERMISSION, steps)
        })
    }

    /// The subject the question names, after the checks its credential's path makes of it
    /// (`session::user_state`, or `api_key::key_state` and `api_key::holder`).
    async fn subject_of(
        &self,
        question: &Question,
        steps: &mut Vec<Step>,
    ) -> Result<Result<SubjectRecord, Denial>, Denial> {
        let loader = self.loader.as_ref();
        let failed = |_| Denial::UNAVAILABLE;
        match &question.who {
            Who::Uid(uid) => {
                let kind = if uid.starts_with("SI") {
                    SubjectKind::ServiceAccount
                } else {
                    SubjectKind::User
                };
                let Some(subject) = self.subjects.get(loader, kind, uid).await.map_err(failed)?
                else {
                    return Ok(Err(Denial::INVALID_SESSION));
                };
                steps.push(subject_step(&subject.record));
                Ok(session::user_state(&subject.record, &self.settings)
                    .map(|()| subject.record.clone()))
            }
            Who::Kid(kid) => {
                let lookup = self
                    .api_keys
                    .get(loader, &self.secrets, kid, facts_ip(question))
                    .await
                    .map_err(failed)?;
                let key = match api_key::found(lookup) {
                    Ok(key) => key,
                    Err(denial) => return Ok(Err(denial)),
                };
                steps.push(Step::Key {
                    kid: key.kid.clone(),
                    active: api_key::key_state(&key).is_ok(),
                });
                if let Err(denial) = api_key::key_state(&key) {
                    return Ok(Err(denial));
                }
                let Some(subject) = self
                    .subjects
                    .get(loader, key.holder_kind, &key.holder_uid)
                    .await
                    .map_err(failed)?
                else {
                    return Ok(Err(Denial::UNEXISTENT_KEY));
                };
                steps.push(subject_step(&subject.record));
                Ok(api_key::holder(&subject.record, &self.settings)
                    .map(|()| subject.record.clone()))
            }
        }
    }
}

/// The address a key lookup is counted against (unknown ids are throttled per address).
fn facts_ip(question: &Question) -> IpAddr {
    question
        .ip
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
}
