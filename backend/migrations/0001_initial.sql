-- The whole schema is written in the SQL both SQLite and PostgreSQL accept
-- (BIGINT, TEXT, composite primary keys), so one migration directory serves
-- both stores. Times are Unix milliseconds in BIGINT columns.

-- Accounts provisioned into the backend: who may post webhooks (by their
-- secret), which origin their widget runs on (CORS, JWT issuer), and the
-- extension-to-user mapping from the widget's `users` setting (JSON).
CREATE TABLE accounts (
    account_id      BIGINT NOT NULL PRIMARY KEY,
    origin          TEXT   NOT NULL,
    webhook_secret  TEXT   NOT NULL,
    extensions      TEXT   NOT NULL DEFAULT '{}',
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX accounts_by_origin ON accounts (origin);

-- Every call, folded from its PBX events (`callcard_calls::Call`), plus what
-- the CRM side learns about it later.
CREATE TABLE calls (
    account_id          BIGINT NOT NULL,
    call_id             TEXT   NOT NULL,
    direction           TEXT   NOT NULL,
    external_number     TEXT   NOT NULL,
    extension           TEXT   NOT NULL,
    kommo_user_id       BIGINT NULL,
    status              TEXT   NOT NULL,
    started_at          BIGINT NULL,
    ringing_at          BIGINT NULL,
    answered_at         BIGINT NULL,
    ended_at            BIGINT NULL,
    duration            BIGINT NULL,
    outcome             TEXT   NULL,
    recording_url       TEXT   NULL,
    recording_at        BIGINT NULL,
    entity_kind         TEXT   NULL,
    entity_id           BIGINT NULL,
    unsorted_uid        TEXT   NULL,
    responsible_user_id BIGINT NULL,
    manager_note        TEXT   NULL,
    manager_result      TEXT   NULL,
    sync_state          TEXT   NOT NULL DEFAULT 'pending',
    version             BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (account_id, call_id)
);
CREATE INDEX calls_by_user ON calls (account_id, kommo_user_id, updated_at);

-- The last feed offset handed out per user: the row lock on it serialises
-- offset allocation, so offsets commit in order.
CREATE TABLE feed_offsets (
    account_id  BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    last_offset BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);

-- The bounded history of feed events, replayed to reconnecting widgets.
CREATE TABLE feed_events (
    account_id  BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    feed_offset BIGINT NOT NULL,
    call_id     TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id, feed_offset)
);
CREATE INDEX feed_events_by_age ON feed_events (created_at);

-- One-time token ids already used, kept until the token expires, so a
-- replayed `X-Auth-Token` is refused by every instance.
CREATE TABLE used_jtis (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Feed tickets, stored as SHA-256 of the token so a database leak does not
-- leak live credentials.
CREATE TABLE feed_tickets (
    ticket_hash TEXT   NOT NULL PRIMARY KEY,
    account_id  BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX feed_tickets_by_expiry ON feed_tickets (expires_at);
