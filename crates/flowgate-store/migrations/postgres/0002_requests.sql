-- Data sharing / integration requests (2.1-2.4) and API tokens.
--
-- A request is kept whole as JSON in `body` (what the workflow decides on), with the columns that
-- lists filter on beside it. `version` moves by one with every transition: an update names the
-- version it read, so two approvers acting at once cannot both win.

CREATE TABLE requests (
    id         TEXT PRIMARY KEY,
    number     BIGINT NOT NULL UNIQUE,
    requester  TEXT NOT NULL,
    source     TEXT NOT NULL,
    target     TEXT NOT NULL,
    state      TEXT NOT NULL,
    version    BIGINT NOT NULL,
    raised_at  TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX requests_state ON requests (state, number);
CREATE INDEX requests_requester ON requests (requester, number);
CREATE INDEX requests_source ON requests (source);
CREATE INDEX requests_target ON requests (target);

-- Tokens for the API, stored as the SHA-256 of their secret part: a token is shown once, when it
-- is created, and cannot be read back.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY,
    person     TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    expires_on TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_person ON api_tokens (person);
