//! The seed's scenario (call-result.txt), end to end through the host page,
//! the widget, the backend and the Kommo sandbox:
//!
//! 1. a known contact calls (Maria Gonzalez, whose one active lead
//!    "Website redesign" is what caller ID and call logging suggest);
//! 2. the call ends: the backend logs it on the suggested lead and the
//!    widget opens the Call summary;
//! 3. the manager picks a different lead, adds a note and a task, and saves;
//! 4. the PBX delivers the recording later (the manager is told where it went);
//! 5. and later still the transcript, with its AI summary;
//!
//! and Kommo ends with the note, the task and the recording on the chosen
//! lead, once each, the manager's text and the transcript in the one call
//! note, and nothing left on the suggested one.

use callcard_calls::event::{CallEventKind, Outcome};
use callcard_e2e::{product::call_event, users, Browser, Chromedriver, Product};
use fantoccini::Locator;
use serde_json::Value;
use std::time::{Duration, Instant};

const CALL_ID: &str = "seed-scenario-1";
const MARIA: &str = "+1 830 570 3077";
const SUGGESTED_LEAD: u64 = 5_756_100; // "Website redesign"
const CHOSEN_LEAD_NAME: &str = "Northwind 200 headsets";
const MANAGER_NOTE: &str = "Wants 200 headsets before March";
const TASK_TEXT: &str = "Send the headset quote";
const TRANSCRIPT: &str = "Maria: We need forty headsets.";
const AI_SUMMARY: &str = "Maria wants a quote for headsets.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_managers_result_moves_the_call_to_the_chosen_lead() -> anyhow::Result<()> {
    let product = Product::start().await?;
    let driver = Chromedriver::start().await?;
    let anna = Browser::open(&driver).await?;
    anna.client.goto(&product.page_for(users::ANNA)).await?;
    anna.wait_for("#callcard-root[data-feed=live]", 30).await?;

    // 1. Maria calls Anna, who answers; 2. the call ends after a conversation.
    product.pbx_sends(&call_event(CallEventKind::Ringing, CALL_ID, MARIA, "101")).await?;
    anna.wait_for(".notification-popup[data-type=call]", 10).await?;
    product.pbx_sends(&call_event(CallEventKind::Answered, CALL_ID, MARIA, "101")).await?;
    let mut ended =
        call_event(CallEventKind::Ended { duration: 42, outcome: Outcome::Answered }, CALL_ID, MARIA, "101");
    ended.occurred_at += 42_000;
    product.pbx_sends(&ended).await?;

    // The backend logged the call on the suggested lead before the manager acts.
    let chosen_lead = wait_for_sandbox(&product, 20, |k| {
        let on_suggested = call_notes(k, "leads", SUGGESTED_LEAD);
        let chosen = record_named(k, "leads", CHOSEN_LEAD_NAME).map(|r| r["id"].as_u64().unwrap_or(0));
        (on_suggested.len() == 1).then_some(chosen).flatten()
    })
    .await?;

    // The Call summary opens for Anna's ended call.
    let summary = format!("#callcard-summary[data-call-id='{CALL_ID}']");
    anna.wait_for(&summary, 10).await?;

    // 3. She searches for another lead and picks it…
    let search = anna.wait_for("#callcard-summary-search", 5).await?;
    search.send_keys("Northwind").await?;
    let hit = format!(".callcard-summary-hit[data-entity-type=lead][data-entity-id='{chosen_lead}']");
    anna.wait_for(&hit, 10).await?.click().await?;
    // …writes a note and a follow-up task, and saves.
    anna.wait_for("#callcard-summary-note", 5).await?.send_keys(MANAGER_NOTE).await?;
    anna.wait_for("#callcard-summary-task", 5).await?.click().await?;
    let task_text = anna.wait_for("#callcard-summary-task-text", 5).await?;
    task_text.clear().await?;
    task_text.send_keys(TASK_TEXT).await?;
    anna.wait_for("#callcard-summary-save", 5).await?.click().await?;
    // The modal closes on Save (it lives in Kommo's modal, outside the widget's root).
    let closed = anna
        .client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css("body:not(:has(#callcard-summary))"))
        .await;
    if closed.is_err() {
        let state = anna.client.execute(
            "var d = document.querySelector('#callcard-summary'); \
             var e = document.querySelector('.callcard-summary-error'); \
             return [d && d.getAttribute('data-state'), e && e.textContent, d && d.textContent];",
            vec![],
        );
        anyhow::bail!("the Call summary did not close after Save: {:?}", state.await?);
    }
    // She is told once the result is applied in Kommo.
    let logged = format!(".callcard-message[data-call-id='{CALL_ID}'][data-message-type=success]");
    anna.wait_for(&logged, 30).await?;
    let said = anna.texts(&logged).await?;
    anyhow::ensure!(
        said.iter().any(|t| t.contains(&format!("Logged on {CHOSEN_LEAD_NAME}"))),
        "the manager was told {said:?}"
    );

    // 4. The recording arrives later.
    product
        .pbx_sends(&call_event(
            CallEventKind::RecordingReady {
                recording_url: format!("{}/pbx-simulator/recordings/{CALL_ID}.wav", product.demo.base_url),
            },
            CALL_ID,
            MARIA,
            "101",
        ))
        .await?;

    // Kommo ends with everything on the chosen lead, once, and nothing on the suggested one.
    let kommo = wait_for_sandbox(&product, 30, |k| {
        let notes = call_notes(k, "leads", chosen_lead);
        let has_link = notes.first().and_then(|n| n["params"]["link"].as_str()).is_some_and(|l| l.ends_with(".wav"));
        let tasks = tasks_with_text(k, "leads", chosen_lead, TASK_TEXT);
        (notes.len() == 1 && has_link && tasks == 1 && call_notes(k, "leads", SUGGESTED_LEAD).is_empty())
            .then(|| k.clone())
    })
    .await;
    let kommo = match kommo {
        Ok(k) => k,
        Err(e) => {
            let k = product.demo.sandbox.inspect();
            anyhow::bail!(
                "{e}\nchosen lead: {}\nsuggested lead: {}",
                record(&k, "leads", chosen_lead),
                record(&k, "leads", SUGGESTED_LEAD)
            );
        }
    };
    // Kommo's API cannot delete a note: what stays on the suggested lead is a
    // retired stub that is no longer this call (no uniq, no recording, no task).
    let suggested = record(&kommo, "leads", SUGGESTED_LEAD).to_string();
    assert!(!suggested.contains(".wav"), "no recording on the suggested lead: {suggested}");
    assert!(!suggested.contains(TASK_TEXT), "no task on the suggested lead: {suggested}");
    let note = &call_notes(&kommo, "leads", chosen_lead)[0];
    let text = note.to_string();
    assert!(text.contains(MANAGER_NOTE), "the manager's note is in the call note: {text}");
    assert_eq!(note["params"]["duration"], 42, "the call keeps its duration: {text}");
    // The late update that matters to her is said, once it is applied.
    let attached = ".notification-popup[data-type=message]";
    anna.wait_for(attached, 15).await?;
    let said = anna.texts(attached).await?;
    anyhow::ensure!(said.iter().any(|t| t.contains("Recording attached to Lead")), "the manager was told {said:?}");

    // 5. The transcript arrives after the summary was saved: it joins the
    // same note, beside the manager's text.
    let transcript = callcard_calls::event::TranscriptEvent {
        event: callcard_calls::event::TranscriptEvent::NAME.into(),
        call_id: CALL_ID.into(),
        direction: callcard_calls::Direction::Inbound,
        external_number: MARIA.into(),
        extension: "101".into(),
        occurred_at: callcard_demo::pbx_simulator::now_ms(),
        transcript: TRANSCRIPT.into(),
        summary: Some(AI_SUMMARY.into()),
        language: Some("en".into()),
    };
    product.pbx_sends_transcript(&transcript).await?;
    let kommo = wait_for_sandbox(&product, 30, |k| {
        let notes = call_notes(k, "leads", chosen_lead);
        (notes.len() == 1 && notes[0].to_string().contains("forty headsets")).then(|| k.clone())
    })
    .await?;
    let notes = call_notes(&kommo, "leads", chosen_lead);
    let text = notes[0].to_string();
    assert_eq!(notes.len(), 1, "still one call note: {notes:?}");
    assert!(text.contains(MANAGER_NOTE), "the manager's text stays: {text}");
    assert!(text.contains("Transcript: Maria: We need forty headsets."), "the transcript: {text}");
    assert!(text.contains(&format!("AI summary: {AI_SUMMARY}")), "the AI summary: {text}");
    assert!(call_notes(&kommo, "leads", SUGGESTED_LEAD).is_empty(), "nothing on the suggested lead");

    anna.close().await?;
    product.shutdown().await
}

