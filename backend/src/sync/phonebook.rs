//! The local caller index: built from Kommo, kept current, and asked on
//! every ring at no Kommo request.
//!
//! - **Initial sync** ([`Job::SyncPhonebook`], enqueued at installation):
//!   subscribes the account's webhook destination
//!   (`{public base}/kommo/{account_id}/hooks/{secret}`, [`HOOK_EVENTS`]),
//!   then reads leads, customers, contacts and companies (the last two
//!   `with=leads,customers`, which gives the links; a contact's company
//!   comes embedded unasked) page by page through the
//!   shared request budget. The cursor is stored after every page, so a
//!   restart resumes at the page it stopped at. At the end the index is
//!   ready: caller ID reads it from then on.
//! - **Webhooks** (`crate::kommo_hooks`): every delivery is applied at once
//!   ([`delivery_changes`]); leads and customers that were added or
//!   restored get a [`Job::RefreshDealLinks`] a few seconds later, because
//!   Kommo's deliveries carry no links (skipped when the index has them: the
//!   incoming leads callcard creates come with their contact). A change to an existing deal does not: every logged
//!   call touches its lead (`update_lead`), and a GET per logged call would
//!   spend the account's budget on links that rarely change. A link changed
//!   on an existing deal heals at the next reconciliation. So does a
//!   contact's company: the deliveries carry no links (which link fields
//!   Kommo's own deliveries hold is unconfirmed), so a contact's company
//!   stays as last listed, while a company renamed by webhook is named anew
//!   at once (the index keeps only the company's id with the contact).
//! - **Reconciliation** ([`Job::ReconcilePhonebook`], every
//!   `caller_index_reconcile_interval_seconds` per ready account): lists what
//!   changed since the last one by `updated_at`, so a missed webhook heals.
//! - **Caller ID** ([`identify`]): the candidate holders of the number's key
//!   and their deals, read from the store into a small `Phonebook`, and
//!   Kommo's rule, `Phonebook::identify`, over it.
//!
//! Kommo's `updated_at` is in seconds; two changes in one second are both
//! applied (newer-or-equal wins), and the reconciliation re-reads a margin
//! before where it stopped, so a change is never skipped for a clock edge.

use super::{JobFailure, SyncContext};
use crate::store::jobs::Job;
use crate::store::phonebook::{DealData, HolderData, IndexChange, SyncPhase};
use crate::store::{now_ms, Store};
use callcard_calls::feed::CallerId;
use callcard_calls::{EntityKind, EntityRef};
use kommo_client::{ChangeAction, Company, Contact, Customer, Delivery, Lead, Listing, Party, Record, With};

/// What the account's webhook subscribes to: every change of the four record
/// kinds, and lead status changes.
pub const HOOK_EVENTS: [&str; 17] = [
    "add_contact",
    "update_contact",
    "delete_contact",
    "restore_contact",
    "add_company",
    "update_company",
    "delete_company",
    "restore_company",
    "add_lead",
    "update_lead",
    "delete_lead",
    "restore_lead",
    "add_customer",
    "update_customer",
    "delete_customer",
    "restore_customer",
    "status_lead",
];

/// The order the first sync reads the collections in.
const SYNC_ORDER: [EntityKind; 4] = [EntityKind::Lead, EntityKind::Customer, EntityKind::Contact, EntityKind::Company];

/// How far before the last reconciliation's start the next one reads
/// (Kommo's clock and ours may differ a little; re-reading is harmless).
const RECONCILE_MARGIN_SECS: i64 = 60;

/// Caller ID from the index (0 Kommo requests): `Unknown` when nobody
/// holds the number.
pub async fn identify(store: &Store, account_id: u64, number: &str) -> Result<CallerId, sqlx::Error> {
    let book = store.phonebook_for(account_id, number).await?;
    Ok(book.identify(number).map_or(CallerId::Unknown, CallerId::from))
}

