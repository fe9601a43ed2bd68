-- Web sessions: a random token in an HttpOnly cookie, stored here as its SHA-256, with the
-- person it signs in and the CSRF token every form of that session must carry.
CREATE TABLE web_sessions (
    token_sha256 TEXT PRIMARY KEY,
    person       TEXT NOT NULL,
    csrf         TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

-- Sign-ins through OpenID Connect under way: the state sent to the provider (as its SHA-256) with
-- the PKCE verifier and the nonce the answer must match, for ten minutes.
CREATE TABLE oidc_pending (
    state_sha256 TEXT PRIMARY KEY,
    pkce_verifier TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
