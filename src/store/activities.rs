//! The `activities` table: the audit log of what users did and what the gate denied.
//!
//! Values are cut to their columns' widths here, where the widths are known: a 3,000-character
//! User-Agent or a made-up 40-character uid must neither fail the write (and with it a login's
//! answer, or a whole batch of audit records) nor be refused; the record keeps what fits.

use super::{Db, StoreError, execute};

/// Column widths, in characters (what VARCHAR(n) counts).
const TARGET_UID: usize = 32;
const USER_IP: usize = 64;
const COUNTRY: usize = 64;
const USER_AGENT: usize = 1024;
const TOPIC: usize = 64;
const ACTION: usize = 64;
/// `data` is TEXT; a bound keeps one record from holding megabytes of query string.
const DATA: usize = 8 * 1024;

/// The longest prefix of `text` with at most `max` characters.
pub fn fit(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// The activity with every value cut to its column.
fn fitted(a: &NewActivity) -> NewActivity {
    NewActivity {
        user_id: a.user_id,
        target_uid: a
            .target_uid
            .as_deref()
            .map(|t| fit(t, TARGET_UID).to_string()),
        category: a.category,
        user_ip: fit(&a.user_ip, USER_IP).to_string(),
        user_ip_country: a
            .user_ip_country
            .as_deref()
            .map(|c| fit(c, COUNTRY).to_string()),
        user_agent: fit(&a.user_agent, USER_AGENT).to_string(),
        topic: fit(&a.topic, TOPIC).to_string(),
        action: fit(&a.action, ACTION).to_string(),
        result: a.result,
        data: a.data.as_deref().map(|d| fit(d, DATA).to_string()),
    }
}

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
    let a = &fitted(a);
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
    let batch: Vec<NewActivity> = batch.iter().map(fitted).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_cut_to_their_columns_in_characters() {
        assert_eq!(fit("abc", 2), "ab");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("ééé", 2), "éé");
        let long = NewActivity {
            user_id: Some(1),
            target_uid: Some("A".repeat(40)),
            category: "admin",
            user_ip: "1.2.3.4".into(),
            user_ip_country: None,
            user_agent: "ü".repeat(3000),
            topic: "t".repeat(100),
            action: "a".repeat(100),
            result: "denied",
            data: Some("d".repeat(100_000)),
        };
        let f = fitted(&long);
        assert_eq!(f.target_uid.unwrap().chars().count(), 32);
        assert_eq!(f.user_agent.chars().count(), 1024);
        assert_eq!(f.topic.len(), 64);
        assert_eq!(f.action.len(), 64);
        assert_eq!(f.data.unwrap().len(), 8 * 1024);
    }
}

/// A recorded activity, as the user's history shows it.
#[derive(Debug, Clone)]
pub struct ActivityRow {
    pub id: i64,
    pub user_ip: String,
    pub user_ip_country: Option<String>,
    pub user_agent: String,
    pub topic: String,
    pub action: String,
    pub result: String,
    pub data: Option<String>,
    pub created_at: time::OffsetDateTime,
}

/// The activity in the first nine columns of `r` (id, user_ip, user_ip_country, user_agent, topic, action, result, data, created_at).
fn activity_from(r: &tokio_postgres::Row) -> ActivityRow {
    ActivityRow {
        id: r.get(0),
        user_ip: r.get(1),
        user_ip_country: r.get(2),
        user_agent: r.get(3),
        topic: r.get(4),
        action: r.get(5),
        result: r.get(6),
        data: r.get(7),
        created_at: r.get(8),
    }
}

/// Which of a user's activities to list.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    /// `None`: every topic.
    pub topic: Option<&'a str>,
    /// Unix seconds, inclusive.
    pub time_from: Option<i64>,
    pub time_to: Option<i64>,
    pub result: Option<&'a str>,
}

