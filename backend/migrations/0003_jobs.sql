-- The durable job queue (`crate::queue`, `crate::store::jobs`).
--
-- `state`: pending → running → done, or back to pending (retry with
-- backoff), or dead (parked for an operator). A running job holds a lease
-- (`locked_by`, `locked_until`); a worker that dies leaves the lease to
-- expire, and the job is claimed again.
-- `id` is a random positive 63-bit number drawn by the backend: the
-- dialects disagree on auto-increment syntax, and a counter row would
-- serialise every intake transaction that enqueues.
CREATE TABLE jobs (
    id           BIGINT NOT NULL PRIMARY KEY,
    account_id   BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    call_id      TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    run_at       BIGINT NOT NULL,
    locked_by    TEXT   NULL,
    locked_until BIGINT NULL,
    last_error   TEXT   NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
-- At most one pending job per (account, kind, call): enqueueing again is a
-- no-op (`ON CONFLICT DO NOTHING` against this index).
CREATE UNIQUE INDEX jobs_one_pending ON jobs (account_id, kind, call_id) WHERE state = 'pending';
CREATE INDEX jobs_due ON jobs (state, run_at);
CREATE INDEX jobs_by_call ON jobs (account_id, call_id, state);