/// [`Job::SyncPhonebook`]: the first sync, resumed from the stored cursor.
pub async fn sync(ctx: &SyncContext) -> Result<(), JobFailure> {
    let Some(mut state) = ctx.store.phonebook_sync(ctx.account_id).await? else {
        return Err(JobFailure::Permanent("the account's caller index was never started".into()));
    };
    if state.phase == SyncPhase::Subscribe {
        ctx.kommo.subscribe_webhook(&state.hook_destination, &HOOK_EVENTS).await?;
        ctx.store.set_phonebook_cursor(ctx.account_id, SyncPhase::Listing, SYNC_ORDER[0], 1).await?;
        state.phase = SyncPhase::Listing;
        state.kind = SYNC_ORDER[0];
        state.page = 1;
    }
    if state.phase == SyncPhase::Listing {
        let start = SYNC_ORDER.iter().position(|k| *k == state.kind).unwrap_or(0);
        for (i, kind) in SYNC_ORDER.into_iter().enumerate().skip(start) {
            let first_page = if i == start { state.page } else { 1 };
            let mut listing = Some(Listing { page: first_page, ..Listing::from_start(sync_with(kind)) });
            while let Some(current) = listing {
                let next = read_page(ctx, kind, &current).await?;
                let (cursor_kind, cursor_page) = match (&next, SYNC_ORDER.get(i + 1)) {
                    (Some(next), _) => (kind, next.page),
                    (None, Some(following)) => (*following, 1),
                    (None, None) => (kind, current.page + 1),
                };
                ctx.store.set_phonebook_cursor(ctx.account_id, SyncPhase::Listing, cursor_kind, cursor_page).await?;
                listing = next;
            }
        }
        ctx.store.finish_phonebook_sync(ctx.account_id).await?;
        tracing::info!(account_id = ctx.account_id, "caller index ready");
    }
    Ok(())
}

/// [`Job::ReconcilePhonebook`]: what changed since the last one.
pub async fn reconcile(ctx: &SyncContext) -> Result<(), JobFailure> {
    let Some(state) = ctx.store.phonebook_sync(ctx.account_id).await? else { return Ok(()) };
    if !state.ready {
        return Ok(());
    }
    let started = now_ms() / 1000;
    for kind in SYNC_ORDER {
        let mut listing = Some(Listing::changed_since(state.reconciled_from, reconcile_with(kind)));
        while let Some(current) = listing {
            listing = read_page(ctx, kind, &current).await?;
        }
    }
    ctx.store.set_reconciled_from(ctx.account_id, started - RECONCILE_MARGIN_SECS).await?;
    Ok(())
}

/// [`Job::RefreshDealLinks`]: the deal as Kommo has it now, with its links,
/// unless the index has them already (an incoming lead callcard created:
/// Kommo's answer to the creation named its contact).
pub async fn refresh_deal_links(ctx: &SyncContext, deal: EntityRef) -> Result<(), JobFailure> {
    if ctx.store.deal_links_known(ctx.account_id, deal).await? {
        return Ok(());
    }
    let changes = match deal.kind {
        EntityKind::Lead => match ctx.kommo.get::<Lead>(deal.id, &[With::Contacts]).await {
            Ok(lead) => lead_changes(&lead, true),
            // Gone: its delete webhook (or the next reconciliation) says so.
            Err(kommo_client::KommoError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        },
        EntityKind::Customer => match ctx.kommo.get::<Customer>(deal.id, &[With::Contacts, With::Companies]).await {
            Ok(customer) => customer_changes(&customer, true),
            Err(kommo_client::KommoError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        },
        other => return Err(JobFailure::Permanent(format!("a {other} has no deal links"))),
    };
    ctx.store.apply_phonebook(ctx.account_id, &changes).await?;
    Ok(())
}

/// What the first sync embeds: holders bring their deals (the links).
fn sync_with(kind: EntityKind) -> &'static [With] {
    match kind {
        EntityKind::Contact | EntityKind::Company => &[With::Leads, With::Customers],
        _ => &[],
    }
}

/// What the reconciliation embeds: both sides' links, so a link made on
/// either record heals.
fn reconcile_with(kind: EntityKind) -> &'static [With] {
    match kind {
        EntityKind::Contact | EntityKind::Company => &[With::Leads, With::Customers],
        EntityKind::Lead => &[With::Contacts],
        EntityKind::Customer => &[With::Contacts, With::Companies],
    }
}

