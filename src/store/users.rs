//! The `users` table and what hangs directly off a user for the API entities.

use time::OffsetDateTime;
use tokio_postgres::Row;

use super::{Db, StoreError, execute, query_one, query_opt};
use crate::domain::subject::{SubjectKind, SubjectRecord};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub uid: String,
    pub username: Option<String>,
    pub email: String,
    pub password_digest: String,
    pub role: String,
    pub data: Option<String>,
    pub level: i32,
    pub otp: bool,
    pub otp_secret_encrypted: Option<String>,
    pub state: String,
    pub referral_id: Option<i64>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub(super) const COLUMNS: &str = "id, uid, username, email, password_digest, role, data, level, otp, \
                       otp_secret_encrypted, state, referral_id, created_at, updated_at";

impl UserRow {
    pub(super) fn from_row(row: &Row) -> UserRow {
        UserRow {
            id: row.get(0),
            uid: row.get(1),
            username: row.get(2),
            email: row.get(3),
            password_digest: row.get(4),
            role: row.get(5),
            data: row.get(6),
            level: row.get(7),
            otp: row.get(8),
            otp_secret_encrypted: row.get(9),
            state: row.get(10),
            referral_id: row.get(11),
            created_at: row.get(12),
            updated_at: row.get(13),
        }
    }

    pub fn subject(&self) -> SubjectRecord {
        SubjectRecord {
            kind: SubjectKind::User,
            id: self.id,
            uid: self.uid.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            role: self.role.clone(),
            level: self.level,
            state: self.state.clone(),
            referral_id: self.referral_id,
            otp: self.otp,
        }
    }
}

pub struct NewUser<'a> {
    pub uid: &'a str,
    pub username: Option<&'a str>,
    pub email: &'a str,
    pub password_digest: &'a str,
    pub role: &'a str,
    pub data: Option<&'a str>,
    pub level: i32,
    pub state: &'a str,
    pub referral_id: Option<i64>,
}

pub async fn insert<C: Db>(c: &C, new: &NewUser<'_>) -> Result<UserRow, StoreError> {
    let sql = format!(
        "INSERT INTO users (uid, username, email, password_digest, role, data, level, state, referral_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {COLUMNS}"
    );
    let row = query_one(
        c,
        &sql,
        &[
            &new.uid,
            &new.username,
            &new.email,
            &new.password_digest,
            &new.role,
            &new.data,
            &new.level,
            &new.state,
            &new.referral_id,
        ],
    )
    .await?;
    Ok(UserRow::from_row(&row))
}

pub async fn find_by_email<C: Db>(c: &C, email: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE lower(email) = lower($1)");
    Ok(query_opt(c, &sql, &[&email])
        .await?
        .as_ref()
        .map(UserRow::from_row))
}

pub async fn find_by_uid<C: Db>(c: &C, uid: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE uid = $1");
    Ok(query_opt(c, &sql, &[&uid])
        .await?
        .as_ref()
        .map(UserRow::from_row))
}

pub async fn find_by_id<C: Db>(c: &C, id: i64) -> Result<Option<UserRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    Ok(query_opt(c, &sql, &[&id])
        .await?
        .as_ref()
        .map(UserRow::from_row))
}

/// The users with any of these ids or uids (at most one row each), for listings that name
/// many users at once.
pub async fn find_many<C: Db>(
    c: &C,
    ids: &[i64],
    uids: &[String],
) -> Result<Vec<UserRow>, StoreError> {
    if ids.is_empty() && uids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = ANY($1) OR uid = ANY($2)");
    let rows = super::query(c, &sql, &[&ids, &uids]).await?;
    Ok(rows.iter().map(UserRow::from_row).collect())
}

/// The uid of a user by id (for `referral_uid`).
pub async fn uid_by_id<C: Db>(c: &C, id: i64) -> Result<Option<String>, StoreError> {
    Ok(query_opt(c, "SELECT uid FROM users WHERE id = $1", &[&id])
        .await?
        .map(|r| r.get(0)))
}

pub async fn set_password_digest<C: Db>(c: &C, id: i64, digest: &str) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE users SET password_digest = $2, updated_at = now() WHERE id = $1",
        &[&id, &digest],
    )
    .await?;
    Ok(())
}

