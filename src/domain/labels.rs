//! What a user's labels make of the account (Barong §10), as pure functions over the labels
//! and the rules, so that the rules are tested without a database; `store::labels` reads the
//! rows and writes the result.
//!
//! - The level is the highest level whose key:value the user holds as a private label,
//!   counting up the levels table without gaps.
//! - The state is `active` once every activation requirement is held as a private label, else
//!   `pending`; a state trigger whose label key the user holds (in any scope) overrides both,
//!   the last matching trigger winning.

use super::state;

/// A label a user holds.
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub scope: &'a str,
}

/// A row of the levels table: holding `key:value` privately reaches level `id`.
#[derive(Debug, Clone, Copy)]
pub struct Level<'a> {
    pub id: i32,
    pub key: &'a str,
    pub value: &'a str,
}

/// Labels whose key puts a user in `state`.
#[derive(Debug, Clone, Copy)]
pub struct Trigger<'a> {
    pub state: &'a str,
    pub labels: &'a [String],
}

/// The state rules of the `users` settings.
#[derive(Debug, Clone, Default)]
pub struct StateRules<'a> {
    /// Private key:value pairs that together make an account active.
    pub activation: Vec<(&'a str, &'a str)>,
    /// In order: a later match wins.
    pub triggers: Vec<Trigger<'a>>,
}

/// The scope of labels that only the platform sets (the user cannot write them).
pub const PRIVATE: &str = "private";

fn holds_private(labels: &[Label<'_>], key: &str, value: &str) -> bool {
    labels
        .iter()
        .any(|l| l.scope == PRIVATE && l.key == key && l.value == value)
}

/// The level `labels` reach; `levels` must be ordered by id.
pub fn level(labels: &[Label<'_>], levels: &[Level<'_>]) -> i32 {
    let mut reached = 0;
    for level in levels {
        if !holds_private(labels, level.key, level.value) {
            break;
        }
        reached = level.id;
    }
    reached
}

/// The state `labels` put the account in.
pub fn state<'r>(labels: &[Label<'_>], rules: &StateRules<'r>) -> &'r str {
    let mut derived = if rules
        .activation
        .iter()
        .all(|(key, value)| holds_private(labels, key, value))
    {
        state::ACTIVE
    } else {
        state::PENDING
    };
    for trigger in &rules.triggers {
        if trigger
            .labels
            .iter()
            .any(|key| labels.iter().any(|l| l.key == key))
        {
            derived = trigger.state;
        }
    }
    derived
}

#[cfg(test)]
mod tests {
    use super::*;

    fn private<'a>(key: &'a str, value: &'a str) -> Label<'a> {
        Label {
            key,
            value,
            scope: PRIVATE,
        }
    }

    const LEVELS: [Level<'static>; 3] = [
        Level {
            id: 1,
            key: "email",
            value: "verified",
        },
        Level {
            id: 2,
            key: "phone",
            value: "verified",
        },
        Level {
            id: 3,
            key: "document",
            value: "verified",
        },
    ];

    #[test]
    fn the_level_counts_private_labels_up_the_table_without_gaps() {
        assert_eq!(level(&[], &LEVELS), 0);
        assert_eq!(level(&[private("email", "verified")], &LEVELS), 1);
        let two = [private("email", "verified"), private("phone", "verified")];
        assert_eq!(level(&two, &LEVELS), 2);
        // Level 3's label without level 2's reaches only level 1.
        let gap = [
            private("email", "verified"),
            private("document", "verified"),
        ];
        assert_eq!(level(&gap, &LEVELS), 1);
        // The value must match, and a public label counts for nothing.
        assert_eq!(level(&[private("email", "pending")], &LEVELS), 0);
        let public = Label {
            key: "email",
            value: "verified",
            scope: "public",
        };
        assert_eq!(level(&[public], &LEVELS), 0);
    }

    #[test]
    fn activation_needs_every_requirement_and_triggers_override_it() {
        let banned = ["banned".to_string()];
        let frozen = ["frozen".to_string(), "hold".to_string()];
        let rules = StateRules {
            activation: vec![("email", "verified")],
            triggers: vec![
                Trigger {
                    state: "banned",
                    labels: &banned,
                },
                Trigger {
                    state: "locked",
                    labels: &frozen,
                },
            ],
        };
        assert_eq!(state(&[], &rules), state::PENDING);
        assert_eq!(
            state(&[private("email", "verified")], &rules),
            state::ACTIVE
        );
        // A trigger matches on the key alone, in any scope.
        let public_ban = Label {
            key: "banned",
            value: "x",
            scope: "public",
        };
        assert_eq!(
            state(&[private("email", "verified"), public_ban], &rules),
            "banned"
        );
        // The last matching trigger wins.
        assert_eq!(
            state(&[public_ban, private("hold", "yes")], &rules),
            "locked"
        );
        // No requirements: every account is active.
        assert_eq!(state(&[], &StateRules::default()), state::ACTIVE);
    }
}
