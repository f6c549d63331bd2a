-- The call log as `update-call-log.txt` describes it (`callcard_calls::note`):
-- late transcripts, the manager's subject, and each user's own section
-- switches. Same rules as 0001: SQL both SQLite and PostgreSQL accept,
-- BIGINT for ids and times (Unix milliseconds).

-- The PBX's transcript of a call (`transcript_ready`), the latest report
-- kept (by `occurred_at`, then text, so arrival order never matters). Kept
-- apart from `calls`: it joins the call note, not the call the widget
-- follows, and may be long. `received_at` is when it was first stored: the
-- full-text link's expiry counts from it, so the link (and the note) stay
-- the same on every rewrite.
CREATE TABLE call_transcripts (
    account_id  BIGINT NOT NULL,
    call_id     TEXT   NOT NULL,
    occurred_at BIGINT NOT NULL,
    transcript  TEXT   NOT NULL,
    summary     TEXT   NULL,
    language    TEXT   NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, call_id)
);

-- The subject the manager gave the call in the Call summary (else the
-- note's subject is the machine's "Inbound call from …").
ALTER TABLE calls ADD COLUMN manager_subject TEXT NULL;

-- One user's own section switches (`UserLogSettings` as JSON) over the
-- account's defaults (`accounts.log_settings`).
CREATE TABLE user_log_settings (
    account_id BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    settings   TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