pub async fn set_otp<C: Db>(
    c: &C,
    id: i64,
    enabled: bool,
    secret_encrypted: Option<&str>,
) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE users SET otp = $2, otp_secret_encrypted = $3, updated_at = now() WHERE id = $1",
        &[&id, &enabled, &secret_encrypted],
    )
    .await?;
    Ok(())
}

pub async fn username_taken<C: Db>(c: &C, username: &str) -> Result<bool, StoreError> {
    Ok(query_one(
        c,
        "SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)",
        &[&username],
    )
    .await?
    .get(0))
}

pub async fn set_role<C: Db>(c: &C, id: i64, role: &str) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE users SET role = $2, updated_at = now() WHERE id = $1",
        &[&id, &role],
    )
    .await?;
    Ok(())
}

pub async fn count<C: Db>(c: &C) -> Result<i64, StoreError> {
    Ok(query_one(c, "SELECT count(*) FROM users", &[])
        .await?
        .get(0))
}

/// A user's label as the API shows it.
#[derive(Debug, Clone)]
pub struct LabelRow {
    pub key: String,
    pub value: String,
    pub scope: String,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub async fn labels<C: Db>(c: &C, user_id: i64) -> Result<Vec<LabelRow>, StoreError> {
    let rows = super::query(
        c,
        "SELECT key, value, scope, description, created_at, updated_at FROM labels
         WHERE user_id = $1 ORDER BY id",
        &[&user_id],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| LabelRow {
            key: r.get(0),
            value: r.get(1),
            scope: r.get(2),
            description: r.get(3),
            created_at: r.get(4),
            updated_at: r.get(5),
        })
        .collect())
}

/// Creates or updates a label by (user, key, scope).
pub async fn upsert_label<C: Db>(
    c: &C,
    user_id: i64,
    key: &str,
    value: &str,
    scope: &str,
) -> Result<(), StoreError> {
    execute(
        c,
        "INSERT INTO labels (user_id, key, value, scope) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, key, scope) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        &[&user_id, &key, &value, &scope],
    )
    .await?;
    Ok(())
}

/// A phone as entities show it (`store::phones` has the rows the phone endpoints work on).
#[derive(Debug, Clone)]
pub struct PhoneRow {
    pub country: String,
    pub number_encrypted: String,
    pub validated_at: Option<OffsetDateTime>,
}

pub async fn phones<C: Db>(c: &C, user_id: i64) -> Result<Vec<PhoneRow>, StoreError> {
    let rows = super::query(
        c,
        "SELECT country, number_encrypted, validated_at FROM phones WHERE user_id = $1 ORDER BY id",
        &[&user_id],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| PhoneRow {
            country: r.get(0),
            number_encrypted: r.get(1),
            validated_at: r.get(2),
        })
        .collect())
}

#[derive(Debug, Clone)]
pub struct ProfileRow {
    pub id: i64,
    pub first_name_encrypted: Option<String>,
    pub last_name_encrypted: Option<String>,
    pub dob_encrypted: Option<String>,
    pub address_encrypted: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub state: String,
    pub metadata: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// KYCAID's applicant, once the KYC worker created it.
    pub applicant_id: Option<String>,
    /// Who wrote it: `user` for the user's own, else the uid of the staff member.
    pub author: Option<String>,
}

pub async fn profiles<C: Db>(c: &C, user_id: i64) -> Result<Vec<ProfileRow>, StoreError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE user_id = $1 ORDER BY id");
    let rows = super::query(c, &sql, &[&user_id]).await?;
    Ok(rows.iter().map(profile_from).collect())
}

#[derive(Debug, Clone)]
pub struct DataStorageRow {
    pub title: String,
    pub data: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub async fn data_storages<C: Db>(c: &C, user_id: i64) -> Result<Vec<DataStorageRow>, StoreError> {
    let rows = super::query(
        c,
        "SELECT title, data, created_at, updated_at FROM data_storages WHERE user_id = $1 ORDER BY id",
        &[&user_id],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| DataStorageRow {
            title: r.get(0),
            data: r.get(1),
            created_at: r.get(2),
            updated_at: r.get(3),
        })
        .collect())
}

