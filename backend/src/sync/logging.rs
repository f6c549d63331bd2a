//! Call logging: every ended call becomes exactly one call note in Kommo, on
//! exactly one record, kept up to date as late data arrives.
//!
//! [`sync_call_log`] serves both [`Job::LogCall`] (the call ended) and
//! [`Job::UpdateCallLog`] (a recording, a corrected end, the manager's note):
//! it brings Kommo to the call's current state, whatever was done before.
//! That makes it idempotent by construction, and makes the order in which
//! the jobs run irrelevant (the queue runs one job per call at a time).
//!
//! 1. **Not logged**: calls still in progress, and internal calls (the
//!    external number is one of the account's extensions) which are marked
//!    `skipped`.
//! 2. **Where.** Once chosen, the record is stored on the call
//!    (`note_entity`) *before* anything is created there, so a rerun after a
//!    crash writes to the same record. The choice, in order: the record
//!    caller ID (or the manager) already attached to the call; else Kommo's
//!    call-logging rule applied to a contact/company search on the last 10
//!    digits (the oldest holder; its single active lead, else its single
//!    customer, else itself; contacts before companies); else, when nobody
//!    has the number, a new **incoming lead** (`POST
//!    /api/v4/leads/unsorted/sip`, the call in its metadata), on whose lead
//!    the note goes. Creating the incoming lead is not idempotent in Kommo,
//!    so `log_intent_at` is stored first and a rerun looks for it (by
//!    `source_uid` = call id) before creating another.
//! 3. **The note**: `call_in`/`call_out` with `uniq` = the call id, the
//!    billable duration (zero for a call not taken), the phone, the
//!    recording link, Kommo's `call_status` for the outcome, and as
//!    `call_result` the sectioned text of [`callcard_calls::note`] (subject,
//!    start, duration, result, recording, the manager's note; each switchable
//!    per account). Created with `add_call_note_once` (looked up by `uniq`
//!    first), so a crash between Kommo's answer and our commit cannot make a
//!    second note.
//! 4. **Late data**: the note is PATCHed (never a second note) when the
//!    params to write differ from what was last written (`note_params`); a
//!    rerun with nothing new sends nothing.
//! 5. **Missed calls**: when the account wants it (`missed_call_task`), a
//!    missed inbound call gets one follow-up task on the same record, for
//!    the call's user (`callcard_calls::note::missed_call_task`).
//!
//! Kommo requests per call, measured against the sandbox
//! (`tests/crm_sync.rs`, `requests_per_call`): 2 when caller ID already
//! attached the record (look up by uniq, create); without it, a contact
//! with one active and one closed lead 5 (search, 2 lead reads, look up,
//! create), a company without leads 4, an unknown number 5 (two searches,
//! the incoming lead, look up, create); a late recording 1 (PATCH); a
//! redelivered event with nothing new 0.
//!
//! Known limit: two calls from the *same* unknown number processed at the
//! same moment by two workers may each create an incoming lead (jobs are
//! serialised per call, not per number).

use super::{JobFailure, SyncContext};
use crate::store::phonebook::IndexChange;
use crate::store::{Account, CrmChange, StoredCall, SyncState};
use callcard_calls::feed::CallerId;
use callcard_calls::note::{self, CallFacts, CallPath, LogSettings, ManagerText, TranscriptFacts, UserLogSettings};
use callcard_calls::phone::{last_digits, CALL_LOG_DIGITS};
use callcard_calls::{CallStatus, Direction, EntityKind, EntityRef, Outcome};
use kommo_client::{
    CallNoteParams, Company, Contact, Customer, KommoError, Lead, NewNote, NewSipUnsorted, NewTask, NewUnsortedContact,
    NewUnsortedEmbedded, NewUnsortedLead, NoteBody, Party, SipMetadata, With,
};

#[cfg(doc)]
use crate::store::jobs::Job;

/// The `source` of our call notes and incoming leads.
pub const SOURCE: &str = "callcard";

