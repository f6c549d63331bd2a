-- CRM sync, part 1: what the backend learns from and writes into Kommo.
-- Same rules as 0001: SQL both SQLite and PostgreSQL accept, Unix
-- milliseconds in BIGINT columns (except where a column says seconds or
-- microseconds), flags as BIGINT 0/1.

-- The CRM side of a call (`crate::store::crm`):
-- - `caller`: caller ID's answer, `callcard_calls::feed::CallerId` as JSON;
-- - `note_entity_kind/id`, `note_id`: where the call note lives once written
--   (may differ from `entity`, the record the widget shows, only in between:
--   the manager moved the call and the note is being moved);
-- - `note_params`: the call note's params as last written (JSON), so a late
--   update can tell whether Kommo needs a PATCH at all;
-- - `log_intent_at`: set before any non-idempotent create is sent, so a rerun
--   knows it must look for what the previous run may have created;
-- - `logged_at`: when the call was first logged in Kommo;
-- - `has_result`: the manager saved a call result.
ALTER TABLE calls ADD COLUMN caller TEXT NULL;
ALTER TABLE calls ADD COLUMN note_entity_kind TEXT NULL;
ALTER TABLE calls ADD COLUMN note_entity_id BIGINT NULL;
ALTER TABLE calls ADD COLUMN note_id BIGINT NULL;
ALTER TABLE calls ADD COLUMN note_params TEXT NULL;
ALTER TABLE calls ADD COLUMN log_intent_at BIGINT NULL;
ALTER TABLE calls ADD COLUMN logged_at BIGINT NULL;
ALTER TABLE calls ADD COLUMN has_result BIGINT NOT NULL DEFAULT 0;

-- Per-account CRM settings:
-- - `log_settings`: which call-note sections are written
--   (`callcard_calls::note::LogSettings` as JSON; NULL = all on);
-- - `kommo_base_url`: where the account's Kommo API lives, learned at
--   installation (`https://{subdomain}.kommo.com`); NULL = the origin.
-- `webhook_secret` itself becomes ciphertext (`enc:v1:...`, see
-- `crate::secrets`): the backend rewrites plaintext values at start.
ALTER TABLE accounts ADD COLUMN log_settings TEXT NULL;
ALTER TABLE accounts ADD COLUMN kommo_base_url TEXT NULL;

-- OAuth tokens per account, encrypted (`crate::secrets`). `generation`
-- grows with every new pair; the refresh lease (`refresh_owner`,
-- `refresh_until`) is claimed with a conditional UPDATE so exactly one
-- worker of one instance refreshes at a time. `state` is `authorized` or
-- `needs_reauthorization` (then `state_reason` says why).
CREATE TABLE kommo_tokens (
    account_id      BIGINT NOT NULL PRIMARY KEY,
    access_token    TEXT   NOT NULL,
    refresh_token   TEXT   NOT NULL,
    expires_at      BIGINT NOT NULL, -- Unix seconds
    obtained_at     BIGINT NOT NULL, -- Unix seconds
    generation      BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    state_reason    TEXT   NULL,
    refresh_owner   TEXT   NULL,
    refresh_until   BIGINT NULL,
    updated_at      BIGINT NOT NULL
);

-- The shared request budget (GCRA): the account's theoretical arrival time
-- in Unix microseconds of the database's clock.
CREATE TABLE kommo_budget (
    account_id BIGINT NOT NULL PRIMARY KEY,
    tat        BIGINT NOT NULL
);