/// The user's own (`user` category) activities, newest first, one page of them, with the
/// total that match.
pub async fn of_user<C: Db>(
    c: &C,
    user_id: i64,
    filter: &Filter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ActivityRow>, i64), StoreError> {
    const MATCH: &str = "user_id = $1 AND category = 'user'
         AND ($2::text IS NULL OR topic = $2)
         AND ($3::bigint IS NULL OR created_at >= to_timestamp($3))
         AND ($4::bigint IS NULL OR created_at <= to_timestamp($4))
         AND ($5::text IS NULL OR result = $5)";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [
        &user_id,
        &filter.topic,
        &filter.time_from,
        &filter.time_to,
        &filter.result,
    ];
    let total: i64 = super::query_one(
        c,
        &format!("SELECT count(*) FROM activities WHERE {MATCH}"),
        &params,
    )
    .await?
    .get(0);
    let rows = super::query(
        c,
        &format!(
            "SELECT id, user_ip, user_ip_country, user_agent, topic, action, result, data, created_at
             FROM activities WHERE {MATCH} ORDER BY id DESC LIMIT $6 OFFSET $7"
        ),
        &[
            params[0], params[1], params[2], params[3], params[4], &limit, &offset,
        ],
    )
    .await?;
    let rows = rows.iter().map(activity_from).collect();
    Ok((rows, total))
}

/// Which activities staff list (`GET /admin/activities` and `/admin/activities/admin`).
#[derive(Debug, Clone, Default)]
pub struct StaffFilter<'a> {
    /// `user` (what users did) or `admin` (what staff did, and AUDIT matches).
    pub category: &'a str,
    pub topic: Option<&'a str>,
    pub action: Option<&'a str>,
    /// The actor's uid and email.
    pub uid: Option<&'a str>,
    pub email: Option<&'a str>,
    /// Unix seconds, inclusive.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub target_uid: Option<&'a str>,
}

/// An activity with who did it and whom it was about.
#[derive(Debug, Clone)]
pub struct StaffActivityRow {
    pub activity: ActivityRow,
    pub user_id: Option<i64>,
    pub target_uid: Option<String>,
}

/// One page of activities for staff, newest first, with the total that match.
pub async fn for_staff<C: Db>(
    c: &C,
    filter: &StaffFilter<'_>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<StaffActivityRow>, i64), StoreError> {
    const MATCH: &str = "a.category = $1
         AND ($2::text IS NULL OR a.topic = $2)
         AND ($3::text IS NULL OR a.action = $3)
         AND ($4::text IS NULL OR u.uid = $4)
         AND ($5::text IS NULL OR u.email = $5)
         AND ($6::bigint IS NULL OR a.created_at >= to_timestamp($6))
         AND ($7::bigint IS NULL OR a.created_at <= to_timestamp($7))
         AND ($8::text IS NULL OR a.target_uid = $8)";
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &filter.category,
        &filter.topic,
        &filter.action,
        &filter.uid,
        &filter.email,
        &filter.from,
        &filter.to,
        &filter.target_uid,
    ];
    let total: i64 = super::query_one(
        c,
        &format!(
            "SELECT count(*) FROM activities a LEFT JOIN users u ON u.id = a.user_id WHERE {MATCH}"
        ),
        &params,
    )
    .await?
    .get(0);
    let mut all = params.to_vec();
    all.push(&limit);
    all.push(&offset);
    let rows = super::query(
        c,
        &format!(
            "SELECT a.id, a.user_ip, a.user_ip_country, a.user_agent, a.topic, a.action, a.result,
                    a.data, a.created_at, a.user_id, a.target_uid
             FROM activities a LEFT JOIN users u ON u.id = a.user_id
             WHERE {MATCH} ORDER BY a.id DESC LIMIT $9 OFFSET $10"
        ),
        &all,
    )
    .await?;
    let rows = rows
        .iter()
        .map(|r| StaffActivityRow {
            activity: activity_from(r),
            user_id: r.get(9),
            target_uid: r.get(10),
        })
        .collect();
    Ok((rows, total))
}

/// Per day (UTC, `YYYY-MM-DD`), how many activities of `topic`/`action`/`result` happened in
/// `[from, to]` (unix seconds).
pub async fn daily_counts<C: Db>(
    c: &C,
    (topic, action, result): (&str, &str, &str),
    from: i64,
    to: i64,
) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = super::query(
        c,
        "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*)
         FROM activities
         WHERE topic = $1 AND action = $2 AND result = $3
           AND created_at >= to_timestamp($4::bigint) AND created_at <= to_timestamp($5::bigint)
         GROUP BY day ORDER BY day",
        &[&topic, &action, &result, &from, &to],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