/// Brings the call's record in Kommo up to date (module docs).
pub async fn sync_call_log(ctx: &SyncContext, call_id: &str) -> Result<(), JobFailure> {
    let Some(call) = ctx.store.call(ctx.account_id, call_id).await? else {
        return Err(JobFailure::Permanent(format!("no call {call_id} in account {}", ctx.account_id)));
    };
    if call.call.status() != CallStatus::Ended {
        return Ok(()); // logged when it ends; its end enqueues the job again
    }
    let account = ctx
        .store
        .account(ctx.account_id)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("account {} is not provisioned", ctx.account_id)))?;
    if account.extensions.is_extension(call.call.external_number.as_str()) {
        if call.sync_state != SyncState::Skipped {
            update(ctx, call_id, CrmChange { sync_state: Some(SyncState::Skipped), ..CrmChange::default() }).await?;
        }
        return Ok(());
    }
    let (call, target) = match call.note_entity {
        Some(target) => (call, target),
        None => choose_target(ctx, call).await?,
    };
    let params = current_note_params(ctx, &call, &account).await?;
    let params_json = serde_json::to_string(&params).map_err(|e| JobFailure::Permanent(e.to_string()))?;
    let body = match call.call.direction {
        Direction::Inbound => NoteBody::CallIn(params),
        Direction::Outbound => NoteBody::CallOut(params),
    };
    let note_id = match call.note_id {
        Some(id) if call.note_params.as_deref() == Some(params_json.as_str()) => id,
        Some(id) => {
            ctx.kommo.update_note(target, id, &body).await.map_err(|e| match e {
                KommoError::NotFound => JobFailure::Permanent(format!(
                    "the call note {id} on {} {} is gone from Kommo",
                    target.kind.as_str(),
                    target.id
                )),
                other => other.into(),
            })?;
            id
        }
        None => {
            let responsible_user_id = responsible_user(&call, &account.log_settings);
            let new = NewNote { body: body.clone(), created_by: None, responsible_user_id };
            let (note, created) = ctx.kommo.add_call_note_once(target, &new).await?;
            if !created {
                // An earlier run created it and died before recording it: the
                // note may hold older data.
                ctx.kommo.update_note(target, note.id, &body).await?;
            }
            note.id
        }
    };
    let call = update(
        ctx,
        call_id,
        CrmChange {
            note_entity: Some(target),
            note_id: Some(note_id),
            note_params: Some(params_json),
            logged_at: Some(call.logged_at.unwrap_or_else(crate::store::now_ms)),
            sync_state: Some(SyncState::Synced),
            ..CrmChange::default()
        },
    )
    .await?;
    follow_up_if_missed(ctx, &call, target, &account.log_settings).await
}

/// A missed inbound call's follow-up task on the record it is logged on,
/// when the account wants one: created once (its id is kept on the call; a
/// run that died after Kommo created it finds it by its text and deadline,
/// which the call determines).
async fn follow_up_if_missed(
    ctx: &SyncContext,
    call: &StoredCall,
    on: EntityRef,
    settings: &LogSettings,
) -> Result<(), JobFailure> {
    if !settings.missed_call_task || call.missed_task_id.is_some() {
        return Ok(());
    }
    let Some(task) = note::missed_call_task(&call_facts(call, None)) else { return Ok(()) };
    let mut new = NewTask::follow_up(on, task.text, task.complete_till);
    new.responsible_user_id = responsible_user(call, settings).or(settings.missed_call_task_user_id);
    let id = ctx.kommo.create_task_once(new).await?;
    tracing::info!(call_id = %call.call.call_id, task = id, "missed call: follow-up task created");
    update(ctx, &call.call.call_id, CrmChange { missed_task_id: Some(id), ..CrmChange::default() }).await?;
    Ok(())
}

/// Who the call is logged for: its user (the agent who answered last, so
/// after a transfer the one who finished it); for a ring-group call nobody
/// answered, the account's `unanswered_group_user_id`.
fn responsible_user(call: &StoredCall, settings: &LogSettings) -> Option<u64> {
    match call.kommo_user_id {
        Some(user) => Some(user),
        None if call.call.is_group() && call.call.holder().is_none() => settings.unanswered_group_user_id,
        None => None,
    }
}

