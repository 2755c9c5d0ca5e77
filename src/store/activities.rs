//! The `activities` table: the audit log of what users did and what the gate denied.

use super::{Db, StoreError, execute};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    pub user_id: Option<i64>,
    pub target_uid: Option<String>,
    /// `user` (the user's own actions) or `admin` (decisions on their requests).
    pub category: &'static str,
    pub user_ip: String,
    pub user_ip_country: Option<String>,
    pub user_agent: String,
    pub topic: String,
    pub action: String,
    /// `succeed`, `failed` or `denied`.
    pub result: &'static str,
    pub data: Option<String>,
}

pub async fn insert<C: Db>(c: &C, a: &NewActivity) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO activities (user_id, target_uid, category, user_ip, user_ip_country, user_agent,
                                 topic, action, result, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &a.user_id,
            &a.target_uid,
            &a.category,
            &a.user_ip,
            &a.user_ip_country,
            &a.user_agent,
            &a.topic,
            &a.action,
            &a.result,
            &a.data,
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a batch in one statement (the asynchronous audit writer's path).
pub async fn insert_many<C: Db>(c: &C, batch: &[NewActivity]) -> Result<(), StoreError> {
    if batch.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            batch.iter().map(|a| a.$field.clone()).collect::<Vec<_>>()
        };
    }
    let user_id: Vec<Option<i64>> = column!(user_id);
    let target_uid: Vec<Option<String>> = column!(target_uid);
    let category: Vec<&str> = batch.iter().map(|a| a.category).collect();
    let user_ip: Vec<String> = column!(user_ip);
    let country: Vec<Option<String>> = column!(user_ip_country);
    let user_agent: Vec<String> = column!(user_agent);
    let topic: Vec<String> = column!(topic);
    let action: Vec<String> = column!(action);
    let result: Vec<&str> = batch.iter().map(|a| a.result).collect();
    let data: Vec<Option<String>> = column!(data);
    execute(
        c,
        "INSERT INTO activities (user_id, target_uid, category, user_ip, user_ip_country, user_agent,
                                 topic, action, result, data)
         SELECT * FROM UNNEST($1::bigint[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[],
                              $6::varchar[], $7::varchar[], $8::varchar[], $9::varchar[], $10::text[])",
        &[
            &user_id,
            &target_uid,
            &category,
            &user_ip,
            &country,
            &user_agent,
            &topic,
            &action,
            &result,
            &data,
        ],
    )
    .await?;
    Ok(())
}
