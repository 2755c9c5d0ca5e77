//! Application state: everything a request handler may need, built once at start, and the
//! background tasks that keep the per-node caches true (change notices, audit writer).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;

use crate::api::admin::{Admin, AdminState};
use crate::api::backoffice::{BackOffice, BackOfficeState};
use crate::api::guard::{GuardState, Guarding};
use crate::api::identity::{Identity, IdentityState};
use crate::api::resource::{Resource, ResourceState};
use crate::audit;
use crate::authn::api_keys::{ApiKeyCache, ReplayGuard};
use crate::authn::auth0::Auth0;
use crate::authn::passwords::Hasher;
use crate::authn::phones::PhoneProvider;
use crate::authn::rate_limit::RateLimiter;
use crate::authn::sessions::{Sessions, Sliding};
use crate::config::{EncryptionKey, Settings};
use crate::crypto::SecretBox;
use crate::domain::subject::SubjectKind;
use crate::fronts::proxy::{Proxy, ProxyState, Upstreams};
use crate::fronts::{Decider, DecisionState};
use crate::gate::policy::{Policy, PolicyHandle};
use crate::gate::subjects::{Subjects, TokenReuse};
use crate::gate::{AuditSink, Gate, GateSettings};
use crate::jwt::keys::{KeySource, SigningKey};
use crate::jwt::{self, Issuer};
use crate::kv::Kv;
use crate::net::client_ip::ClientIpResolver;
use crate::net::cors::Cors;
use crate::net::geoip::GeoIp;
use crate::net::outbound::Outbound;
use crate::net::path::rule_path;
use crate::store::notify::{self, Notice};
use crate::store::{self, Store, StoreError};
use crate::telemetry::HotMetrics;