/// Reads one page of `kind` into the index; answers the next page, if any.
async fn read_page(ctx: &SyncContext, kind: EntityKind, listing: &Listing) -> Result<Option<Listing>, JobFailure> {
    let with_links = listing.with.iter().any(|w| matches!(w, With::Contacts | With::Companies));
    let (changes, next) = match kind {
        EntityKind::Contact => {
            let page = ctx.kommo.list_page::<Contact>(listing).await?;
            (page.records.iter().flat_map(holder_changes::<Contact>).collect::<Vec<_>>(), page.next)
        }
        EntityKind::Company => {
            let page = ctx.kommo.list_page::<Company>(listing).await?;
            (page.records.iter().flat_map(holder_changes::<Company>).collect(), page.next)
        }
        EntityKind::Lead => {
            let page = ctx.kommo.list_page::<Lead>(listing).await?;
            (page.records.iter().flat_map(|l| lead_changes(l, with_links)).collect(), page.next)
        }
        EntityKind::Customer => {
            let page = ctx.kommo.list_page::<Customer>(listing).await?;
            (page.records.iter().flat_map(|c| customer_changes(c, with_links)).collect(), page.next)
        }
    };
    ctx.store.apply_phonebook(ctx.account_id, &changes).await?;
    Ok(next)
}

fn holder_changes<R: Record + std::ops::Deref<Target = Party>>(party: &R) -> Vec<IndexChange> {
    let entity = EntityRef::new(R::KIND, party.id);
    // Kommo embeds a contact's companies in every contact it answers, asked
    // or not (a contact belongs to one company at most); companies have none.
    let company = (R::KIND == EntityKind::Contact).then(|| party.embedded.companies.first().map(|c| c.id));
    let deals = party
        .embedded
        .leads
        .iter()
        .map(|r| EntityRef::new(EntityKind::Lead, r.id))
        .chain(party.embedded.customers.iter().map(|r| EntityRef::new(EntityKind::Customer, r.id)))
        .collect();
    vec![
        IndexChange::Holder(HolderData {
            entity,
            name: Some(party.name.trim().to_string()),
            created_at: party.created_at,
            updated_at: party.updated_at.unwrap_or(0),
            phones: Some(party.phones().into_iter().map(str::to_string).collect()),
            responsible_user_id: party.responsible_user_id,
            company,
        }),
        IndexChange::HolderLinks { holder: entity, deals },
    ]
}

fn deal_links(deal: EntityRef, embedded: &kommo_client::Embedded) -> IndexChange {
    let holders = embedded
        .contacts
        .iter()
        .map(|r| EntityRef::new(EntityKind::Contact, r.id))
        .chain(embedded.companies.iter().map(|r| EntityRef::new(EntityKind::Company, r.id)))
        .collect();
    IndexChange::DealLinks { deal, holders }
}

fn lead_changes(lead: &Lead, with_links: bool) -> Vec<IndexChange> {
    let entity = EntityRef::new(EntityKind::Lead, lead.id);
    let mut changes = vec![IndexChange::Deal(DealData {
        entity,
        name: Some(lead.name.trim().to_string()),
        status_id: lead.status_id,
        pipeline_id: lead.pipeline_id,
        responsible_user_id: lead.responsible_user_id,
        updated_at: lead.updated_at.unwrap_or(0),
    })];
    if with_links {
        changes.push(deal_links(entity, &lead.embedded));
    }
    changes
}

