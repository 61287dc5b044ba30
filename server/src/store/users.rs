//! Users, memberships, organization names and server-wide settings.

use super::Db;

/// The stored password hash of `username`, if the user exists, with their
/// role in `org` (`None`: not a member, or no organization asked), in one
/// statement.
pub async fn hash_and_role(
    db: &Db,
    username: &str,
    org: Option<&str>,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT u.password_hash, m.role FROM users u LEFT JOIN memberships m \
         ON m.organization_id = $2 AND m.username = u.username WHERE u.username = $1",
    )
    .bind(username)
    .bind(org)
    .fetch_optional(&db.pool)
    .await
}

/// Replaces a password hash, only if it is still `old` (a concurrent import wins).
pub async fn rehash(db: &Db, username: &str, old: &str, new: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.write().await?;
    let done = sqlx::query(
        "UPDATE users SET password_hash = $1 WHERE username = $2 AND password_hash = $3",
    )
    .bind(new)
    .bind(username)
    .bind(old)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// The role of `username` in `org`, as stored (`None`: not a member).
pub async fn role(db: &Db, org: &str, username: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT role FROM memberships WHERE organization_id = $1 AND username = $2")
            .bind(org)
            .bind(username)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|r| r.0))
}

/// The display name of an organization.
pub async fn organization_name(db: &Db, org: &str) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT name FROM organizations WHERE id = $1")
        .bind(org)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.0))
}

/// A server-wide setting, set to `fresh` by whichever server asks first.
pub async fn setting_or_insert(db: &Db, name: &str, fresh: &str) -> Result<String, sqlx::Error> {
    let mut tx = db.write().await?;
    sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(name)
        .bind(fresh)
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    let (value,): (String,) = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
        .bind(name)
        .fetch_one(&db.pool)
        .await?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Authentication reads the password hash and the role in the request's
    /// organization in one statement: the role is the membership's, and
    /// none for another organization, for none asked, or for a stranger.
    #[tokio::test]
    async fn the_hash_comes_with_the_role_in_the_organization_asked() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let zones = crate::zones::Catalogue::builtin().unwrap();
        let now = vouch_engine::Timestamp::from_unix_seconds(1_780_000_000).unwrap();
        crate::demo::seed(&db, &zones, now).await.unwrap();
        let (hash,): (String,) =
            sqlx::query_as("SELECT password_hash FROM users WHERE username = 'carol'")
                .fetch_one(&db.pool)
                .await
                .unwrap();
        let role = |org| hash_and_role(&db, "carol", org);
        assert_eq!(
            role(Some("acme")).await.unwrap(),
            Some((hash.clone(), Some("member".into())))
        );
        for other in [Some("globex"), Some("nowhere"), Some(""), None] {
            assert_eq!(role(other).await.unwrap(), Some((hash.clone(), None)));
        }
        assert_eq!(
            hash_and_role(&db, "mallory", Some("acme")).await.unwrap(),
            None
        );
        assert_eq!(
            hash_and_role(&db, "dave", Some("globex"))
                .await
                .unwrap()
                .map(|r| r.1),
            Some(Some("owner".into()))
        );
    }
}