/// What the PBX told us about the call, for the note's machine sections.
fn call_facts(call: &StoredCall, transcript: Option<TranscriptFacts>) -> CallFacts {
    let c = &call.call;
    let path = match c.path().as_slice() {
        [] if c.is_group() => CallPath::RangGroup(c.legs.iter().map(|l| l.extension.clone()).collect()),
        [] | [_] => CallPath::Single,
        answered => CallPath::Transferred(answered.iter().map(|e| e.to_string()).collect()),
    };
    CallFacts {
        path,
        direction: c.direction,
        phone: c.external_number.as_str().to_string(),
        started_at: c.started_at(),
        billable_seconds: c.billable_seconds(),
        outcome: c.ending.as_ref().map(|e| e.outcome),
        recording_url: c.recording_url().map(str::to_string),
        transcript,
    }
}

/// The call note's params for the call as it now is: the switches that
/// apply to the call's user, and the transcript if the PBX sent one.
pub async fn current_note_params(
    ctx: &SyncContext,
    call: &StoredCall,
    account: &Account,
) -> Result<CallNoteParams, JobFailure> {
    let user = match call.kommo_user_id {
        Some(user_id) => ctx.store.user_log_settings(ctx.account_id, user_id).await?,
        None => UserLogSettings::default(),
    };
    let call_id = call.call.call_id.as_str();
    let transcript = ctx.store.transcript(ctx.account_id, call_id).await?.map(|t| TranscriptFacts {
        full_text_url: ctx.transcript_links.url(ctx.account_id, call_id, t.received_at),
        text: t.transcript,
        summary: t.summary,
    });
    Ok(note_params(call, transcript, &account.log_settings.for_user(&user)))
}

/// The call note's params for the call as it now is.
pub fn note_params(call: &StoredCall, transcript: Option<TranscriptFacts>, settings: &LogSettings) -> CallNoteParams {
    let existing = call
        .note_params
        .as_deref()
        .and_then(|json| serde_json::from_str::<CallNoteParams>(json).ok())
        .and_then(|p| p.call_result)
        .unwrap_or_default();
    let c = &call.call;
    let facts = call_facts(call, transcript);
    let manager = ManagerText { note: call.manager_note.as_deref(), subject: call.manager_subject.as_deref() };
    let text = note::compose(&existing, &facts, manager, settings);
    CallNoteParams {
        uniq: c.call_id.clone(),
        duration: c.billable_seconds(),
        source: SOURCE.into(),
        link: c.recording_url().filter(|_| settings.recording).map(str::to_string),
        phone: c.external_number.as_str().to_string(),
        call_result: Some(text),
        call_status: c.ending.as_ref().map(|e| call_status(e.outcome).code()),
    }
}

/// Kommo's `call_status` for an outcome.
pub fn call_status(outcome: Outcome) -> kommo_client::CallStatus {
    use kommo_client::CallStatus as S;
    match outcome {
        Outcome::Answered => S::HadConversation,
        Outcome::Missed | Outcome::NoAnswer => S::NotAvailable,
        Outcome::Busy => S::LineBusy,
        Outcome::Failed => S::NoConnection,
    }
}

async fn update(ctx: &SyncContext, call_id: &str, change: CrmChange) -> Result<StoredCall, JobFailure> {
    ctx.store
        .update_call_crm(ctx.account_id, call_id, change)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("call {call_id} disappeared")))
}

/// Picks (and records) the record the call is logged on; may create the
/// incoming lead. Returns the updated call and the record.
async fn choose_target(ctx: &SyncContext, call: StoredCall) -> Result<(StoredCall, EntityRef), JobFailure> {
    let call_id = call.call.call_id.clone();
    let found = if call.log_intent_at.is_some() {
        // An earlier run was creating the incoming lead: find it first.
        find_unsorted(ctx, &call_id).await?
    } else {
        None
    };
    let (target, uid) = match found {
        Some(found) => found,
        None => match call.entity {
            Some(entity) => (entity, None),
            None => {
                let matched = match call.caller {
                    // Caller ID saw nobody with the last 8 digits: nobody
                    // has the last 10 either.
                    CallerId::Unknown => None,
                    _ => match_call(ctx, call.call.external_number.as_str()).await?,
                };
                match matched {
                    Some(entity) => (entity, None),
                    None => create_unsorted(ctx, &call).await?,
                }
            }
        },
    };
    let change = CrmChange {
        note_entity: Some(target),
        // The widget shows where the call went, unless something is shown already.
        entity: call.entity.is_none().then_some(target),
        unsorted_uid: uid,
        ..CrmChange::default()
    };
    let call = update(ctx, &call_id, change).await?;
    Ok((call, target))
}

