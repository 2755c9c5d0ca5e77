//! Sends the emails of the mail queue. (Being written.)

use std::sync::Arc;

use tokio::sync::Notify;

use crate::app::App;

/// Runs until the process ends.
pub async fn run(_app: App, _wake: Arc<Notify>) {}
