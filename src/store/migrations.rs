//! Embedded SQL migrations, applied in order, once, under an advisory lock so that several
//! nodes starting together do not race.

use super::{Store, StoreError};

/// (version, name, sql). Append new files here; never edit an applied one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../migrations/0001_schema.sql"),
    ),
    (
        2,
        "mail_and_kyc",
        include_str!("../../migrations/0002_mail_and_kyc.sql"),
    ),
    (
        3,
        "user_identities",
        include_str!("../../migrations/0003_user_identities.sql"),
    ),
    (
        4,
        "kyc_callbacks",
        include_str!("../../migrations/0004_kyc_callbacks.sql"),
    ),
    (
        5,
        "kyc_jobs",
        include_str!("../../migrations/0005_kyc_jobs.sql"),
    ),
    (
        6,
        "document_uploads",
        include_str!("../../migrations/0006_document_uploads.sql"),
    ),
    (
        7,
        "phone_codes",
        include_str!("../../migrations/0007_phone_codes.sql"),
    ),
    (
        8,
        "kyc_worker",
        include_str!("../../migrations/0008_kyc_worker.sql"),
    ),
    (
        9,
        "backoffice",
        include_str!("../../migrations/0009_backoffice.sql"),
    ),
];

/// Arbitrary but fixed: the advisory lock that serialises migration runs.
const LOCK_KEY: i64 = 0x706f_7274_6375_6c6c; // "portcull"

/// Applies pending migrations; returns the versions applied now.
pub async fn run(store: &Store) -> Result<Vec<i32>, StoreError> {
    let mut client = store.client().await?;
    client
        .batch_execute(
            "SET statement_timeout = 0;
             SET client_min_messages = warning;
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    INTEGER     PRIMARY KEY,
                 name       TEXT        NOT NULL,
                 checksum   TEXT        NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_pending(&mut client).await;
    // Release even when a migration failed; the pooled connection stays usable.
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    let timeout_reset = client
        .batch_execute("RESET statement_timeout; RESET client_min_messages")
        .await;
    let applied = result?;
    unlock?;
    timeout_reset?;
    Ok(applied)
}

async fn apply_pending(client: &mut super::Client) -> Result<Vec<i32>, StoreError> {
    let rows = client
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?;
    let done: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let mut applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        let checksum = crate::crypto::sha256_hex(sql.as_bytes());
        if let Some((_, recorded)) = done.iter().find(|(v, _)| v == version) {
            if *recorded != checksum {
                return Err(StoreError::Other(format!(
                    "migration {version} ({name}) changed after it was applied"
                )));
            }
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[version, name, &checksum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "migration applied");
        applied.push(*version);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// `migrations/NNNN_name.sql` for each entry, and an entry for each file, in order: a file
    /// left out of the list would never run, and a renumbered one would run twice.
    #[test]
    fn the_list_and_the_files_agree() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(version, name, _)| format!("{version:04}_{name}.sql"))
            .collect();
        assert_eq!(listed, files);
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        for (version, name, sql) in MIGRATIONS {
            let file = format!(
                "{}/migrations/{version:04}_{name}.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            assert_eq!(std::fs::read_to_string(&file).unwrap(), *sql, "{file}");
        }
    }
}
