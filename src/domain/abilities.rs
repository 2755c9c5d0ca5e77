//! Admin abilities (Barong's `config/abilities.yml`, §4.4): what a role may do to each model
//! inside the admin API, on top of the permissions table that guards the paths. `manage`
//! covers every action; `read` covers reading only. Roles with no row have no ability.

use serde::Serialize;

/// The models abilities name, as Barong spells them.
pub mod models {
    pub const ABILITY: &str = "Ability";
    pub const USER: &str = "User";
    pub const LEVEL: &str = "Level";
    pub const LABEL: &str = "Label";
    pub const PROFILE: &str = "Profile";
    pub const ACTIVITY: &str = "Activity";
    pub const API_KEY: &str = "APIKey";
    pub const PERMISSION: &str = "Permission";
    pub const RESTRICTION: &str = "Restriction";
    pub const DOCUMENT: &str = "Document";

    /// Every model an ability may name.
    pub const ALL: &[&str] = &[
        ABILITY,
        USER,
        LEVEL,
        LABEL,
        PROFILE,
        ACTIVITY,
        API_KEY,
        PERMISSION,
        RESTRICTION,
        DOCUMENT,
    ];
}

/// The actions an ability row may name: `read`, or `manage` (every action). Any other
/// grants nothing ([`Abilities::from_rows`] skips it).
pub const ACTIONS: [&str; 2] = ["read", "manage"];

/// What an admin endpoint does to its model (CanCan's actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Destroy,
}

/// One role's abilities. Serialises as Barong's `GET /admin/abilities` answer: only the
/// actions the role has, `{}` for none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Abilities {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub read: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub manage: Vec<String>,
}

impl Abilities {
    /// From (action, model) rows; unknown actions grant nothing.
    pub fn from_rows<'a>(rows: impl IntoIterator<Item = (&'a str, &'a str)>) -> Abilities {
        let mut abilities = Abilities::default();
        for (action, model) in rows {
            let list = match action {
                "read" => &mut abilities.read,
                "manage" => &mut abilities.manage,
                _ => continue,
            };
            if !list.iter().any(|m| m == model) {
                list.push(model.to_string());
            }
        }
        abilities
    }

    /// Whether the role may do `action` to `model`.
    pub fn can(&self, action: Action, model: &str) -> bool {
        let has = |list: &[String]| list.iter().any(|m| m == model);
        has(&self.manage) || (action == Action::Read && has(&self.read))
    }

    /// Whether the role has any admin ability at all.
    pub fn is_staff(&self) -> bool {
        !self.read.is_empty() || !self.manage.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manage_covers_every_action_and_read_only_reading() {
        let support = Abilities::from_rows([("read", "Label"), ("manage", "User"), ("fly", "X")]);
        assert!(support.can(Action::Read, "Label"));
        assert!(!support.can(Action::Update, "Label"));
        assert!(support.can(Action::Destroy, "User"));
        assert!(support.can(Action::Read, "User"));
        assert!(!support.can(Action::Read, "Restriction"));
        assert!(support.is_staff());
        assert!(!Abilities::default().is_staff());
        assert_eq!(
            serde_json::to_value(&support).unwrap(),
            serde_json::json!({ "read": ["Label"], "manage": ["User"] })
        );
        assert_eq!(
            serde_json::to_value(Abilities::default()).unwrap(),
            serde_json::json!({})
        );
    }
}
