//! Back Office 2FA challenges (seed 003): a sign-in to an account with 2FA on opens a
//! challenge, named by a random token the client holds and answered by a 6-digit code sent by
//! email. A challenge lives in Redis for `backoffice.two_factor_ttl`, so every node can close
//! it. Only a keyed digest of its code is kept ([`SecretBox::blind_index`], bound to the
//! token), and a code is accepted once: the node whose `DEL` removes the challenge wins.

use serde::{Deserialize, Serialize};

use crate::crypto::{SecretBox, constant_time_eq};
use crate::kv::{Kv, KvError};

/// The blind-index context of a challenge's code.
const CODE_CONTEXT: &str = "backoffice-2fa";

/// What a challenge remembers.
#[derive(Serialize, Deserialize)]
struct Challenge {
    uid: String,
    code: String,
}

/// The outcome of answering a challenge.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The right code, first time: the challenge is closed; the user's uid.
    Accepted(String),
    /// No such challenge (unknown, expired, or already answered).
    Unknown,
    /// The challenge exists, the code is wrong; it stays open.
    WrongCode,
}

/// The open challenges, in Redis.
#[derive(Clone)]
pub struct Challenges {
    kv: Kv,
}

impl Challenges {
    pub fn new(kv: Kv) -> Challenges {
        Challenges { kv }
    }

    fn key(&self, token: &str) -> String {
        self.kv.key(&format!("bo:2fa:{token}"))
    }

    /// Opens a challenge for `uid`: returns its token (a UUID, as in the seed) and its code.
    pub async fn open(
        &self,
        secrets: &SecretBox,
        uid: &str,
        ttl_secs: u64,
    ) -> Result<(String, String), KvError> {
        let token = uuid::Builder::from_random_bytes(crate::crypto::random_bytes::<16>())
            .into_uuid()
            .to_string();
        let code = crate::crypto::random_digits(6);
        let challenge = Challenge {
            uid: uid.to_string(),
            code: digest(secrets, &token, &code),
        };
        let value = serde_json::to_string(&challenge).expect("a challenge serialises");
        self.kv.set_ex(&self.key(&token), &value, ttl_secs).await?;
        Ok((token, code))
    }

    /// Answers the challenge `token` with `code`.
    pub async fn answer(
        &self,
        secrets: &SecretBox,
        token: &str,
        code: &str,
    ) -> Result<Answer, KvError> {
        let key = self.key(token);
        let Some(stored) = self.kv.get(&key).await? else {
            return Ok(Answer::Unknown);
        };
        let Ok(challenge) = serde_json::from_str::<Challenge>(&stored) else {
            return Ok(Answer::Unknown);
        };
        let given = digest(secrets, token, code.trim());
        if !constant_time_eq(given.as_bytes(), challenge.code.as_bytes()) {
            return Ok(Answer::WrongCode);
        }
        // Single use: of two nodes answering at once, only one deletes the key.
        if self.kv.del(&[key]).await? == 1 {
            Ok(Answer::Accepted(challenge.uid))
        } else {
            Ok(Answer::Unknown)
        }
    }
}

fn digest(secrets: &SecretBox, token: &str, code: &str) -> String {
    secrets.blind_index(CODE_CONTEXT, format!("{token}:{code}").as_bytes())
}
