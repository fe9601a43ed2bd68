//! Sign-in through the university's identity provider: OpenID Connect, authorization code flow
//! with PKCE, `state` and `nonce` (the `openidconnect` crate). The provider is configured by its
//! issuer URL, a client id and secret; its metadata is discovered at start-up. The person is the
//! register's person with the ID token's e-mail address; someone the register does not know is
//! told so and not signed in.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use flowgate_core::Email;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use serde::Deserialize;

use super::{SESSION_HOURS, session_cookie};
use crate::AppState;
use crate::api::error::ApiError;

/// How the server reaches the identity provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The issuer URL, e.g. `https://login.uni.example/realms/staff`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: this server's `/sign-in/callback`.
    pub redirect_url: String,
}

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A discovered identity provider.
#[derive(Debug)]
pub struct Oidc {
    metadata: CoreProviderMetadata,
    settings: OidcSettings,
    http: openidconnect::reqwest::Client,
}

impl Oidc {
    /// Reads the provider's metadata (`/.well-known/openid-configuration`).
    pub async fn discover(settings: OidcSettings) -> Result<Oidc, String> {
        // No redirects: a provider's endpoints are where its metadata says (SSRF hardening).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| format!("--oidc-issuer: '{}' {e}", settings.issuer))?;
        RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| format!("the sign-in callback '{}' {e}", settings.redirect_url))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the identity provider's metadata at {}: {e}",
                    settings.issuer
                )
            })?;
        Ok(Oidc {
            metadata,
            settings,
            http,
        })
    }

    fn client(&self) -> Result<Client, ApiError> {
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }
}

fn oidc(state: &AppState) -> Result<&Oidc, ApiError> {
    state
        .oidc
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("single sign-on is not configured on this server".into()))
}

/// Sends the browser to the identity provider.
pub(super) async fn begin(State(state): State<AppState>) -> Response {
    let result: Result<Response, ApiError> = async {
        let oidc = oidc(&state)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = oidc
            .client()?
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        state
            .store
            .begin_oidc(csrf.secret(), verifier.secret(), nonce.secret(), Utc::now())
            .await?;
        Ok(Redirect::to(url.as_str()).into_response())
    }
    .await;
    result.unwrap_or_else(super::pages::failure)
}

#[derive(Debug, Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The provider sends the browser back here with a code: exchanged (with the PKCE verifier),
/// the ID token checked (signature, issuer, audience, expiry, nonce), the person found by e-mail.
pub(super) async fn callback(State(state): State<AppState>, Query(q): Query<Callback>) -> Response {
    let result: Result<Response, ApiError> = async {
        if let Some(e) = q.error {
            return Err(ApiError::Forbidden(format!(
                "the identity provider did not sign you in: {e}{}",
                q.error_description
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )));
        }
        let (Some(code), Some(st)) = (q.code, q.state) else {
            return Err(ApiError::invalid(
                "code",
                "the identity provider sent no code and state",
            ));
        };
        let Some((verifier, nonce)) = state.store.finish_oidc(&st, Utc::now()).await? else {
            return Err(ApiError::Forbidden(
                "this sign-in was not started here, was already used, or took over ten minutes: sign in again".into(),
            ));
        };
        let oidc = oidc(&state)?;
        let client = oidc.client()?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| ApiError::Internal(format!("OIDC token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier))
            .request_async(&oidc.http)
            .await
            .map_err(|e| ApiError::Forbidden(format!("the identity provider refused the code: {e}")))?;
        let id_token = tokens.id_token().ok_or_else(|| {
            ApiError::Forbidden("the identity provider sent no ID token".into())
        })?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce))
            .map_err(|e| ApiError::Forbidden(format!("the ID token does not check out: {e}")))?;
        let email = claims
            .email()
            .map(|e| e.as_str().to_owned())
            .ok_or_else(|| {
                ApiError::Forbidden(
                    "the identity provider gave no e-mail address, which is how Flowgate knows people".into(),
                )
            })?;
        let person = Email::parse(&email).map_err(|e| ApiError::Forbidden(e.to_string()))?;
        if state.register.read().await.person(person.as_str()).is_none() {
            return Err(ApiError::Forbidden(format!(
                "{person} is not in the register: ask the Data Product Team to add you"
            )));
        }
        let (token, _) = state
            .store
            .create_session(&person, Utc::now(), chrono::Duration::hours(SESSION_HOURS))
            .await?;
        let mut r = Redirect::to("/").into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            session_cookie(&token, SESSION_HOURS * 3600),
        );
        Ok(r)
    }
    .await;
    result.unwrap_or_else(super::pages::failure)
}
