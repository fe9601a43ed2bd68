//! Web sessions: who a browser is signed in as. The cookie holds a random token; the table holds
//! its SHA-256, the person, the CSRF token of the session's forms and when it expires.

use chrono::{DateTime, Duration, Utc};
use flowgate_core::Email;
use flowgate_core::audit::format_time;
use sqlx::Row;

use crate::secret::{random_hex, sha256_hex};
use crate::{Store, StoreError};

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub person: Email,
    /// Every state-changing form of this session carries it.
    pub csrf: String,
}

impl Store {
    /// Signs `person` in for `ttl`; returns the cookie's token and the session.
    pub async fn create_session(
        &self,
        person: &Email,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(String, Session), StoreError> {
        let token = random_hex(32)?;
        let csrf = random_hex(16)?;
        // Expired sessions go as new ones come: the table stays the size of those signed in.
        sqlx::query("DELETE FROM web_sessions WHERE expires_at < $1")
            .bind(format_time(&now))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO web_sessions (token_sha256, person, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(sha256_hex(&token))
        .bind(person.as_str())
        .bind(&csrf)
        .bind(format_time(&now))
        .bind(format_time(&(now + ttl)))
        .execute(&self.pool)
        .await?;
        Ok((
            token,
            Session {
                person: person.clone(),
                csrf,
            },
        ))
    }

    /// The session a cookie's token stands for, if it has not expired.
    pub async fn session(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        let row = sqlx::query(
            "SELECT person, csrf FROM web_sessions WHERE token_sha256 = $1 AND expires_at > $2",
        )
        .bind(sha256_hex(token))
        .bind(format_time(&now))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let person: String = row.try_get("person")?;
        Ok(Email::parse(&person).ok().map(|person| Session {
            person,
            csrf: row.try_get("csrf").unwrap_or_default(),
        }))
    }

    /// Signs a session out.
    pub async fn delete_session(&self, token: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE token_sha256 = $1")
            .bind(sha256_hex(token))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Store {
    /// Remembers a sign-in under way: `state` (stored as its SHA-256) leads back to the PKCE
    /// verifier and the nonce.
    pub async fn begin_oidc(
        &self,
        state: &str,
        pkce_verifier: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM oidc_pending WHERE created_at < $1")
            .bind(format_time(&(now - Duration::minutes(10))))
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO oidc_pending (state_sha256, pkce_verifier, nonce, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(sha256_hex(state))
        .bind(pkce_verifier)
        .bind(nonce)
        .bind(format_time(&now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes (once) the verifier and nonce of the sign-in `state` began, if it is under ten
    /// minutes old.
    pub async fn finish_oidc(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(String, String)>, StoreError> {
        let key = sha256_hex(state);
        let row = sqlx::query(
            "DELETE FROM oidc_pending WHERE state_sha256 = $1 AND created_at >= $2 RETURNING pkce_verifier, nonce",
        )
        .bind(&key)
        .bind(format_time(&(now - Duration::minutes(10))))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("pkce_verifier")?, r.try_get("nonce")?)))
            .transpose()
    }
}
