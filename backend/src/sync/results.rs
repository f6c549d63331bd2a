//! Call results: the manager's answer in the Call summary modal, applied to
//! Kommo (the seed's `UpdateFromModalTask`).
//!
//! The widget posts the result ([`crate::results_api`]); the backend stores
//! it on the call and enqueues [`Job::ApplyCallResult`], whose handler is
//! [`apply_call_result`]. The handler works in two halves:
//!
//! - **Planning** is pure: [`plan_call_result`] turns what is known (the
//!   chosen record, the incoming lead the call sits in, where the call note
//!   is) into a list of [`Step`]s, following the seed's rules. All the
//!   decisions live there and are unit-tested without Kommo.
//! - **Executing** runs the steps against Kommo, each idempotent on its own
//!   (link, copy a phone, write a note found by `uniq`, retire a note, decline,
//!   create a task found by entity + text + deadline first), then saves the
//!   call. A job that runs twice, or is killed half-way and runs again, leaves
//!   one note and one task.
//!
//! ## "Remove its link to the suggested entity"
//!
//! When the manager picks another record than the one caller ID or call
//! logging chose, the seed wants the call on the chosen record and its link
//! to the suggested one deleted. The link is the call itself: its note (and
//! in our database its record and note id, which late updates follow).
//! Kommo's API can neither delete nor move a note, nor change its type, so:
//!
//! 1. the call note is written on the chosen record with the same `uniq`
//!    (the call id), found-or-created, carrying everything the old one had
//!    plus the manager's note as its agent-note section;
//! 2. the old note is *retired* in place: PATCHed to zero duration, no
//!    recording, a `uniq` that is no longer the call's (`<call id>:moved`),
//!    and a text saying where the call went. It stops being this call: no
//!    lookup by `uniq` finds it, no recording is ever added to it, and it no
//!    longer counts talk time on the wrong deal;
//! 3. the call's record and note id are switched to the chosen record, so
//!    the late recording (`Job::UpdateCallLog`) lands there.
//!
//! The contact–lead relationship between the caller and the suggested record
//! is left alone: it is the customer's data, not the call's, and unlinking
//! Maria from her open deal because one call was about another deal would
//! damage the CRM.
//!
//! Until the call is logged, the job waits (retries): applying a result to a
//! call whose logging has not run would let logging put a second note on the
//! suggested record, and would skip the incoming lead the seed's rules need.

use super::logging::{self, SOURCE};
use super::{JobFailure, SyncContext};
use crate::store::{CrmChange, StoredCall, SyncState};
use callcard_calls::result::TaskDraft;
use callcard_calls::{CallStatus, Direction, EntityKind, EntityRef};
use kommo_client::{CallNoteParams, Contact, KommoError, Link, NewNote, NewTask, NoteBody};
use serde::Deserialize;

#[cfg(doc)]
use crate::store::jobs::Job;

/// Applies the stored result of call `call_id` (module docs).
pub async fn apply_call_result(ctx: &SyncContext, call_id: &str) -> Result<(), JobFailure> {
    let Some(call) = ctx.store.call(ctx.account_id, call_id).await? else {
        return Err(JobFailure::Permanent(format!("no call {call_id} in account {}", ctx.account_id)));
    };
    let Some(json) = call.manager_result.as_deref() else { return Ok(()) };
    let result = StoredResult::parse(json).map_err(|e| JobFailure::Permanent(format!("unreadable result: {e}")))?;
    if call.call.status() != CallStatus::Ended {
        return Err(JobFailure::Retry("the call has not ended yet".into()));
    }
    let logged = call.note_id.is_some() || matches!(call.sync_state, SyncState::Skipped | SyncState::Failed);
    if !logged {
        return Err(JobFailure::Retry("the call is not logged yet".into()));
    }
    let incoming = match call.unsorted_uid.as_deref() {
        Some(uid) => incoming_lead(ctx, uid).await?,
        None => None,
    };
    let facts = Facts {
        chosen: result.chosen.clone(),
        incoming,
        note_at: call.note_entity.zip(call.note_id),
        task: result.task.clone(),
        responsible_user_id: call.responsible_user_id.or(call.kommo_user_id),
    };
    let steps = match plan_call_result(&facts) {
        Ok(steps) => steps,
        Err(e) => {
            // The manager's mistake, not Kommo's: nothing to retry, and
            // nothing for an operator; the manager sees it on the call.
            fail(ctx, call_id, &e.to_string()).await?;
            return Ok(());
        }
    };
    match execute(ctx, call, &steps).await {
        Ok(()) => Ok(()),
        Err(failure) => {
            if let JobFailure::Permanent(reason) = &failure {
                fail(ctx, call_id, reason).await?;
            }
            Err(failure)
        }
    }
}

