-- Change notices (2.5), the outbox of notifications, webhooks and answer links.
--
-- A notice is kept whole as JSON in `body`, like a request, with the columns lists filter on beside
-- it; `notice_contacts` says whom each affected system's answer is asked of (its IAO and IAAs when
-- the notice was raised), for "notices waiting for me".
CREATE TABLE change_notices (
    id          TEXT PRIMARY KEY,
    number      BIGINT NOT NULL UNIQUE,
    system      TEXT NOT NULL,
    state       TEXT NOT NULL,
    planned_for TEXT NOT NULL,
    raised_by   TEXT NOT NULL,
    reminded_at TEXT,
    version     BIGINT NOT NULL,
    raised_at   TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    body        TEXT NOT NULL
);
CREATE INDEX change_notices_state ON change_notices (state, planned_for);
CREATE INDEX change_notices_system ON change_notices (system, number);

CREATE TABLE notice_contacts (
    notice_id TEXT NOT NULL,
    system    TEXT NOT NULL,
    person    TEXT NOT NULL,
    PRIMARY KEY (notice_id, system, person)
);
CREATE INDEX notice_contacts_person ON notice_contacts (person, notice_id);

-- Which audit events belong to which notice: its history without scanning the log.
CREATE TABLE notice_events (
    notice_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (notice_id, seq)
);

-- Every message is written here in the same transaction as the event that causes it, and sent by
-- a worker afterwards. The id is the idempotency key: the event's sequence number, the channel
-- and the recipient, so one event can never queue the same message twice; it travels with the
-- message (Message-ID, Flowgate-Idempotency-Key) so a receiver can tell a resend.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    event_seq       BIGINT NOT NULL,
    channel         TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient       TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    last_error      TEXT,
    delivered_at    TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created_at, id);

-- Webhooks registered by an administrator, for a person or for a system. The secret signs each
-- delivery (HMAC-SHA256), so it is kept as it is: the receiver holds the same one.
CREATE TABLE webhooks (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    person      TEXT,
    system      TEXT,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    disabled_at TEXT,
    CHECK ((person IS NULL) <> (system IS NULL))
);

-- The links in a change notice's e-mail that let an IAO or IAA answer for their system without
-- signing in: an unguessable token, stored as its SHA-256, good for one person, one notice and one
-- system while the notice is open.
CREATE TABLE answer_links (
    token_sha256 TEXT PRIMARY KEY,
    notice_id    TEXT NOT NULL,
    system       TEXT NOT NULL,
    person       TEXT NOT NULL,
    created_at   TEXT NOT NULL
);