/// Kommo's call-logging rule over a search of the number's last 10 digits:
/// the I/O around [`log_target`]. Reads the oldest holder's leads and
/// customers to know which are active.
pub async fn match_call(ctx: &SyncContext, phone: &str) -> Result<Option<EntityRef>, KommoError> {
    let key = last_digits(phone, CALL_LOG_DIGITS);
    if key.is_empty() {
        return Ok(None);
    }
    let with = [With::Leads, With::Customers];
    let contacts: Vec<Contact> = ctx.kommo.search(&key, &with).await?;
    let (kind, holder) = match oldest_holder(contacts.into_iter().map(|c| c.0), &key) {
        Some(c) => (EntityKind::Contact, c),
        None => {
            let companies: Vec<Company> = ctx.kommo.search(&key, &with).await?;
            match oldest_holder(companies.into_iter().map(|c| c.0), &key) {
                Some(c) => (EntityKind::Company, c),
                None => return Ok(None),
            }
        }
    };
    let mut active_leads = Vec::new();
    for related in &holder.embedded.leads {
        match ctx.kommo.get::<Lead>(related.id, &[]).await {
            Ok(lead) if lead.is_active() => active_leads.push(lead.id),
            Ok(_) | Err(KommoError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    let mut active_customers = Vec::new();
    for related in &holder.embedded.customers {
        match ctx.kommo.get::<Customer>(related.id, &[]).await {
            Ok(customer) if !customer.is_deleted && customer_is_active(&customer) => active_customers.push(customer.id),
            Ok(_) | Err(KommoError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(log_target(EntityRef::new(kind, holder.id), &active_leads, &active_customers)))
}

/// The oldest (by creation, then id) of `parties` that is not deleted and
/// has a phone whose last 10 digits are `key`: Kommo's choice of the
/// number's holder, among contacts first and then among companies.
pub fn oldest_holder(parties: impl IntoIterator<Item = Party>, key: &str) -> Option<Party> {
    let holds = |p: &Party| !p.is_deleted && p.phones().iter().any(|n| last_digits(n, CALL_LOG_DIGITS) == key);
    parties.into_iter().filter(holds).min_by_key(|p| (p.created_at, p.id))
}

/// Kommo's call-logging rule (kommo-facts.md, `POST /api/v4/calls`), pure:
/// the holder's single active lead if it has no active customer, its single
/// active customer if it has no active lead, else the holder itself.
pub fn log_target(holder: EntityRef, active_leads: &[u64], active_customers: &[u64]) -> EntityRef {
    match (active_leads, active_customers) {
        ([lead], []) => EntityRef::new(EntityKind::Lead, *lead),
        ([], [customer]) => EntityRef::new(EntityKind::Customer, *customer),
        _ => holder,
    }
}

/// Kommo's closed customer stage ("lost") is 143, as for leads.
fn customer_is_active(customer: &Customer) -> bool {
    customer.status_id != Some(kommo_client::STATUS_LOST)
}

/// The pending incoming lead an earlier run created for this call, if any.
async fn find_unsorted(ctx: &SyncContext, call_id: &str) -> Result<Option<(EntityRef, Option<String>)>, KommoError> {
    let pending = ctx.kommo.list_sip_unsorted().await?;
    Ok(pending.into_iter().find(|u| u.source_uid.as_deref() == Some(call_id)).and_then(|u| {
        let lead = u.embedded.leads.first()?.id;
        Some((EntityRef::new(EntityKind::Lead, lead), Some(u.uid)))
    }))
}

/// Creates the incoming lead for a call from a number nobody has.
async fn create_unsorted(ctx: &SyncContext, call: &StoredCall) -> Result<(EntityRef, Option<String>), JobFailure> {
    let c = &call.call;
    let call_id = c.call_id.clone();
    // Recorded before sending: if the answer is lost, the next run looks.
    update(ctx, &call_id, CrmChange { log_intent_at: Some(crate::store::now_ms()), ..CrmChange::default() }).await?;
    let phone = c.external_number.as_str().to_string();
    let item = NewSipUnsorted {
        source_uid: call_id.clone(),
        source_name: SOURCE.into(),
        pipeline_id: None,
        created_at: c.started_at().map(|ms| ms / 1000),
        embedded: NewUnsortedEmbedded {
            leads: vec![NewUnsortedLead { name: format!("Call from {phone}"), ..NewUnsortedLead::default() }],
            contacts: vec![NewUnsortedContact::with_phone(phone.clone(), &phone)],
        },
        metadata: SipMetadata {
            uniq: call_id.clone(),
            from: phone.clone(),
            phone: c.extension.clone(),
            called_at: c.started_at().map_or(0, |ms| ms / 1000),
            duration: c.billable_seconds(),
            link: c.recording_url().map(str::to_string),
            service_code: SOURCE.into(),
            // The call note is ours (one note, updated in place); Kommo
            // must not add another call event from the metadata.
            is_call_event_needed: false,
        },
        request_id: None,
    };
    let created = match ctx.kommo.add_sip_unsorted(&[item]).await {
        Ok(created) => created,
        Err(e) if e.may_have_been_applied() => match find_unsorted(ctx, &call_id).await? {
            Some(found) => return Ok(found),
            None => return Err(e.into()),
        },
        Err(e) => return Err(e.into()),
    };
    let unsorted =
        created.into_iter().next().ok_or_else(|| JobFailure::Retry("Kommo answered no incoming lead".into()))?;
    let lead = unsorted
        .embedded
        .leads
        .first()
        .ok_or_else(|| JobFailure::Retry("Kommo's incoming lead has no lead".into()))?
        .id;
    tracing::info!(call_id, uid = %unsorted.uid, lead, "created an incoming lead for an unknown number");
    let lead = EntityRef::new(EntityKind::Lead, lead);
    // The caller index learns the new lead's contact from Kommo's answer,
    // so the lead's `add_lead` webhook needs no read of its links (one
    // Kommo request per unknown caller saved).
    let holders: Vec<EntityRef> =
        unsorted.embedded.contacts.iter().map(|c| EntityRef::new(EntityKind::Contact, c.id)).collect();
    if !holders.is_empty() {
        ctx.store.apply_phonebook(ctx.account_id, &[IndexChange::DealLinks { deal: lead, holders }]).await?;
    }
    Ok((lead, Some(unsorted.uid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARIA: EntityRef = EntityRef { kind: EntityKind::Contact, id: 7 };

    #[test]
    fn a_single_active_lead_or_customer_takes_the_call_else_the_holder() {
        assert_eq!(log_target(MARIA, &[31], &[]), EntityRef::new(EntityKind::Lead, 31));
        assert_eq!(log_target(MARIA, &[], &[41]), EntityRef::new(EntityKind::Customer, 41));
        // Ambiguous: two leads, or a lead and a customer; or nothing open.
        assert_eq!(log_target(MARIA, &[31, 32], &[]), MARIA);
        assert_eq!(log_target(MARIA, &[31], &[41]), MARIA);
        assert_eq!(log_target(MARIA, &[], &[41, 42]), MARIA);
        assert_eq!(log_target(MARIA, &[], &[]), MARIA);
    }

    fn party(id: u64, created_at: i64, phone: &str, is_deleted: bool) -> Party {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": format!("p{id}"), "created_at": created_at, "is_deleted": is_deleted,
            "custom_fields_values": [{"field_code": "PHONE", "values": [{"value": phone}]}],
        }))
        .unwrap()
    }

    #[test]
    fn the_oldest_live_holder_of_the_last_ten_digits_is_chosen() {
        let key = last_digits("+1 (830) 570-3077", CALL_LOG_DIGITS);
        let parties = vec![
            party(5, 300, "8305703077", false),
            party(4, 100, "+18305703077", true),     // oldest, but deleted
            party(3, 200, "+1 830 570 3078", false), // another number
            party(2, 200, "830-570-3077", false),
            party(9, 200, "18305703077", false), // same age: lower id wins
        ];
        assert_eq!(oldest_holder(parties, &key).map(|p| p.id), Some(2));
        assert!(oldest_holder(vec![party(1, 1, "+15550000000", false)], &key).is_none());
    }
}