/// The `data` JSON of each user in `uids` that has one, by uid (the mailer reads the
/// recipient's language from it).
pub async fn data_by_uid<C: Db>(
    c: &C,
    uids: &[String],
) -> Result<Vec<(String, String)>, StoreError> {
    let rows = super::query(
        c,
        "SELECT uid, data FROM users WHERE uid = ANY($1) AND data IS NOT NULL",
        &[&uids],
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Sets the user's `data` (a JSON text the API checked).
pub async fn set_data<C: Db>(c: &C, id: i64, data: &str) -> Result<UserRow, StoreError> {
    let row = super::query_one(
        c,
        &format!(
            "UPDATE users SET data = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
        ),
        &[&id, &data],
    )
    .await?;
    Ok(UserRow::from_row(&row))
}

/// Stores `data` under `title` for the user; `Conflict` when the user has that title already
/// (titles compare case-insensitively).
pub async fn insert_data_storage<C: Db>(
    c: &C,
    user_id: i64,
    title: &str,
    data: &str,
) -> Result<DataStorageRow, StoreError> {
    let row = super::query_one(
        c,
        "INSERT INTO data_storages (user_id, title, data) VALUES ($1, $2, $3)
         RETURNING title, data, created_at, updated_at",
        &[&user_id, &title, &data],
    )
    .await?;
    Ok(DataStorageRow {
        title: row.get(0),
        data: row.get(1),
        created_at: row.get(2),
        updated_at: row.get(3),
    })
}

/// Stores a new sealed TOTP secret for a user who has not turned 2FA on (the QR code step);
/// it replaces any earlier one not yet enabled. False when 2FA is on: an enabled secret is
/// never replaced, even by a request that raced the enabling.
pub async fn stage_otp_secret<C: Db>(c: &C, id: i64, sealed: &str) -> Result<bool, StoreError> {
    let updated = execute(
        c,
        "UPDATE users SET otp_secret_encrypted = $2, updated_at = now() WHERE id = $1 AND NOT otp",
        &[&id, &sealed],
    )
    .await?;
    Ok(updated == 1)
}

/// Turns 2FA on, provided the staged secret is still `sealed` (the one the code was checked
/// against: a QR code requested meanwhile replaced it) and 2FA is still off. `None` otherwise.
pub async fn enable_otp<C: Db>(
    c: &C,
    id: i64,
    sealed: &str,
) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "UPDATE users SET otp = true, updated_at = now()
         WHERE id = $1 AND NOT otp AND otp_secret_encrypted = $2 RETURNING {COLUMNS}"
    );
    Ok(query_opt(c, &sql, &[&id, &sealed])
        .await?
        .as_ref()
        .map(UserRow::from_row))
}

/// Turns 2FA off and forgets the secret (turning it on again starts from a new QR code);
/// `None` when 2FA was already off.
pub async fn disable_otp<C: Db>(c: &C, id: i64) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "UPDATE users SET otp = false, otp_secret_encrypted = NULL, updated_at = now()
         WHERE id = $1 AND otp RETURNING {COLUMNS}"
    );
    Ok(query_opt(c, &sql, &[&id])
        .await?
        .as_ref()
        .map(UserRow::from_row))
}

/// A profile as written: the personal fields sealed by the caller.
#[derive(Debug, Clone, Default)]
pub struct ProfileWrite {
    pub first_name_encrypted: Option<String>,
    pub last_name_encrypted: Option<String>,
    pub dob_encrypted: Option<String>,
    pub address_encrypted: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub metadata: Option<String>,
}

const PROFILE_COLUMNS: &str = "id, first_name_encrypted, last_name_encrypted, dob_encrypted, \
     address_encrypted, postcode, city, country, state, metadata, created_at, updated_at, \
     applicant_id, author";

fn profile_from(r: &Row) -> ProfileRow {
    ProfileRow {
        id: r.get(0),
        first_name_encrypted: r.get(1),
        last_name_encrypted: r.get(2),
        dob_encrypted: r.get(3),
        address_encrypted: r.get(4),
        postcode: r.get(5),
        city: r.get(6),
        country: r.get(7),
        state: r.get(8),
        metadata: r.get(9),
        created_at: r.get(10),
        updated_at: r.get(11),
        applicant_id: r.get(12),
        author: r.get(13),
    }
}

/// The user's profile `id`.
pub async fn profile_of<C: Db>(
    c: &C,
    user_id: i64,
    id: i64,
) -> Result<Option<ProfileRow>, StoreError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1 AND user_id = $2");
    Ok(query_opt(c, &sql, &[&id, &user_id])
        .await?
        .as_ref()
        .map(profile_from))
}

