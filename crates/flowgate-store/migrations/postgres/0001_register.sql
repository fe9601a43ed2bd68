-- The Information Asset Register and its audit chain (PostgreSQL).
-- Lists that are sets (roles, administrators) are ';'-joined text in id order; a flow's data items
-- have their own table so that SQL can ask "which flows carry this item".
-- Dates are ISO 8601 text (YYYY-MM-DD), times RFC 3339 text: the same SQL serves both backends.
-- Booleans are BOOLEAN here, INTEGER 0/1 in SQLite.

CREATE TABLE people (
    email            TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('staff', 'student', 'third_party')),
    authorised_until TEXT,
    roles            TEXT NOT NULL DEFAULT ''
);

CREATE TABLE systems (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    description            TEXT,
    kind                   TEXT NOT NULL,
    external               BOOLEAN NOT NULL,
    organisation           TEXT,
    status                 TEXT NOT NULL CHECK (status IN ('proposed', 'active', 'retired')),
    owner                  TEXT REFERENCES people (email),
    administrators         TEXT NOT NULL DEFAULT '',
    dpia_status            TEXT NOT NULL,
    dpia_reference         TEXT,
    dpia_review_due        TEXT,
    architecture_checklist TEXT NOT NULL
);

CREATE TABLE data_items (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    description          TEXT,
    classification       TEXT NOT NULL,
    personal_data        BOOLEAN NOT NULL,
    special_category     BOOLEAN NOT NULL,
    authoritative_system TEXT REFERENCES systems (id)
);

CREATE TABLE flows (
    id             TEXT PRIMARY KEY,
    source         TEXT NOT NULL REFERENCES systems (id),
    target         TEXT NOT NULL REFERENCES systems (id),
    method         TEXT NOT NULL,
    frequency      TEXT,
    status         TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    request        TEXT,
    established_on TEXT
);
CREATE INDEX flows_source ON flows (source);
CREATE INDEX flows_target ON flows (target);

CREATE TABLE flow_data_items (
    flow_id      TEXT NOT NULL REFERENCES flows (id),
    data_item_id TEXT NOT NULL REFERENCES data_items (id),
    PRIMARY KEY (flow_id, data_item_id)
);
CREATE INDEX flow_data_items_item ON flow_data_items (data_item_id);

-- The hash-chained audit log. Appended to in the same transaction as every change.
CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    payload   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);

-- The chain's head. Every writing transaction updates it first: that takes the write lock at
-- once (SQLite) or locks the row (PostgreSQL), so appends are serialised and never interleave.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
