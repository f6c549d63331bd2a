//! Configuration faults are the operator's to fix, never the data's to pay
//! for: an instance whose `CALLCARD_SECRET_KEY` is not the database's
//! refuses to start, naming the setting; and a sealed credential that does
//! not open makes its job wait, uncounted, instead of dying.

mod common;
mod sandboxed;

use callcard_backend::secrets::{token_context, Secrets};
use callcard_backend::{Backend, JobState};
use common::Db;
use sandboxed::Env;
use std::collections::BTreeSet;
use std::time::Duration;

on_both_stores!(a_key_that_is_not_the_databases_refuses_to_start, a_credential_that_does_not_open_never_kills_its_job);

async fn a_key_that_is_not_the_databases_refuses_to_start(db: Db) {
    let first = Backend::start(common::config(&db)).await.expect("the first instance starts");
    let account = common::Account::random();
    account.provision(&first, &[(11, "101")]).await;
    first.shutdown().await;

    let mut other_key = common::config(&db);
    other_key.secret_key = Some(Secrets::random_key_text());
    let Err(refused) = Backend::start(other_key).await else { panic!("an instance with another key must not start") };
    let message = format!("{refused:#}");
    assert!(message.contains("CALLCARD_SECRET_KEY"), "the refusal must name the setting: {message}");

    // The database is untouched: its own key still starts and opens it.
    let again = Backend::start(common::config(&db)).await.expect("the database's key starts");
    assert_eq!(again.store().account(account.id).await.unwrap().unwrap().webhook_secret, account.secret);
    again.shutdown().await;
}

async fn a_credential_that_does_not_open_never_kills_its_job(db: Db) {
    let env = Env::start(db, |c| {
        c.queue.workers = 1;
        c.queue.max_attempts = 2;
        c.queue.reauthorization_wait = Duration::from_millis(50);
        c.queue.poll_interval = Duration::from_millis(20);
    })
    .await;
    let store = env.backend.backend.store().clone();
    let account = env.account.id;
    let good = store.tokens(account).await.unwrap().expect("installed").tokens;
    // The access token sealed under another key: what a second instance with
    // a wrong key, or a restored backup of another deployment, would leave.
    let foreign = Secrets::from_key_text(&Secrets::random_key_text()).unwrap();
    sqlx::query("UPDATE kommo_tokens SET access_token = $1 WHERE account_id = $2")
        .bind(foreign.seal(&good.access_token, &token_context("access", account)))
        .bind(account as i64)
        .execute(store.pool())
        .await
        .unwrap();

    env.pbx("ended", "c-fault", "+15550100999", "101").await;
    // Watch the job come back again and again, far more often than its two
    // attempts allow, without ever being counted or buried.
    let mut rounds = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rounds.len() < 6 {
        assert!(tokio::time::Instant::now() < deadline, "the job did not come back: {rounds:?}");
        for job in store.jobs(None, Some((account, "c-fault")), 10).await.unwrap() {
            assert_ne!(job.state, JobState::Dead, "a configuration fault killed the job: {job:?}");
            assert!(job.attempts <= 1, "a configuration fault counted as an attempt: {job:?}");
            if job.state == JobState::Pending {
                if let Some(error) = &job.last_error {
                    assert!(error.contains("CALLCARD_SECRET_KEY"), "{error}");
                    rounds.insert(job.updated_at);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The operator fixes the credential: the job completes.
    store.put_tokens(account, &good).await.unwrap();
    env.call_until("c-fault", "the call logged after the fix", |c| c.sync_state == callcard_backend::SyncState::Synced)
        .await;
    env.stop().await;
}
