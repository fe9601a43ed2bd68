-- Which audit events belong to which request, written in the same transaction as the event: a
-- request's history is then read through this index instead of scanning the whole log.
CREATE TABLE request_events (
    request_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