/// The KYC provider's applicant for the user: the one of its latest profile that has one.
pub async fn applicant_id<C: Db>(c: &C, user_id: i64) -> Result<Option<String>, StoreError> {
    Ok(query_opt(
        c,
        "SELECT applicant_id FROM profiles WHERE user_id = $1 AND applicant_id IS NOT NULL
         ORDER BY id DESC LIMIT 1",
        &[&user_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Records the KYC provider's applicant for the profile `id`.
pub async fn set_applicant_id<C: Db>(c: &C, id: i64, applicant_id: &str) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE profiles SET applicant_id = $2, updated_at = now() WHERE id = $1",
        &[&id, &applicant_id],
    )
    .await?;
    Ok(())
}

/// Sets the state of the profile `id` (the KYC provider refused it).
pub async fn set_profile_state<C: Db>(c: &C, id: i64, state: &str) -> Result<(), StoreError> {
    execute(
        c,
        "UPDATE profiles SET state = $2, updated_at = now() WHERE id = $1",
        &[&id, &state],
    )
    .await?;
    Ok(())
}

/// The user whose profile holds the applicant `applicant_id`.
pub async fn user_id_by_applicant<C: Db>(
    c: &C,
    applicant_id: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(query_opt(
        c,
        "SELECT user_id FROM profiles WHERE applicant_id = $1 ORDER BY id DESC LIMIT 1",
        &[&applicant_id],
    )
    .await?
    .map(|r| r.get(0)))
}

/// Sets the state of the user's latest submitted-or-decided profile with the applicant
/// `applicant_id` (a drafted one was never sent); `None` when there is none.
pub async fn decide_profile<C: Db>(
    c: &C,
    user_id: i64,
    applicant_id: &str,
    state: &str,
) -> Result<Option<ProfileRow>, StoreError> {
    let sql = format!(
        "UPDATE profiles SET state = $3, updated_at = now()
         WHERE id = (SELECT id FROM profiles WHERE user_id = $1 AND applicant_id = $2
                     AND state <> 'drafted' ORDER BY id DESC LIMIT 1)
         RETURNING {PROFILE_COLUMNS}"
    );
    Ok(query_opt(c, &sql, &[&user_id, &applicant_id, &state])
        .await?
        .as_ref()
        .map(profile_from))
}

/// Whether the user has a profile still in the works (drafted or submitted): Barong allows one.
/// Whether the user has a drafted or submitted profile. Locks the user's row for the rest of
/// the transaction first, so that two concurrent creations cannot both see none and both
/// insert one.
pub async fn has_open_profile<C: Db>(c: &C, user_id: i64) -> Result<bool, StoreError> {
    query_opt(
        c,
        "SELECT 1 FROM users WHERE id = $1 FOR UPDATE",
        &[&user_id],
    )
    .await?;
    Ok(query_opt(
        c,
        "SELECT 1 FROM profiles WHERE user_id = $1 AND state IN ('drafted', 'submitted') LIMIT 1",
        &[&user_id],
    )
    .await?
    .is_some())
}

/// A new profile of the user in `state`, written by `author` (`user`, or a staff uid).
pub async fn insert_profile<C: Db>(
    c: &C,
    user_id: i64,
    author: &str,
    state: &str,
    fields: &ProfileWrite,
) -> Result<ProfileRow, StoreError> {
    let sql = format!(
        "INSERT INTO profiles (user_id, author, first_name_encrypted, last_name_encrypted,
             dob_encrypted, address_encrypted, postcode, city, country, metadata, state)
         VALUES ($1, $11, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {PROFILE_COLUMNS}"
    );
    let row = super::query_one(
        c,
        &sql,
        &[
            &user_id,
            &fields.first_name_encrypted,
            &fields.last_name_encrypted,
            &fields.dob_encrypted,
            &fields.address_encrypted,
            &fields.postcode,
            &fields.city,
            &fields.country,
            &fields.metadata,
            &state,
            &author,
        ],
    )
    .await?;
    Ok(profile_from(&row))
}

/// Updates the user's latest profile in state `from` (`drafted` for the user's own edits,
/// `submitted` for staff's): the given fields replace the stored ones, others stay; `None`
/// when the user has no such profile.
pub async fn update_open_profile<C: Db>(
    c: &C,
    user_id: i64,
    from: &str,
    state: &str,
    fields: &ProfileWrite,
) -> Result<Option<ProfileRow>, StoreError> {
    let sql = format!(
        "UPDATE profiles SET
             first_name_encrypted = COALESCE($2, first_name_encrypted),
             last_name_encrypted = COALESCE($3, last_name_encrypted),
             dob_encrypted = COALESCE($4, dob_encrypted),
             address_encrypted = COALESCE($5, address_encrypted),
             postcode = COALESCE($6, postcode), city = COALESCE($7, city),
             country = COALESCE($8, country), metadata = COALESCE($9, metadata),
             state = $10, updated_at = now()
         WHERE id = (SELECT id FROM profiles WHERE user_id = $1 AND state = $11
                     ORDER BY id DESC LIMIT 1)
         RETURNING {PROFILE_COLUMNS}"
    );
    Ok(query_opt(
        c,
        &sql,
        &[
            &user_id,
            &fields.first_name_encrypted,
            &fields.last_name_encrypted,
            &fields.dob_encrypted,
            &fields.address_encrypted,
            &fields.postcode,
            &fields.city,
            &fields.country,
            &fields.metadata,
            &state,
            &from,
        ],
    )
    .await?
    .as_ref()
    .map(profile_from))
}

/// Sets the user's email (checked by the caller); `Conflict` when another account has it.
pub async fn set_email<C: Db>(c: &C, id: i64, email: &str) -> Result<UserRow, StoreError> {
    let sql = format!(
        "UPDATE users SET email = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}"
    );
    Ok(UserRow::from_row(
        &query_one(c, &sql, &[&id, &email]).await?,
    ))
}

/// Sets the user's role, answering the user as written.
pub async fn update_role<C: Db>(c: &C, id: i64, role: &str) -> Result<UserRow, StoreError> {
    let sql =
        format!("UPDATE users SET role = $2, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}");
    Ok(UserRow::from_row(&query_one(c, &sql, &[&id, &role]).await?))
}

/// Deletes the user's data storage `title` (compared without regard to case, as titles are
/// unique); the row deleted, `None` when there was none.
pub async fn delete_data_storage<C: Db>(
    c: &C,
    user_id: i64,
    title: &str,
) -> Result<Option<DataStorageRow>, StoreError> {
    Ok(query_opt(
        c,
        "DELETE FROM data_storages WHERE user_id = $1 AND lower(title) = lower($2)
         RETURNING title, data, created_at, updated_at",
        &[&user_id, &title],
    )
    .await?
    .map(|row| DataStorageRow {
        title: row.get(0),
        data: row.get(1),
        created_at: row.get(2),
        updated_at: row.get(3),
    }))
}

/// Sets the state of the user's latest profile that left the draft (a reviewer's decision
/// through the `profile` label); `None` when the user has none.
pub async fn decide_latest_profile<C: Db>(
    c: &C,
    user_id: i64,
    state: &str,
) -> Result<Option<ProfileRow>, StoreError> {
    let sql = format!(
        "UPDATE profiles SET state = $2, updated_at = now()
         WHERE id = (SELECT id FROM profiles WHERE user_id = $1 AND state <> 'drafted'
                     ORDER BY id DESC LIMIT 1)
         RETURNING {PROFILE_COLUMNS}"
    );
    Ok(query_opt(c, &sql, &[&user_id, &state])
        .await?
        .as_ref()
        .map(profile_from))
}

/// One page of every profile, oldest first, each with its user's uid; and the total.
pub async fn profiles_page<C: Db>(
    c: &C,
    limit: i64,
    offset: i64,
) -> Result<(Vec<(ProfileRow, String)>, i64), StoreError> {
    let columns = PROFILE_COLUMNS
        .split(", ")
        .map(|c| format!("p.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {columns}, u.uid FROM profiles p JOIN users u ON u.id = p.user_id
         ORDER BY p.id LIMIT $1 OFFSET $2"
    );
    let rows = super::query(c, &sql, &[&limit, &offset]).await?;
    let total: i64 = query_one(c, "SELECT count(*) FROM profiles", &[])
        .await?
        .get(0);
    Ok((
        rows.iter().map(|r| (profile_from(r), r.get(14))).collect(),
        total,
    ))
}