/// Shared by every handler. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct App(pub Arc<AppInner>);

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The pieces, built once; each handler takes the narrow state of its adapter (see the
/// `FromRef` impls below), and background tasks take explicit arguments.
pub struct AppInner {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub kv: Kv,
    pub gate: Arc<Gate>,
    pub client_ip: Arc<ClientIpResolver>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub hot_metrics: Arc<HotMetrics>,
    pub events: Arc<crate::events::Events>,
    /// The compiled `cors.*` policy (also consulted for websocket and login origins).
    pub cors: Arc<Cors>,
    /// The decision fronts' state.
    pub decision: DecisionState,
    /// The built-in proxy's state.
    pub proxy: ProxyState,
    /// The restrictions guard's state.
    pub guard: GuardState,
    /// The identity handlers' state.
    pub identity: IdentityState,
    /// The resource handlers' state.
    pub resource: ResourceState,
    /// The admin handlers' state.
    pub admin: AdminState,
    /// The Back Office handlers' state.
    pub backoffice: BackOfficeState,
}

impl AppInner {
    pub fn issuer(&self) -> &Issuer {
        &self.gate.issuer
    }

    pub fn secrets(&self) -> &SecretBox {
        &self.gate.secrets
    }

    pub fn sessions(&self) -> &Sessions {
        &self.gate.sessions
    }
}

impl FromRef<App> for DecisionState {
    fn from_ref(app: &App) -> DecisionState {
        app.decision.clone()
    }
}

impl FromRef<App> for ProxyState {
    fn from_ref(app: &App) -> ProxyState {
        app.proxy.clone()
    }
}

impl FromRef<App> for GuardState {
    fn from_ref(app: &App) -> GuardState {
        app.guard.clone()
    }
}

impl FromRef<App> for ResourceState {
    fn from_ref(app: &App) -> ResourceState {
        app.resource.clone()
    }
}

impl FromRef<App> for AdminState {
    fn from_ref(app: &App) -> AdminState {
        app.admin.clone()
    }
}

impl FromRef<App> for BackOfficeState {
    fn from_ref(app: &App) -> BackOfficeState {
        app.backoffice.clone()
    }
}

impl FromRef<App> for IdentityState {
    fn from_ref(app: &App) -> IdentityState {
        app.identity.clone()
    }
}

impl FromRef<App> for Arc<Settings> {
    fn from_ref(app: &App) -> Arc<Settings> {
        app.settings.clone()
    }
}

/// The AEAD key for secrets at rest: configured, or (in development mode only) a development
/// key kept on disk. Outside development mode a missing key stops the start, naming the setting.
pub fn load_encryption_key(settings: &Settings) -> anyhow::Result<EncryptionKey> {
    if let Some(key) = &settings.encryption.key {
        return Ok(key.clone());
    }
    if !settings.development {
        anyhow::bail!(
            "encryption.key (PORTCULLIS_ENCRYPTION__KEY) is not set: it seals API-key and TOTP secrets at rest; \
             set it to `openssl rand -base64 32`, or run with --dev for a generated development key"
        );
    }
    let path = &settings.encryption.dev_key_path;
    if !path.exists() {
        let key = EncryptionKey::new(crate::crypto::random_bytes::<32>());
        jwt::keys::write_private_file(path, key.to_base64().as_bytes())?;
        tracing::warn!(path = %path.display(),
            "generated a DEVELOPMENT encryption key for secrets at rest; set encryption.key in production");
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("encryption.dev_key_path {}: {e}", path.display()))?;
    EncryptionKey::from_base64(&text)
        .map_err(|why| anyhow::anyhow!("encryption.dev_key_path {}: {why}", path.display()))
}

/// The token issuer with its key: configured, or (in development mode only) a development key
/// kept on disk. Outside development mode a missing key stops the start, naming the setting.
pub fn load_issuer(settings: &Settings) -> anyhow::Result<Issuer> {
    if settings.jwt.private_key_path.is_none() && !settings.development {
        anyhow::bail!(
            "jwt.private_key_path (JWT_PRIVATE_KEY_PATH) is not set: it signs every token upstreams trust; \
             point it at an RSA private key in PEM, or run with --dev for a generated development key"
        );
    }
    let (key, source) = SigningKey::load_or_generate(
        settings.jwt.private_key_path.as_deref(),
        &settings.jwt.dev_key_path,
    )?;
    match source {
        KeySource::File => tracing::info!(kid = %key.kid, "signing key loaded"),
        KeySource::DevelopmentExisting | KeySource::DevelopmentGenerated => tracing::warn!(
            kid = %key.kid,
            path = %settings.jwt.dev_key_path.display(),
            generated = source == KeySource::DevelopmentGenerated,
            "using a DEVELOPMENT signing key; set jwt.private_key_path (JWT_PRIVATE_KEY_PATH) in production"
        ),
    }
    let mut others = Vec::new();
    for path in &settings.jwt.additional_public_keys {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("jwt.additional_public_keys {}: {e}", path.display()))?;
        others.push(
            jwt::keys::VerifyingKey::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("jwt.additional_public_keys {}: {e}", path.display())
            })?,
        );
    }
    Ok(Issuer::new(
        key,
        settings.jwt.algorithm,
        settings.jwt.expire_time.as_secs(),
        settings.jwt.kid_header,
    )
    .with_verifying_keys(others))
}

/// Said once, when the node starts: every KYCAID callback will be refused until the token is
/// set, and KYCAID will keep retrying them.
fn warn_if_kyc_callbacks_are_refused(settings: &Settings) {
    if settings.kyc.refuses_every_callback() {
        tracing::warn!(
            "kyc.provider is kycaid but kyc.kycaid_authorization_token (BARONG_KYCAID_AUTHORIZATION_TOKEN) is empty: every KYC callback is refused with 503 until it is set"
        );
    }
}

