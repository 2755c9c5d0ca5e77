//! The states an operator may give an account when creating it, as a type: parsed once from
//! the command line, written to `users.state` as Barong's words (see [`super::state`]).

use super::state;

/// A state a new account may start in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    Pending,
    Active,
    Banned,
    Deleted,
    Locked,
}

impl UserState {
    pub const ALL: [UserState; 5] = [
        UserState::Pending,
        UserState::Active,
        UserState::Banned,
        UserState::Deleted,
        UserState::Locked,
    ];

    /// The word stored in `users.state`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Pending => state::PENDING,
            UserState::Active => state::ACTIVE,
            UserState::Banned => state::BANNED,
            UserState::Deleted => state::DELETED,
            UserState::Locked => state::LOCKED,
        }
    }
}

/// Why a word is not a [`UserState`]: says which words are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidState;

impl std::fmt::Display for InvalidState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<&str> = UserState::ALL.iter().map(|s| s.as_str()).collect();
        write!(f, "state.invalid: one of {}", words.join(", "))
    }
}

impl std::error::Error for InvalidState {}

impl std::str::FromStr for UserState {
    type Err = InvalidState;

    fn from_str(word: &str) -> Result<UserState, InvalidState> {
        UserState::ALL
            .into_iter()
            .find(|s| s.as_str() == word)
            .ok_or(InvalidState)
    }
}

impl std::fmt::Display for UserState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_others_are_refused_with_the_list() {
        for s in UserState::ALL {
            assert_eq!(s.as_str().parse::<UserState>(), Ok(s));
        }
        // `disabled` is a state of API keys, not one an account is created in.
        let err = "disabled".parse::<UserState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "state.invalid: one of pending, active, banned, deleted, locked"
        );
        assert!("Active".parse::<UserState>().is_err());
    }
}
