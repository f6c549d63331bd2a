-- The local caller index (`crate::store::phonebook`): per account, what
-- Kommo's caller-ID rule reads, so a ringing call is identified from the
-- database at no Kommo request. Same rules as 0001: SQL both SQLite and
-- PostgreSQL accept, BIGINT for ids and times, flags as BIGINT 0/1.
--
-- Kommo's own times (`created_at`, `updated_at`, `deleted_at`) are Unix
-- SECONDS, as Kommo writes them; our bookkeeping times are milliseconds.
-- `kind` is the REST collection name (`contacts`, `companies`, `leads`,
-- `customers`).
--
-- Upserts are order-free: a row is replaced only by data with a newer or
-- equal `updated_at`. A deletion keeps the row with `deleted_at` set (a
-- tombstone), so a listing page read before the deletion cannot bring the
-- record back; only a restore, or data changed after the deletion, clears it.

-- Contacts and companies.
CREATE TABLE phonebook_holders (
    account_id BIGINT NOT NULL,
    kind       TEXT   NOT NULL,
    id         BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    deleted_at BIGINT NULL,
    PRIMARY KEY (account_id, kind, id)
);

-- The caller-ID keys (last 8 digits) of each holder's numbers.
CREATE TABLE phonebook_numbers (
    account_id  BIGINT NOT NULL,
    number_key  TEXT   NOT NULL,
    holder_kind TEXT   NOT NULL,
    holder_id   BIGINT NOT NULL,
    PRIMARY KEY (account_id, number_key, holder_kind, holder_id)
);
CREATE INDEX phonebook_numbers_of_holder ON phonebook_numbers (account_id, holder_kind, holder_id);

-- Leads and customers. Whether one is active follows from `kind` and
-- `status_id` (`crate::store::phonebook::deal_state`), decided on read.
CREATE TABLE phonebook_deals (
    account_id          BIGINT NOT NULL,
    kind                TEXT   NOT NULL,
    id                  BIGINT NOT NULL,
    name                TEXT   NOT NULL,
    status_id           BIGINT NOT NULL,
    pipeline_id         BIGINT NOT NULL,
    responsible_user_id BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    deleted_at          BIGINT NULL,
    PRIMARY KEY (account_id, kind, id)
);

-- Which deal is linked to which holder.
CREATE TABLE phonebook_links (
    account_id  BIGINT NOT NULL,
    holder_kind TEXT   NOT NULL,
    holder_id   BIGINT NOT NULL,
    deal_kind   TEXT   NOT NULL,
    deal_id     BIGINT NOT NULL,
    PRIMARY KEY (account_id, holder_kind, holder_id, deal_kind, deal_id)
);
CREATE INDEX phonebook_links_of_deal ON phonebook_links (account_id, deal_kind, deal_id);

-- Where each account's index stands:
-- - `hook_secret_hash`: SHA-256 (hex) of the secret path segment of the
--   account's Kommo webhook; `hook_destination_sealed`: the destination URL
--   (which contains the secret) sealed (`crate::secrets`), for subscribing;
-- - `phase`: `subscribe` → `listing` → `ready`; `kind`/`page`: the listing's
--   cursor, stored after every page so a restart resumes there;
-- - `ready`: 1 once the first sync finished (caller ID then reads the index);
-- - `reconciled_from`: the Kommo `updated_at` (seconds) the next
--   reconciliation lists changes from.
CREATE TABLE phonebook_sync (
    account_id         BIGINT NOT NULL PRIMARY KEY,
    hook_secret_hash   TEXT   NOT NULL,
    hook_destination_sealed TEXT   NOT NULL,
    phase              TEXT   NOT NULL,
    kind               TEXT   NOT NULL,
    page               BIGINT NOT NULL,
    ready              BIGINT NOT NULL DEFAULT 0,
    reconciled_from    BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
