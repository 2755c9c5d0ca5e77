//! What the Back Office handlers use: the token service, 2FA challenges, the attempt limiter,
//! the password hasher and the mail queue. Cheap to clone; handlers take it as axum state.

use std::sync::Arc;

use crate::authn::backoffice_2fa::Challenges;
use crate::authn::passwords::Hasher;
use crate::authn::rate_limit::RateLimiter;
use crate::config::Settings;
use crate::events::Events;
use crate::services::backoffice::BackOfficeTokens;
use crate::store::Store;

#[derive(Clone)]
pub struct BackOfficeState(Arc<BackOffice>);

pub struct BackOffice {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub tokens: BackOfficeTokens,
    pub challenges: Challenges,
    pub rate_limiter: RateLimiter,
    pub hasher: Hasher,
    pub events: Arc<Events>,
}

impl BackOfficeState {
    pub fn new(backoffice: BackOffice) -> BackOfficeState {
        BackOfficeState(Arc::new(backoffice))
    }
}

impl std::ops::Deref for BackOfficeState {
    type Target = BackOffice;
    fn deref(&self) -> &BackOffice {
        &self.0
    }
}