/// The pending incoming lead `uid`, or `None` once it was processed.
async fn incoming_lead(ctx: &SyncContext, uid: &str) -> Result<Option<Incoming>, JobFailure> {
    match ctx.kommo.get_unsorted(uid).await {
        Ok(u) => {
            let e = &u.embedded;
            let records = e
                .leads
                .iter()
                .map(|r| EntityRef::new(EntityKind::Lead, r.id))
                .chain(e.contacts.iter().map(|r| EntityRef::new(EntityKind::Contact, r.id)))
                .chain(e.companies.iter().map(|r| EntityRef::new(EntityKind::Company, r.id)))
                .collect();
            Ok(Some(Incoming { uid: u.uid.clone(), contact: e.contacts.first().map(|c| c.id), records }))
        }
        Err(KommoError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Marks the result as failed, with the reason the manager will read.
async fn fail(ctx: &SyncContext, call_id: &str, reason: &str) -> Result<(), JobFailure> {
    tracing::warn!(call_id, reason, "call result not applied");
    ctx.store.set_result_error(ctx.account_id, call_id, Some(reason)).await?;
    Ok(())
}

/// Runs the steps in order; see [`Step`] for what each does and why it is
/// safe to repeat.
async fn execute(ctx: &SyncContext, call: StoredCall, steps: &[Step]) -> Result<(), JobFailure> {
    let kommo = &ctx.kommo;
    let call_id = call.call.call_id.clone();
    let user = call.kommo_user_id;
    // What the note step wrote, saved with the call at the end.
    let mut written: Option<(EntityRef, u64, String)> = None;
    for step in steps {
        tracing::debug!(call_id, ?step, "applying call result");
        match step {
            Step::LinkContact { contact, to } => {
                kommo.link(*to, &[Link::to(EntityRef::new(EntityKind::Contact, *contact))]).await?;
            }
            Step::CopyPhone { from_contact, to } => match kommo.get::<Contact>(*from_contact, &[]).await {
                Ok(contact) => {
                    if let Some(phone) = contact.phones().first() {
                        kommo.add_phone(*to, phone).await?;
                    }
                }
                // Gone meanwhile (declined by hand): nothing to copy.
                Err(KommoError::NotFound) => {}
                Err(e) => return Err(e.into()),
            },
            Step::WriteNote { on } => written = Some(write_note(ctx, &call, *on).await?),
            Step::RetireNote { on, note_id } => {
                let chosen = written.as_ref().map_or(*on, |(e, _, _)| *e);
                let body = retired_note(&call, chosen);
                match kommo.update_note(*on, *note_id, &body).await {
                    Ok(_) | Err(KommoError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Step::DeclineIncoming { uid } => match kommo.decline_unsorted(uid, user).await {
                Ok(_) | Err(KommoError::NotFound) => {}
                Err(e) => return Err(e.into()),
            },
            Step::AcceptIncoming { uid } => match kommo.accept_unsorted(uid, user, None).await {
                Ok(_) | Err(KommoError::NotFound) => {}
                Err(e) => return Err(e.into()),
            },
            Step::CreateTask { on, text, complete_till, task_type_id, responsible_user_id } => {
                let mut task = NewTask::follow_up(*on, text.clone(), *complete_till);
                task.task_type_id = Some(*task_type_id);
                // Without a user, Kommo makes the integration's own user
                // (the bot) responsible.
                task.responsible_user_id = *responsible_user_id;
                kommo.create_task_once(task).await?;
            }
            Step::Finish { entity } => {
                let (note_entity, note_id, note_params) = match &written {
                    Some((e, id, params)) => (Some(*e), Some(*id), Some(params.clone())),
                    None => (None, None, None),
                };
                ctx.store
                    .update_call_crm(
                        ctx.account_id,
                        &call_id,
                        CrmChange {
                            entity: Some(*entity),
                            note_entity,
                            note_id,
                            note_params,
                            sync_state: Some(SyncState::Synced),
                            // Applied: the widget says "Logged on …".
                            has_result: Some(true),
                            ..CrmChange::default()
                        },
                    )
                    .await?;
                ctx.store.set_result_error(ctx.account_id, &call_id, None).await?;
            }
        }
    }
    Ok(())
}

/// Writes the call note on `on`: the note already there with the call's
/// `uniq` is brought up to date, else one is created. Returns where it is,
/// its id and the params written.
async fn write_note(
    ctx: &SyncContext,
    call: &StoredCall,
    on: EntityRef,
) -> Result<(EntityRef, u64, String), JobFailure> {
    let account = ctx
        .store
        .account(ctx.account_id)
        .await?
        .ok_or_else(|| JobFailure::Permanent(format!("account {} is not provisioned", ctx.account_id)))?;
    let params = logging::current_note_params(ctx, call, &account).await?;
    let params_json = serde_json::to_string(&params).map_err(|e| JobFailure::Permanent(e.to_string()))?;
    let body = call_note(call.call.direction, params);
    let on_chosen_already = call.note_entity == Some(on);
    let note_id = match call.note_id.filter(|_| on_chosen_already) {
        Some(id) if call.note_params.as_deref() == Some(params_json.as_str()) => id,
        Some(id) => {
            ctx.kommo.update_note(on, id, &body).await.map_err(|e| gone(e, on))?;
            id
        }
        None => {
            let new = NewNote { body: body.clone(), created_by: None, responsible_user_id: call.kommo_user_id };
            let (note, created) = ctx.kommo.add_call_note_once(on, &new).await.map_err(|e| gone(e, on))?;
            if !created {
                // Written by an earlier run of this job: bring it up to date.
                ctx.kommo.update_note(on, note.id, &body).await?;
            }
            note.id
        }
    };
    Ok((on, note_id, params_json))
}

/// A 404 while writing on the chosen record means it is gone: the manager
/// must choose again.
fn gone(e: KommoError, on: EntityRef) -> JobFailure {
    match e {
        KommoError::NotFound => {
            JobFailure::Permanent(format!("the chosen {} {} no longer exists in Kommo", on.kind, on.id))
        }
        other => other.into(),
    }
}

fn call_note(direction: Direction, params: CallNoteParams) -> NoteBody {
    match direction {
        Direction::Inbound => NoteBody::CallIn(params),
        Direction::Outbound => NoteBody::CallOut(params),
    }
}

/// The old note, retired (module docs): no longer this call. The params are
/// complete so Kommo's PATCH gives the same note whether it merges params or
/// replaces them; an empty `link` clears a recording either way.
fn retired_note(call: &StoredCall, moved_to: EntityRef) -> NoteBody {
    let c = &call.call;
    let had_link = call
        .note_params
        .as_deref()
        .and_then(|json| serde_json::from_str::<CallNoteParams>(json).ok())
        .is_none_or(|p| p.link.is_some());
    call_note(
        c.direction,
        CallNoteParams {
            uniq: format!("{}:moved", c.call_id),
            duration: 0,
            source: SOURCE.into(),
            link: had_link.then(String::new),
            phone: c.external_number.as_str().to_string(),
            call_result: Some(format!("Moved: this call is logged on {} {}.", moved_to.kind, moved_to.id)),
            call_status: None,
        },
    )
}

/// The record the manager chose, as stored with the result.
///
/// Read leniently: a kind this version does not know (written by another
/// version of the widget, or by hand) becomes the seed's "unsupported
/// entity" error, reported to the manager, instead of an unreadable job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chosen {
    Entity(EntityRef),
    Unsupported { kind: String, id: u64 },
}

/// The stored result, read leniently (see [`Chosen`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResult {
    pub chosen: Chosen,
    pub note: String,
    pub task: Option<TaskDraft>,
}

impl StoredResult {
    /// Parses `calls.manager_result`.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Raw {
            entity: RawEntity,
            #[serde(default)]
            note: String,
            #[serde(default)]
            task: Option<TaskDraft>,
        }
        #[derive(Deserialize)]
        struct RawEntity {
            kind: String,
            id: u64,
        }
        let raw: Raw = serde_json::from_str(json)?;
        let kind = serde_json::from_value::<EntityKind>(serde_json::Value::String(raw.entity.kind.clone())).ok();
        let chosen = match kind {
            Some(kind) => Chosen::Entity(EntityRef::new(kind, raw.entity.id)),
            None => Chosen::Unsupported { kind: raw.entity.kind, id: raw.entity.id },
        };
        Ok(Self { chosen, note: raw.note, task: raw.task })
    }
}

/// The incoming lead (Kommo's "unsorted") the call sits in, while it is
/// still pending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub uid: String,
    /// The incoming lead's first contact: the one the seed links or copies.
    pub contact: Option<u64>,
    /// Every record the incoming lead holds (its lead, contacts, companies):
    /// declining it deletes them.
    pub records: Vec<EntityRef>,
}

/// Everything the plan depends on, read before planning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub chosen: Chosen,
    /// The pending incoming lead, if the call sits in one (None too once it
    /// was accepted or declined, e.g. by an earlier run of this job).
    pub incoming: Option<Incoming>,
    /// Where the call's note is now: the record and the note id (the record
    /// caller ID or call matching suggested), if the call was logged.
    pub note_at: Option<(EntityRef, u64)>,
    pub task: Option<TaskDraft>,
    /// Who gets the task: the call's user; `None` lets Kommo assign the
    /// integration's own (bot) user.
    pub responsible_user_id: Option<u64>,
}

