//! Postgres: the pool, database creation, migrations, and one module of queries per aggregate.
//!
//! Everything that speaks SQL lives under `store/`. Callers get typed rows and a [`StoreError`]
//! that says whether the database was unavailable (fail closed) or refused the change.

pub mod activities;
pub mod admin_abilities;
pub mod api_keys;
pub mod authz_rules;
pub mod backoffice_tokens;
pub mod comments;
pub mod documents;
pub mod identities;
pub mod kyc;
pub mod kyc_jobs;
pub mod labels;
pub mod levels;
pub mod loader;
pub mod mail_queue;
pub mod migrations;
pub mod notify;
pub mod outbox;
pub mod permissions;
pub mod phones;
pub mod policy;
pub mod restrictions;
pub mod service_accounts;
pub mod tls;
pub mod user_search;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use crate::config;

pub type Client = deadpool_postgres::Client;
pub type Transaction<'a> = deadpool_postgres::Transaction<'a>;

/// Why a store call failed.
#[derive(Debug)]
pub enum StoreError {
    /// The database could not answer in time (down, pool exhausted, connection lost).
    Unavailable(String),
    /// A unique constraint refused the row; carries the constraint's name.
    Conflict(String),
    /// A check or foreign-key constraint refused the row.
    Invalid(String),
    /// Text the database cannot hold (a NUL character): the caller's input, not a fault.
    BadText,
    /// Anything else the database said.
    Other(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(e) => write!(f, "database unavailable: {e}"),
            StoreError::Conflict(c) => write!(f, "unique constraint {c} refused the row"),
            StoreError::Invalid(c) => write!(f, "constraint {c} refused the row"),
            StoreError::BadText => write!(f, "text the database cannot hold"),
            StoreError::Other(e) => write!(f, "database error: {e}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        if let Some(db) = err.as_db_error() {
            let constraint = db.constraint().unwrap_or("").to_string();
            return match *db.code() {
                SqlState::UNIQUE_VIOLATION => StoreError::Conflict(constraint),
                SqlState::CHECK_VIOLATION
                | SqlState::FOREIGN_KEY_VIOLATION
                | SqlState::NOT_NULL_VIOLATION
                | SqlState::STRING_DATA_RIGHT_TRUNCATION => StoreError::Invalid(constraint),
                SqlState::QUERY_CANCELED
                | SqlState::ADMIN_SHUTDOWN
                | SqlState::CANNOT_CONNECT_NOW
                | SqlState::TOO_MANY_CONNECTIONS => StoreError::Unavailable(db.message().into()),
                // Postgres text holds no NUL; a handler that let one through is answered as
                // bad input, never as a server fault.
                SqlState::CHARACTER_NOT_IN_REPERTOIRE => StoreError::BadText,
                _ => StoreError::Other(db.message().into()),
            };
        }
        // No server error: the connection itself failed or closed.
        StoreError::Unavailable(err.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

/// The connection pool. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    /// `database.replica_url`'s pool, for reads that tolerate replication lag.
    replica: Option<Pool>,
    config: tokio_postgres::Config,
    connector: tls::Connector,
}

/// The settings a pooled connection to `url` connects with, and how (plain or TLS).
fn connection_config(
    key: &str,
    url: &str,
    settings: &config::Database,
) -> anyhow::Result<(tokio_postgres::Config, tls::Connector)> {
    let mut pg =
        tokio_postgres::Config::from_str(url).map_err(|e| anyhow::anyhow!("{key}: {e}"))?;
    let timeout = settings.timeout;
    pg.connect_timeout(timeout);
    // A query slower than the timeout is cancelled by the server, so a slow database fails
    // closed instead of holding requests.
    pg.options(format!("-c statement_timeout={}", timeout.as_millis()));
    if pg.get_application_name().is_none() {
        pg.application_name("portcullis");
    }
    let connector = tls::Connector::for_config(&pg, settings.tls_ca_file.as_deref())?;
    Ok((pg, connector))
}

/// A pool of `settings.pool_size` connections made with `pg`. Fast recycling drops a
/// connection the server closed (a restart, a failover) when it is next taken, so the pool
/// recovers on its own once the server answers again.
fn build_pool(
    pg: &tokio_postgres::Config,
    connector: &tls::Connector,
    settings: &config::Database,
) -> anyhow::Result<Pool> {
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match connector {
        tls::Connector::Plain => Manager::from_config(pg.clone(), NoTls, manager_config),
        tls::Connector::Tls(tls) => Manager::from_config(pg.clone(), tls.clone(), manager_config),
    };
    let timeout = settings.timeout;
    Ok(Pool::builder(manager)
        .max_size(settings.pool_size)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .runtime(Runtime::Tokio1)
        .build()?)
}

impl Store {
    /// Builds the pools; no connection is made until the first query.
    pub fn new(settings: &config::Database) -> anyhow::Result<Store> {
        let (pg, connector) = connection_config("database.url", settings.url.expose(), settings)?;
        let pool = build_pool(&pg, &connector, settings)?;
        let replica = match &settings.replica_url {
            None => None,
            Some(url) => {
                let (pg, connector) =
                    connection_config("database.replica_url", url.expose(), settings)?;
                Some(build_pool(&pg, &connector, settings)?)
            }
        };
        Ok(Store {
            pool,
            replica,
            config: pg,
            connector,
        })
    }

    /// A connection for reads that tolerate replication lag (listings and reports an operator
    /// reads): from the replica when one is configured and answers, else from the primary.
    /// Never for a decision, a credential check or a read a write depends on: those must see
    /// the latest ban, revocation or change, and use [`Store::client`].
    pub async fn reader(&self) -> Result<Client, StoreError> {
        if let Some(replica) = &self.replica {
            match replica.get().await {
                Ok(client) => return Ok(client),
                Err(err) => {
                    metrics::counter!("portcullis_replica_unavailable_total").increment(1);
                    tracing::debug!(error = %err, "database replica unavailable; reading from the primary");
                }
            }
        }
        self.client().await
    }

    pub async fn client(&self) -> Result<Client, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// The connection settings, for connections outside the pool (the change listener).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// How connections outside the pool connect (plain, or TLS as `database.url` asks).
    pub fn connector(&self) -> &tls::Connector {
        &self.connector
    }

    /// True when a trivial query answers.
    pub async fn ping(&self) -> bool {
        match self.client().await {
            Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }
}

/// Creates the database `settings.url` names when it does not exist (connecting to
/// `postgres`, the same way the pool connects).
pub async fn create_database_if_missing(settings: &config::Database) -> anyhow::Result<bool> {
    let target = tokio_postgres::Config::from_str(settings.url.expose())?;
    let name = target
        .get_dbname()
        .ok_or_else(|| anyhow::anyhow!("database.url names no database"))?
        .to_string();
    let mut admin = target.clone();
    admin.dbname("postgres");
    admin.connect_timeout(Duration::from_secs(5));
    let connector = tls::Connector::for_config(&admin, settings.tls_ca_file.as_deref())?;
    let (client, task) = connector.connect(&admin).await?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await?
        .is_some();
    if !exists {
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => {}
            // Another node created it in the meantime.
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    drop(client);
    let _ = task.await;
    Ok(!exists)
}

/// Drops the database named in `url` (used by tests to clean up after themselves).
pub async fn drop_database(url: &str) -> anyhow::Result<()> {
    let target = tokio_postgres::Config::from_str(url)?;
    let name = target
        .get_dbname()
        .ok_or_else(|| anyhow::anyhow!("no database in url"))?
        .to_string();
    let mut admin = target.clone();
    admin.dbname("postgres");
    let connector = tls::Connector::for_config(&admin, None)?;
    let (client, task) = connector.connect(&admin).await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        .await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

pub use deadpool_postgres::GenericClient as Db;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Runs a query through the connection's statement cache (one round trip once prepared).
pub async fn query<C: Db>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

pub async fn query_opt<C: Db>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Option<Row>, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

pub async fn query_one<C: Db>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Row, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

pub async fn execute<C: Db>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, StoreError> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}