impl App {
    /// Connects to Postgres and Redis and assembles the state. Does not migrate or listen;
    /// see [`App::start_background`].
    pub async fn build(
        settings: Settings,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> anyhow::Result<App> {
        let store = Store::new(&settings.database)?;
        let kv = Kv::connect(&settings.redis).await?;
        let secrets = Arc::new(SecretBox::new(load_encryption_key(&settings)?.bytes()));
        let issuer = Arc::new(load_issuer(&settings)?);
        let geoip = match &settings.geoip.database_path {
            None => None,
            Some(path) => Some(Arc::new(GeoIp::open(path, &settings.geoip.language)?)),
        };
        let ttl = settings.cache.subject_ttl;
        let (audit, audit_rx) = AuditSink::new();
        let (admin_activities, admin_rx) = audit::ActivitySink::new();
        tokio::spawn(audit::run_writer(
            store.clone(),
            audit_rx,
            admin_rx,
            geoip.clone(),
        ));
        let public_prefix = settings.api.public_prefix.clone();
        let gate = Gate {
            policy: Arc::new(PolicyHandle::new()),
            sessions: Sessions::new(kv.clone(), settings.session.clone()),
            loader: Arc::new(store.clone()),
            subjects: Arc::new(Subjects::new(ttl, settings.cache.max_subjects)),
            api_keys: Arc::new(ApiKeyCache::new(
                ttl,
                settings.cache.max_api_keys,
                settings.api_keys.unknown_per_ip,
            )),
            replay: settings.api_keys.replay_guard.then(|| {
                ReplayGuard::new(
                    kv.clone(),
                    settings.api_keys.nonce_lifetime.as_millis() as u64,
                )
            }),
            secrets,
            geoip,
            issuer,
            audit,
            families: Some(crate::authn::backoffice::Families::new(kv.clone())),
            settings: GateSettings {
                csrf_protection: settings.session.csrf_protection,
                nonce_lifetime: settings.api_keys.nonce_lifetime,
                issue_for_pending: settings.jwt.issue_for_pending,
                session_paths: [
                    "identity/sessions",
                    "identity/sessions/auth0",
                    "identity/users",
                    "identity/users/email/confirm_code",
                ]
                .iter()
                .map(|path| rule_path(&format!("{public_prefix}/{path}")))
                .collect(),
                whitelink_path: rule_path(&format!("{public_prefix}/identity/users/access")),
                token_reuse: TokenReuse {
                    enabled: settings.jwt.cache_tokens,
                    fraction: settings.jwt.reuse_fraction,
                },
                sliding: Sliding::from_settings(&settings.session),
            },
        };
        warn_if_kyc_callbacks_are_refused(&settings);
        if settings.kyc.submits_to_kycaid() {
            tracing::info!(
                endpoint = %settings.kyc.kycaid_api_endpoint,
                sandbox = settings.kyc.kycaid_sandbox_mode,
                "KYC submissions go to KYCAID"
            );
        }
        let settings = Arc::new(settings);
        let gate = Arc::new(gate);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let outbound = Outbound::new();
        let client_ip = Arc::new(ClientIpResolver::new(&settings.network));
        let hot_metrics = Arc::new(HotMetrics::register());
        let events = Arc::new(crate::events::Events::new(&settings));
        let cors = Arc::new(Cors::new(&settings.cors));
        let decision = DecisionState::new(Decider {
            gate: gate.clone(),
            client_ip: client_ip.clone(),
            decision: settings.decision.clone(),
            mount: settings.api.mount.clone(),
            cookie_name: settings.session.cookie_name.clone(),
            hot_metrics: hot_metrics.clone(),
        });
        let hasher = Hasher::new(cores);
        let resource = ResourceState::new(Resource {
            settings: settings.clone(),
            store: store.clone(),
            kv: kv.clone(),
            sessions: gate.sessions.clone(),
            hasher: hasher.clone(),
            events: events.clone(),
            secrets: gate.secrets.clone(),
            subjects: gate.subjects.clone(),
            api_keys: gate.api_keys.clone(),
            uploads: crate::uploads::Uploads::new(&settings.uploads)?,
            rate_limiter: RateLimiter::new(kv.clone()),
            phones: Arc::new(PhoneProvider::new(
                &settings.phones,
                &settings.app.name,
                outbound.clone(),
            )),
        });
        let admin = AdminState::new(Admin {
            settings: settings.clone(),
            store: store.clone(),
            sessions: gate.sessions.clone(),
            events: events.clone(),
            secrets: gate.secrets.clone(),
            subjects: gate.subjects.clone(),
            api_keys: gate.api_keys.clone(),
            uploads: resource.uploads.clone(),
            activities: admin_activities,
            gate: gate.clone(),
        });
        let backoffice = BackOfficeState::new(BackOffice {
            settings: settings.clone(),
            store: store.clone(),
            tokens: crate::services::backoffice::BackOfficeTokens {
                store: store.clone(),
                families: crate::authn::backoffice::Families::new(kv.clone()),
                issuer: gate.issuer.clone(),
                secrets: gate.secrets.clone(),
                settings: settings.backoffice.clone(),
            },
            challenges: crate::authn::backoffice_2fa::Challenges::new(kv.clone()),
            rate_limiter: RateLimiter::new(kv.clone()),
            hasher: hasher.clone(),
            events: events.clone(),
        });
        let identity = IdentityState::new(Identity {
            settings: settings.clone(),
            store: store.clone(),
            kv: kv.clone(),
            sessions: gate.sessions.clone(),
            hasher,
            rate_limiter: RateLimiter::new(kv.clone()),
            events: events.clone(),
            outbound: outbound.clone(),
            auth0: Arc::new(Auth0::new(settings.auth0.clone(), outbound)),
            cors: cors.clone(),
            issuer: gate.issuer.clone(),
            secrets: gate.secrets.clone(),
            client_ip: client_ip.clone(),
            geoip: gate.geoip.clone(),
        });
        Ok(App(Arc::new(AppInner {
            proxy: ProxyState::new(Proxy {
                front: decision.clone(),
                upstreams: Upstreams::new(&settings.routes),
                cors: cors.clone(),
            }),
            guard: GuardState::new(Guarding {
                gate: gate.clone(),
                cookie_name: settings.session.cookie_name.clone(),
                client_ip: client_ip.clone(),
                mount: settings.api.mount.clone(),
                public_prefix: settings.api.public_prefix.clone(),
            }),
            decision,
            identity,
            resource,
            admin,
            backoffice,
            client_ip,
            store,
            kv,
            gate,
            metrics,
            hot_metrics,
            events,
            cors,
            settings,
        })))
    }

    /// Loads the policy snapshot and starts listening for changes. Returns once the first
    /// snapshot is in place (so the node never serves with an empty policy).
    pub async fn start_background(&self) -> anyhow::Result<()> {
        reload_policy(&self.store, &self.gate.policy).await?;
        tokio::spawn(self.gate.sessions.clone().follow_invalidations());
        self.proxy.start_health_checks();
        self.resource.phones.prepare().await;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(notify::listen(
            self.store.config().clone(),
            self.store.connector().clone(),
            tx,
        ));
        tokio::spawn(self.clone().apply_notices(rx));
        if self.settings.events.publish {
            tokio::spawn(crate::events::publisher::run(
                self.store.clone(),
                self.gate.issuer.clone(),
                self.settings.events.clone(),
                crate::events::publisher::connection_name(&self.events),
                self.events.publisher_wake.clone(),
            ));
        }
        if self.settings.mail.delivery != crate::config::MailDelivery::None {
            tokio::spawn(crate::events::mailer::run(
                self.store.clone(),
                self.settings.mail.clone(),
                self.settings.app.clone(),
                self.events.mailer_wake.clone(),
            ));
        }
        if self.settings.kyc.provider == crate::config::KycProvider::Kycaid {
            tokio::spawn(crate::services::kyc::run(
                self.kyc_parts(),
                crate::services::documents::StoredDocumentFiles {
                    store: self.store.clone(),
                    uploads: self.resource.uploads.clone(),
                    secrets: self.gate.secrets.clone(),
                },
                self.events.kyc_wake.clone(),
            ));
        }
        Ok(())
    }

    /// What the KYC worker runs with on this node.
    pub fn kyc_parts(&self) -> crate::services::kyc::KycParts {
        let settings = &self.settings;
        let callback_url = format!(
            "https://{}{}/public/kyc",
            settings.app.domain, settings.api.public_prefix
        );
        crate::services::kyc::KycParts {
            store: self.store.clone(),
            settings: settings.clone(),
            secrets: self.gate.secrets.clone(),
            events: self.events.clone(),
            subjects: self.gate.subjects.clone(),
            kycaid: crate::services::kyc::kycaid::Kycaid::new(
                &settings.kyc,
                Outbound::new(),
                callback_url,
            ),
        }
    }

    /// Applies change notices: policy rebuilds (debounced), subject and key invalidation.
    async fn apply_notices(self, mut rx: mpsc::UnboundedReceiver<Notice>) {
        let debounce = self.settings.cache.policy_debounce;
        while let Some(notice) = rx.recv().await {
            let mut reload = false;
            let mut pending = vec![notice];
            // Coalesce a burst (a bulk edit fires one notice per statement or row).
            tokio::time::sleep(debounce).await;
            while let Ok(more) = rx.try_recv() {
                pending.push(more);
            }
            for notice in pending {
                match notice {
                    Notice::Policy => reload = true,
                    Notice::Resync => {
                        reload = true;
                        self.gate.subjects.clear();
                        self.gate.api_keys.clear();
                    }
                    Notice::Queue { table } => match table.as_str() {
                        "event_outbox" => self.events.publisher_wake.notify_one(),
                        "mail_queue" => self.events.mailer_wake.notify_one(),
                        "kyc_jobs" => self.events.kyc_wake.notify_one(),
                        _ => {}
                    },
                    Notice::Subject { table, key } => match table.as_str() {
                        "users" => self.gate.subjects.invalidate(SubjectKind::User, &key),
                        "service_accounts" => self
                            .gate
                            .subjects
                            .invalidate(SubjectKind::ServiceAccount, &key),
                        "api_keys" => self.gate.api_keys.invalidate(&key),
                        _ => {}
                    },
                }
            }
            if reload {
                // Keep trying: a node must not keep an old policy because one read failed.
                let max = Duration::from_secs(5);
                let mut backoff = ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(max)
                    .without_max_times()
                    .build();
                while let Err(err) = reload_policy(&self.store, &self.gate.policy).await {
                    tracing::warn!(error = %err, "policy reload failed; retrying");
                    tokio::time::sleep(backoff.next().unwrap_or(max)).await;
                }
            }
        }
    }
}

/// Rebuilds the policy snapshot from the database and swaps it in; the old snapshot stays on
/// failure. Returns the new generation.
pub async fn reload_policy(store: &Store, policy: &PolicyHandle) -> Result<u64, StoreError> {
    let rows = store::policy::rows(store).await?;
    Ok(policy.replace(Policy::compile(&rows)))
}

/// Creates the database if asked, applies migrations, loads default policies into an empty
/// permissions table. What `serve` does before it listens.
pub async fn prepare_database(settings: &Settings) -> anyhow::Result<()> {
    if settings.database.auto_create
        && store::create_database_if_missing(&settings.database).await?
    {
        tracing::info!("database created");
    }
    let store = Store::new(&settings.database)?;
    if settings.database.auto_migrate {
        store::migrations::run(&store).await?;
    }
    if settings.database.load_default_policies {
        let client = store.client().await?;
        if store::permissions::count(&client).await? == 0 {
            let report =
                crate::policies::apply(&store, &settings.policies.dir, &settings.api.public_prefix)
                    .await?;
            tracing::info!(?report, dir = %settings.policies.dir.display(), "default policies loaded into an empty database");
        }
    }
    Ok(())
}