/// One side effect in Kommo (or in the store), each idempotent on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Link the incoming lead's contact to the chosen lead or customer.
    LinkContact { contact: u64, to: EntityRef },
    /// Copy the incoming lead's contact's phone onto the chosen contact or company.
    CopyPhone { from_contact: u64, to: EntityRef },
    /// Write the call note on the chosen record (found by `uniq`, else
    /// created), with the manager's note in it, and record it on the call
    /// as the note a late recording updates.
    WriteNote { on: EntityRef },
    /// Retire the call note left on the suggested record.
    RetireNote { on: EntityRef, note_id: u64 },
    /// Accept the incoming lead: the manager chose one of its own records,
    /// which declining would delete.
    AcceptIncoming { uid: String },
    /// Decline the incoming lead.
    DeclineIncoming { uid: String },
    /// Create the follow-up task unless an identical one exists.
    CreateTask { on: EntityRef, text: String, complete_till: i64, task_type_id: u64, responsible_user_id: Option<u64> },
    /// Save the call: on the chosen record, synced.
    Finish { entity: EntityRef },
}

/// Why a result cannot be applied; shown to the manager on the call.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("a call cannot be moved to a {kind} (only a lead, customer, contact or company)")]
    UnsupportedEntity { kind: String },
}

/// The seed's rules, as a pure function of what is known:
///
/// 1. If the call sits in a pending incoming lead: a chosen lead or customer
///    gets the incoming lead's contact linked; a chosen contact or company
///    gets that contact's phone. (If the manager chose one of the incoming
///    lead's own records, those are already together; see 4.)
/// 2. The call note is written on the chosen record, with the manager's
///    note; from then on it is the note late updates go to.
/// 3. The note on the suggested record, if elsewhere, is retired.
/// 4. The incoming lead is declined; or accepted, when the chosen record
///    is one of its own (declining would delete the record the call was
///    just moved to).
/// 5. The task, if any, is created on the chosen record.
/// 6. The call is saved on the chosen record.
///
/// The order is what makes a crash at any point safe: nothing is removed
/// from where it is before it exists where it goes, and the incoming lead
/// (the only source of the contact to link) is processed only after the
/// link and the phone are in place.
pub fn plan_call_result(facts: &Facts) -> Result<Vec<Step>, PlanError> {
    let chosen = match &facts.chosen {
        Chosen::Entity(e) => *e,
        Chosen::Unsupported { kind, .. } => return Err(PlanError::UnsupportedEntity { kind: kind.clone() }),
    };
    let mut steps = Vec::new();
    let own_record = facts.incoming.as_ref().is_some_and(|i| i.records.contains(&chosen));
    if let Some(incoming) = &facts.incoming {
        match (incoming.contact, chosen.kind) {
            _ if own_record => {}
            (Some(contact), EntityKind::Lead | EntityKind::Customer) => {
                steps.push(Step::LinkContact { contact, to: chosen });
            }
            (Some(contact), EntityKind::Contact | EntityKind::Company) => {
                steps.push(Step::CopyPhone { from_contact: contact, to: chosen });
            }
            (None, _) => {}
        }
    }
    steps.push(Step::WriteNote { on: chosen });
    if let Some((on, note_id)) = facts.note_at {
        // A note on a record the incoming lead holds disappears with it.
        let declined_with_incoming = !own_record && facts.incoming.as_ref().is_some_and(|i| i.records.contains(&on));
        if on != chosen && !declined_with_incoming {
            steps.push(Step::RetireNote { on, note_id });
        }
    }
    if let Some(incoming) = &facts.incoming {
        let uid = incoming.uid.clone();
        steps.push(if own_record { Step::AcceptIncoming { uid } } else { Step::DeclineIncoming { uid } });
    }
    if let Some(task) = &facts.task {
        steps.push(Step::CreateTask {
            on: chosen,
            text: task.text.clone(),
            complete_till: task.complete_till,
            task_type_id: task.kind.task_type_id(),
            // The manager's choice, else the manager the call rang.
            responsible_user_id: task.responsible_user_id.or(facts.responsible_user_id),
        });
    }
    steps.push(Step::Finish { entity: chosen });
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAD: EntityRef = EntityRef { kind: EntityKind::Lead, id: 10 };
    const SUGGESTED: EntityRef = EntityRef { kind: EntityKind::Lead, id: 20 };
    const CONTACT: EntityRef = EntityRef { kind: EntityKind::Contact, id: 30 };
    const INCOMING_LEAD: EntityRef = EntityRef { kind: EntityKind::Lead, id: 40 };
    const INCOMING_CONTACT: EntityRef = EntityRef { kind: EntityKind::Contact, id: 41 };

    fn facts(chosen: EntityRef) -> Facts {
        Facts {
            chosen: Chosen::Entity(chosen),
            incoming: None,
            note_at: Some((SUGGESTED, 900)),
            task: None,
            responsible_user_id: Some(7),
        }
    }

    fn incoming() -> Incoming {
        Incoming { uid: "u1".into(), contact: Some(41), records: vec![INCOMING_LEAD, INCOMING_CONTACT] }
    }

    #[test]
    fn a_known_caller_moved_to_another_lead() {
        let mut f = facts(LEAD);
        f.task = Some(TaskDraft::follow_up(1_800_000_000, "Send quote"));
        assert_eq!(
            plan_call_result(&f).unwrap(),
            vec![
                Step::WriteNote { on: LEAD },
                Step::RetireNote { on: SUGGESTED, note_id: 900 },
                Step::CreateTask {
                    on: LEAD,
                    text: "Send quote".into(),
                    complete_till: 1_800_000_000,
                    task_type_id: 1,
                    responsible_user_id: Some(7)
                },
                Step::Finish { entity: LEAD },
            ]
        );
    }

    #[test]
    fn confirming_the_suggestion_retires_nothing() {
        assert_eq!(
            plan_call_result(&facts(SUGGESTED)).unwrap(),
            vec![Step::WriteNote { on: SUGGESTED }, Step::Finish { entity: SUGGESTED }]
        );
    }

    #[test]
    fn incoming_lead_and_a_chosen_lead_or_customer_links_the_contact_then_declines() {
        let mut f = facts(LEAD);
        f.incoming = Some(incoming());
        f.note_at = Some((INCOMING_LEAD, 901));
        assert_eq!(
            plan_call_result(&f).unwrap(),
            vec![
                Step::LinkContact { contact: 41, to: LEAD },
                Step::WriteNote { on: LEAD },
                // The note on the incoming lead goes with it.
                Step::DeclineIncoming { uid: "u1".into() },
                Step::Finish { entity: LEAD },
            ]
        );
        let customer = EntityRef::new(EntityKind::Customer, 11);
        f.chosen = Chosen::Entity(customer);
        assert_eq!(plan_call_result(&f).unwrap()[0], Step::LinkContact { contact: 41, to: customer });
    }

    #[test]
    fn incoming_lead_and_a_chosen_contact_or_company_copies_the_phone() {
        let mut f = facts(CONTACT);
        f.incoming = Some(incoming());
        f.note_at = None;
        assert_eq!(
            plan_call_result(&f).unwrap(),
            vec![
                Step::CopyPhone { from_contact: 41, to: CONTACT },
                Step::WriteNote { on: CONTACT },
                Step::DeclineIncoming { uid: "u1".into() },
                Step::Finish { entity: CONTACT },
            ]
        );
        let company = EntityRef::new(EntityKind::Company, 12);
        f.chosen = Chosen::Entity(company);
        assert_eq!(plan_call_result(&f).unwrap()[0], Step::CopyPhone { from_contact: 41, to: company });
    }

    #[test]
    fn an_incoming_lead_without_a_contact_is_only_declined() {
        let mut f = facts(LEAD);
        f.incoming = Some(Incoming { contact: None, ..incoming() });
        let steps = plan_call_result(&f).unwrap();
        assert!(!steps.iter().any(|s| matches!(s, Step::LinkContact { .. } | Step::CopyPhone { .. })));
        assert!(steps.contains(&Step::DeclineIncoming { uid: "u1".into() }));
    }

    #[test]
    fn choosing_the_incoming_leads_own_record_accepts_it() {
        let mut f = facts(INCOMING_CONTACT);
        f.incoming = Some(incoming());
        f.note_at = Some((INCOMING_LEAD, 901));
        assert_eq!(
            plan_call_result(&f).unwrap(),
            vec![
                Step::WriteNote { on: INCOMING_CONTACT },
                Step::RetireNote { on: INCOMING_LEAD, note_id: 901 },
                Step::AcceptIncoming { uid: "u1".into() },
                Step::Finish { entity: INCOMING_CONTACT },
            ]
        );
    }

    #[test]
    fn an_incoming_lead_already_processed_leaves_nothing_to_link_or_decline() {
        // A rerun after the decline: the link and phone were made before it.
        let f = facts(LEAD);
        let steps = plan_call_result(&f).unwrap();
        assert!(steps.iter().all(|s| !matches!(s, Step::DeclineIncoming { .. } | Step::LinkContact { .. })));
    }

    #[test]
    fn other_entity_types_are_refused() {
        let mut f = facts(LEAD);
        f.chosen = Chosen::Unsupported { kind: "catalog_elements".into(), id: 5 };
        assert_eq!(plan_call_result(&f), Err(PlanError::UnsupportedEntity { kind: "catalog_elements".into() }));
    }

    #[test]
    fn stored_results_are_read_leniently() {
        let r = StoredResult::parse(r#"{"entity":{"kind":"lead","id":10},"note":"hi","task":null}"#).unwrap();
        assert_eq!(r.chosen, Chosen::Entity(LEAD));
        let r = StoredResult::parse(r#"{"entity":{"kind":"task","id":3}}"#).unwrap();
        assert_eq!(r.chosen, Chosen::Unsupported { kind: "task".into(), id: 3 });
        assert_eq!(r.note, "");
    }
}