/// Polls the sandbox's inspection until `check` returns something.
async fn wait_for_sandbox<T>(product: &Product, secs: u64, check: impl Fn(&Value) -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(found) = check(&product.demo.sandbox.inspect()) {
            return Ok(found);
        }
        if Instant::now() > deadline {
            anyhow::bail!("Kommo did not reach the expected state within {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn record<'a>(kommo: &'a Value, kind: &str, id: u64) -> &'a Value {
    kommo[kind].as_array().and_then(|rs| rs.iter().find(|r| r["id"].as_u64() == Some(id))).unwrap_or(&Value::Null)
}

fn record_named<'a>(kommo: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    kommo[kind].as_array()?.iter().find(|r| r["name"].as_str() == Some(name))
}

/// The call notes of this scenario's call on one record.
fn call_notes(kommo: &Value, kind: &str, id: u64) -> Vec<Value> {
    record(kommo, kind, id)["notes"]
        .as_array()
        .map(|notes| {
            notes
                .iter()
                .filter(|n| matches!(n["note_type"].as_str(), Some("call_in" | "call_out")))
                .filter(|n| n["params"]["uniq"].as_str() == Some(CALL_ID))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

fn tasks_with_text(kommo: &Value, kind: &str, id: u64, text: &str) -> usize {
    record(kommo, kind, id)["tasks"].as_array().map(|ts| ts.iter().filter(|t| t["text"] == text).count()).unwrap_or(0)
}