fn customer_changes(customer: &Customer, with_links: bool) -> Vec<IndexChange> {
    let entity = EntityRef::new(EntityKind::Customer, customer.id);
    let mut changes = vec![IndexChange::Deal(DealData {
        entity,
        name: Some(customer.name.trim().to_string()),
        status_id: customer.status_id,
        pipeline_id: None,
        responsible_user_id: customer.responsible_user_id,
        updated_at: customer.updated_at.unwrap_or(0),
    })];
    if with_links {
        changes.push(deal_links(entity, &customer.embedded));
    }
    changes
}

/// What one webhook delivery changes in the index, and the deals whose
/// links must be re-read. `received_at` (Unix seconds) stands in for the times Kommo does not send (a deletion's, an
/// entry without `updated_at`).
pub fn delivery_changes(delivery: &Delivery, received_at: i64) -> (Vec<IndexChange>, Vec<Job>) {
    let mut changes = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    for c in &delivery.changes {
        let updated_at = c.updated_at.unwrap_or(received_at);
        if c.action == ChangeAction::Delete {
            changes.push(IndexChange::Delete { record: c.record, at: received_at });
            continue;
        }
        if c.action == ChangeAction::Restore {
            changes.push(IndexChange::Restore { record: c.record });
        }
        match c.record.kind {
            EntityKind::Contact | EntityKind::Company => changes.push(IndexChange::Holder(HolderData {
                entity: c.record,
                name: c.name.as_ref().map(|n| n.trim().to_string()),
                created_at: None,
                updated_at,
                phones: c.phones.clone(),
                responsible_user_id: c.responsible_user_id,
                // Not in the delivery: the listed company stays (module docs).
                company: None,
            })),
            EntityKind::Lead | EntityKind::Customer => {
                changes.push(IndexChange::Deal(DealData {
                    entity: c.record,
                    name: c.name.as_ref().map(|n| n.trim().to_string()),
                    status_id: c.status_id,
                    pipeline_id: c.pipeline_id,
                    responsible_user_id: c.responsible_user_id,
                    updated_at,
                }));
                let job = Job::refresh_deal_links(c.record);
                let new_links = matches!(c.action, ChangeAction::Add | ChangeAction::Restore);
                if new_links && !jobs.contains(&job) {
                    jobs.push(job);
                }
            }
        }
    }
    (changes, jobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_becomes_index_changes_and_one_link_refresh_per_new_deal() {
        let body =
            "account[id]=7&leads[update][0][id]=5&leads[update][0][status_id]=142&leads[update][0][updated_at]=100\
            &leads[status][0][id]=5&leads[status][0][status_id]=142\
            &leads[add][0][id]=6&leads[add][1][id]=6&customers[restore][0][id]=8\
            &contacts[delete][0][id]=9&contacts[restore][0][id]=10&contacts[restore][0][name]=Ann";
        let delivery = Delivery::parse(body).unwrap();
        let (changes, jobs) = delivery_changes(&delivery, 500);
        let contact = |id| EntityRef::new(EntityKind::Contact, id);
        assert!(changes.contains(&IndexChange::Delete { record: contact(9), at: 500 }));
        assert!(changes.contains(&IndexChange::Restore { record: contact(10) }));
        let lead = EntityRef::new(EntityKind::Lead, 5);
        let statuses: Vec<(Option<u64>, i64)> = changes
            .iter()
            .filter_map(|c| match c {
                IndexChange::Deal(d) if d.entity == lead => Some((d.status_id, d.updated_at)),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [(Some(142), 100), (Some(142), 500)]);
        // Only new or restored deals have links to read; lead 5 only changed.
        let new_lead = EntityRef::new(EntityKind::Lead, 6);
        let restored = EntityRef::new(EntityKind::Customer, 8);
        assert_eq!(jobs, [Job::refresh_deal_links(new_lead), Job::refresh_deal_links(restored)]);
    }
}
