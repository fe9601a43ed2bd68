//! API tokens: `fgt_<id>_<secret>`, shown once when created and kept only as the SHA-256 of the
//! secret. The secret is 256 random bits from the operating system, so a plain hash (no slow
//! KDF) is enough: there is nothing to guess. Creating and revoking a token are audit events;
//! the secret never appears in the log.

use crate::secret::{random_hex, sha256_hex as digest};
use chrono::{DateTime, NaiveDate, Utc};
use flowgate_core::Email;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;

use crate::{Store, StoreError, audit, parse_time};

/// A token as an administrator sees it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub person: Email,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_on: Option<NaiveDate>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Splits `fgt_<id>_<secret>`.
fn parts(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("fgt_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && secret.len() == 64).then_some((id, secret))
}

fn decode(row: &sqlx::any::AnyRow) -> Result<TokenInfo, StoreError> {
    let id: String = row.try_get("id")?;
    let bad = |field: &'static str, v: &str| StoreError::Corrupt {
        table: "api_tokens",
        id: id.clone(),
        field,
        message: format!("'{v}' does not parse"),
    };
    let person: String = row.try_get("person")?;
    let created_at: String = row.try_get("created_at")?;
    let expires_on: Option<String> = row.try_get("expires_on")?;
    let revoked_at: Option<String> = row.try_get("revoked_at")?;
    Ok(TokenInfo {
        person: Email::parse(&person).map_err(|_| bad("person", &person))?,
        created_at: parse_time(&created_at).ok_or_else(|| bad("created_at", &created_at))?,
        created_by: row.try_get("created_by")?,
        expires_on: expires_on
            .map(|d| d.parse().map_err(|_| bad("expires_on", &d)))
            .transpose()?,
        revoked_at: revoked_at
            .map(|t| parse_time(&t).ok_or_else(|| bad("revoked_at", &t)))
            .transpose()?,
        id,
    })
}

impl Store {
    /// Creates a token for `person`, returning it (the only time it is shown) and its record.
    pub async fn create_token(
        &self,
        person: &Email,
        expires_on: Option<NaiveDate>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, TokenInfo), StoreError> {
        let id = random_hex(8)?;
        let secret = random_hex(32)?;
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let known = sqlx::query("SELECT email FROM people WHERE email = $1")
            .bind(person.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_none() {
            return Err(StoreError::Refused {
                kind: "person",
                id: person.to_string(),
                message: "is not in the register: add the person first".into(),
            });
        }
        sqlx::query(
            "INSERT INTO api_tokens (id, person, secret_sha256, created_at, created_by, expires_on) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(person.to_string())
        .bind(digest(&secret))
        .bind(audit::format_time(&now))
        .bind(actor)
        .bind(expires_on.map(|d| d.to_string()))
        .execute(&mut *tx)
        .await?;
        chain.push(
            now,
            actor,
            "token.create",
            json!({"id": id, "person": person, "expires_on": expires_on}),
        );
        chain.close(&mut tx).await?;
        tx.commit().await?;
        let info = TokenInfo {
            id: id.clone(),
            person: person.clone(),
            created_at: now,
            created_by: actor.to_owned(),
            expires_on,
            revoked_at: None,
        };
        Ok((format!("fgt_{id}_{secret}"), info))
    }

    /// Every token, newest first.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, person, created_at, created_by, expires_on, revoked_at FROM api_tokens ORDER BY created_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(decode).collect()
    }

    /// Revokes a token; `false` when there is no such token or it was already revoked.
    pub async fn revoke_token(
        &self,
        id: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (_turn, mut tx, mut chain) = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(audit::format_time(&now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        chain.push(now, actor, "token.revoke", json!({"id": id}));
        chain.close(&mut tx).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The person a bearer token stands for, if it is well formed, known, not revoked and not
    /// expired on `today`.
    pub async fn authenticate(
        &self,
        token: &str,
        today: NaiveDate,
    ) -> Result<Option<Email>, StoreError> {
        let Some((id, secret)) = parts(token) else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT id, person, secret_sha256, created_at, created_by, expires_on, revoked_at FROM api_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("secret_sha256")?;
        // Compared whole; the id lookup already tells an attacker nothing the id did not.
        if stored != digest(secret) {
            return Ok(None);
        }
        let info = decode(&row)?;
        let live = info.revoked_at.is_none() && info.expires_on.is_none_or(|d| d >= today);
        Ok(live.then_some(info.person))
    }
}
