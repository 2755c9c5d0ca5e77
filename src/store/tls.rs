//! TLS to Postgres, when `database.url` asks for it (`sslmode=require`).
//!
//! The server's certificate is always verified, against `database.tls_ca_file` when set (a
//! managed database's CA bundle) or else the system's trusted roots: encryption without
//! verification stops a listener, not a man in the middle, and both carry session secrets and
//! sealed keys. Without `sslmode=require` the connection is plain, as before (`prefer` is not
//! taken as a reason to encrypt, since it could not be verified either).

use std::path::Path;
use std::sync::Arc;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How this node connects to Postgres.
#[derive(Clone)]
pub enum Connector {
    Plain,
    Tls(MakeRustlsConnect),
}

impl Connector {
    /// The connector `config` (its `sslmode`) and `ca_file` ask for.
    pub fn for_config(
        config: &tokio_postgres::Config,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Connector> {
        if config.get_ssl_mode() != SslMode::Require {
            return Ok(Connector::Plain);
        }
        Ok(Connector::Tls(MakeRustlsConnect::new(client_config(
            ca_file,
        )?)))
    }

    /// A connection outside the pool, driven on its own task until the client is dropped.
    pub async fn connect(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error> {
        Ok(match self {
            Connector::Plain => {
                let (client, connection) = config.connect(NoTls).await?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
            Connector::Tls(tls) => {
                let (client, connection) = config.connect(tls.clone()).await?;
                (client, tokio::spawn(async move { drop(connection.await) }))
            }
        })
    }
}

/// Roots to verify the server with: the CA file's certificates, or the system's.
fn client_config(ca_file: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca_file) = ca_file {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let shown = ca_file.display();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca_file)
            .and_then(|iter| iter.collect())
            .map_err(|e| anyhow::anyhow!("database.tls_ca_file {shown}: {e}"))?;
        if certs.is_empty() {
            anyhow::bail!("database.tls_ca_file {shown}: no certificate in it");
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| anyhow::anyhow!("database.tls_ca_file {shown}: {e}"))?;
        }
    } else {
        for cert in rustls_native_certs::load_native_certs().certs {
            // A malformed system certificate is skipped, as every TLS client does.
            let _ = roots.add(cert);
        }
    }
    if roots.is_empty() {
        anyhow::bail!(
            "database.url asks for TLS (sslmode=require) but no trusted root is available: set database.tls_ca_file"
        );
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(Arc::new(roots))
        .with_no_client_auth())
}
