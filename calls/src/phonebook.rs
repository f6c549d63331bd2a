//! An account's phonebook and Kommo's caller-ID rule over it: who is calling,
//! answered locally, with names, at no Kommo request.
//!
//! Kommo answers caller ID (`POST /api/v2/events`) by a documented rule on the
//! last 8 digits of the number ([`crate::phone::CALLER_ID_DIGITS`]):
//!
//! 1. Among the **contacts** holding the number only the oldest counts. If it
//!    has exactly one active lead or customer (the two counted together),
//!    that record is the answer, named after itself, or after the contact when
//!    it has no name. Otherwise the contact is the answer.
//! 2. With no such contact, the same with **companies**.
//! 3. Otherwise nobody: an unknown caller.
//!
//! [`Phonebook`] keeps exactly what that rule reads (the holders of numbers
//! with their creation order and names, and the leads and customers linked to
//! them with their state) and [`Phonebook::identify`] applies it. It also
//! says what Kommo's answer leaves out and a caller card needs: the contact or
//! company behind a lead, the company a contact belongs to, and the lead's
//! status and responsible user.
//!
//! The phonebook is plain data: the backend fills it from Kommo (paged
//! listings, then webhooks) and asks it on every ring. The sandbox keeps its
//! own, independent implementation of the rule, so that a property test can
//! hold this one to it.

use crate::entity::{EntityKind, EntityRef};
use crate::phone::{last_digits, CALLER_ID_DIGITS};
use std::collections::HashMap;

/// A contact or a company: a record that holds phone numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// A contact or a company ([`Phonebook::upsert_holder`] refuses others).
    pub entity: EntityRef,
    pub name: String,
    /// Kommo's `created_at` (Unix seconds): "the oldest contact" is the one
    /// with the smallest, ties broken by the smaller id.
    pub created_at: i64,
    /// The numbers as the CRM stores them, formatting and all.
    pub phones: Vec<String>,
    /// Kommo's `responsible_user_id` (0: not known).
    pub responsible_user_id: u64,
    /// A contact's company (Kommo's `_embedded.companies`; a contact belongs
    /// to one at most). Only the reference: the name is the company's own
    /// record in the phonebook, so a renamed company is named anew.
    pub company: Option<EntityRef>,
}

/// Whether a lead or customer is still in play. Kommo closes leads in the
/// statuses 142 (won) and 143 (lost), customers in their "lost" status; the
/// code that fills the phonebook knows the account's statuses and decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealState {
    Active,
    Closed,
}

/// A lead or a customer: the records caller ID prefers over their holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deal {
    /// A lead or a customer ([`Phonebook::upsert_deal`] refuses others).
    pub entity: EntityRef,
    pub name: String,
    pub state: DealState,
    pub status_id: u64,
    pub pipeline_id: u64,
    pub responsible_user_id: u64,
    /// The contacts and companies the record is linked to, as Kommo's
    /// `_embedded.contacts` / `_embedded.companies` list them.
    pub holders: Vec<EntityRef>,
}

/// Who is calling, by Kommo's rule, with what a caller card shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The record Kommo's caller ID answers (`element_type`/`element_id`).
    pub element: EntityRef,
    /// The name Kommo shows for it: the lead's or customer's, falling back to
    /// the holder's when the record has none.
    pub name: String,
    /// The contact or company that holds the number.
    pub holder: EntityRef,
    pub holder_name: String,
    /// The company of the holder, when the holder is a contact linked to a
    /// company the phonebook holds: its reference and name.
    pub company: Option<(EntityRef, String)>,
    /// The lead or customer picked, when exactly one was active.
    pub deal: Option<DealSummary>,
    /// The responsible user of [`Caller::element`] (0: not known): who the
    /// PBX routes the call to (`GET /pbx/{account_id}/route`).
    pub responsible_user_id: u64,
}

/// What a caller card says about the lead or customer picked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealSummary {
    pub entity: EntityRef,
    pub status_id: u64,
    pub pipeline_id: u64,
    pub responsible_user_id: u64,
}

/// Why a record cannot go into the phonebook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrongKind(pub EntityRef);

impl std::fmt::Display for WrongKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a {} cannot be stored there", self.0.kind)
    }
}

impl std::error::Error for WrongKind {}

/// One account's phonebook. Every change keeps the reverse indexes (number →
/// holders, holder → deals) in step, so [`Phonebook::identify`] reads only
/// the records that hold the number.
#[derive(Clone, Debug, Default)]
pub struct Phonebook {
    holders: HashMap<EntityRef, Holder>,
    deals: HashMap<EntityRef, Deal>,
    /// Last 8 digits → the holders with such a number (each once).
    by_number: HashMap<String, Vec<EntityRef>>,
    /// Holder → the deals linked to it (each once).
    deals_of: HashMap<EntityRef, Vec<EntityRef>>,
}

impl Phonebook {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many contacts and companies, leads and customers it holds.
    pub fn len(&self) -> (usize, usize) {
        (self.holders.len(), self.deals.len())
    }

    pub fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.deals.is_empty()
    }

    /// Adds a contact or company, or replaces it (names and numbers change;
    /// its links to deals stay).
    pub fn upsert_holder(&mut self, holder: Holder) -> Result<(), WrongKind> {
        if !matches!(holder.entity.kind, EntityKind::Contact | EntityKind::Company) {
            return Err(WrongKind(holder.entity));
        }
        if let Some(company) = holder.company.filter(|c| c.kind != EntityKind::Company) {
            return Err(WrongKind(company));
        }
        self.unindex_numbers(holder.entity);
        for key in number_keys(&holder.phones) {
            push_once(self.by_number.entry(key).or_default(), holder.entity);
        }
        self.holders.insert(holder.entity, holder);
        Ok(())
    }

    /// Adds a lead or customer, or replaces it (state and links change).
    pub fn upsert_deal(&mut self, deal: Deal) -> Result<(), WrongKind> {
        if !matches!(deal.entity.kind, EntityKind::Lead | EntityKind::Customer) {
            return Err(WrongKind(deal.entity));
        }
        self.unlink_deal(deal.entity);
        for holder in &deal.holders {
            push_once(self.deals_of.entry(*holder).or_default(), deal.entity);
        }
        self.deals.insert(deal.entity, deal);
        Ok(())
    }

    /// Forgets a record of any kind (Kommo deleted it). Deals that were linked
    /// to a removed holder keep their link, as Kommo restores it with the
    /// record; it simply leads nowhere while the holder is gone.
    pub fn remove(&mut self, entity: EntityRef) {
        match entity.kind {
            EntityKind::Contact | EntityKind::Company => {
                self.unindex_numbers(entity);
                self.holders.remove(&entity);
            }
            EntityKind::Lead | EntityKind::Customer => {
                self.unlink_deal(entity);
                self.deals.remove(&entity);
            }
        }
    }

    pub fn holder(&self, entity: EntityRef) -> Option<&Holder> {
        self.holders.get(&entity)
    }

    pub fn deal(&self, entity: EntityRef) -> Option<&Deal> {
        self.deals.get(&entity)
    }

    /// Kommo's caller-ID rule (see the module doc) for `number`, formatted
    /// any way. A number without digits matches nobody.
    pub fn identify(&self, number: &str) -> Option<Caller> {
        let key = last_digits(number, CALLER_ID_DIGITS);
        if key.is_empty() {
            return None;
        }
        let candidates = self.by_number.get(&key)?;
        [EntityKind::Contact, EntityKind::Company].into_iter().find_map(|kind| {
            let holder = candidates
                .iter()
                .filter(|r| r.kind == kind)
                .filter_map(|r| self.holders.get(r))
                .min_by_key(|h| (h.created_at, h.entity.id))?;
            Some(self.caller_for(holder))
        })
    }

    fn caller_for(&self, holder: &Holder) -> Caller {
        let mut active = self
            .deals_of
            .get(&holder.entity)
            .into_iter()
            .flatten()
            .filter_map(|r| self.deals.get(r))
            .filter(|d| d.state == DealState::Active);
        let only = match (active.next(), active.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        };
        let (element, name) = match only {
            Some(deal) if !deal.name.trim().is_empty() => (deal.entity, deal.name.clone()),
            Some(deal) => (deal.entity, holder.name.clone()),
            None => (holder.entity, holder.name.clone()),
        };
        Caller {
            element,
            name,
            holder: holder.entity,
            holder_name: holder.name.clone(),
            company: holder
                .company
                .filter(|_| holder.entity.kind == EntityKind::Contact)
                .and_then(|c| self.holders.get(&c))
                .map(|c| (c.entity, c.name.clone())),
            deal: only.map(|d| DealSummary {
                entity: d.entity,
                status_id: d.status_id,
                pipeline_id: d.pipeline_id,
                responsible_user_id: d.responsible_user_id,
            }),
            responsible_user_id: only.map_or(holder.responsible_user_id, |d| d.responsible_user_id),
        }
    }

    fn unindex_numbers(&mut self, holder: EntityRef) {
        let Some(old) = self.holders.get(&holder) else { return };
        for key in number_keys(&old.phones) {
            if let Some(list) = self.by_number.get_mut(&key) {
                list.retain(|r| *r != holder);
                if list.is_empty() {
                    self.by_number.remove(&key);
                }
            }
        }
    }

    fn unlink_deal(&mut self, deal: EntityRef) {
        let Some(old) = self.deals.get(&deal) else { return };
        for holder in &old.holders {
            if let Some(list) = self.deals_of.get_mut(holder) {
                list.retain(|r| *r != deal);
                if list.is_empty() {
                    self.deals_of.remove(holder);
                }
            }
        }
    }
}

/// The distinct caller-ID keys of a holder's numbers (numbers without digits
/// have none).
fn number_keys(phones: &[String]) -> Vec<String> {
    let mut keys: Vec<String> =
        phones.iter().map(|p| last_digits(p, CALLER_ID_DIGITS)).filter(|k| !k.is_empty()).collect();
    keys.sort();
    keys.dedup();
    keys
}

fn push_once(list: &mut Vec<EntityRef>, entity: EntityRef) {
    if !list.contains(&entity) {
        list.push(entity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(id: u64, name: &str, created_at: i64, phones: &[&str]) -> Holder {
        Holder {
            entity: EntityRef::new(EntityKind::Contact, id),
            name: name.into(),
            created_at,
            phones: phones.iter().map(|p| p.to_string()).collect(),
            responsible_user_id: 900 + id,
            company: None,
        }
    }

    fn company(id: u64, name: &str, phones: &[&str]) -> Holder {
        Holder { entity: EntityRef::new(EntityKind::Company, id), ..contact(id, name, 1, phones) }
    }

    fn lead(id: u64, name: &str, state: DealState, holders: &[EntityRef]) -> Deal {
        Deal {
            entity: EntityRef::new(EntityKind::Lead, id),
            name: name.into(),
            state,
            status_id: if state == DealState::Active { 7 } else { 142 },
            pipeline_id: 3,
            responsible_user_id: 8_320_148,
            holders: holders.to_vec(),
        }
    }

    fn maria() -> (Phonebook, EntityRef) {
        let mut book = Phonebook::new();
        let maria = contact(10, "Maria Gonzalez", 100, &["+1 (830) 570-30-77"]);
        let r = maria.entity;
        book.upsert_holder(maria).unwrap();
        (book, r)
    }

    #[test]
    fn one_active_lead_is_the_answer_and_the_contact_is_named_too() {
        let (mut book, maria) = maria();
        book.upsert_deal(lead(50, "Website redesign", DealState::Active, &[maria])).unwrap();
        book.upsert_deal(lead(51, "Old order", DealState::Closed, &[maria])).unwrap();
        let caller = book.identify("18305703077").unwrap();
        assert_eq!(caller.element, EntityRef::new(EntityKind::Lead, 50));
        assert_eq!(caller.name, "Website redesign");
        assert_eq!(caller.holder_name, "Maria Gonzalez");
        assert_eq!(caller.deal.map(|d| (d.status_id, d.responsible_user_id)), Some((7, 8_320_148)));
    }

    #[test]
    fn an_unnamed_lead_takes_the_contacts_name() {
        let (mut book, maria) = maria();
        book.upsert_deal(lead(50, " ", DealState::Active, &[maria])).unwrap();
        let caller = book.identify("+18305703077").unwrap();
        assert_eq!((caller.element.kind, caller.name.as_str()), (EntityKind::Lead, "Maria Gonzalez"));
    }

    #[test]
    fn none_or_two_active_deals_give_the_contact() {
        let (mut book, maria) = maria();
        assert_eq!(book.identify("+18305703077").unwrap().element, maria);
        book.upsert_deal(lead(50, "A", DealState::Active, &[maria])).unwrap();
        let customer =
            Deal { entity: EntityRef::new(EntityKind::Customer, 60), ..lead(60, "B", DealState::Active, &[maria]) };
        book.upsert_deal(customer).unwrap();
        let caller = book.identify("+18305703077").unwrap();
        assert_eq!((caller.element, caller.deal), (maria, None));
    }

    #[test]
    fn only_the_last_eight_digits_count_and_the_oldest_contact_wins() {
        let (mut book, _) = maria();
        book.upsert_holder(contact(5, "Younger id, newer", 200, &["7705703077"])).unwrap();
        book.upsert_holder(contact(11, "Same age, larger id", 100, &["05703077"])).unwrap();
        assert_eq!(book.identify("+44 05703077").unwrap().name, "Maria Gonzalez");
        assert_eq!(book.identify("5703077"), None, "seven digits are another key");
    }

    #[test]
    fn a_contact_outranks_an_older_company_and_companies_come_next() {
        let mut book = Phonebook::new();
        book.upsert_holder(Holder { created_at: 1, ..company(1, "Globex", &["+1 555 0100 200"]) }).unwrap();
        assert_eq!(book.identify("15550100200").unwrap().name, "Globex");
        book.upsert_holder(contact(2, "Lucas Brown", 9, &["15550100200"])).unwrap();
        assert_eq!(book.identify("15550100200").unwrap().name, "Lucas Brown");
    }

    #[test]
    fn changes_and_deletions_move_the_answer() {
        let (mut book, maria) = maria();
        book.upsert_deal(lead(50, "Website redesign", DealState::Active, &[maria])).unwrap();
        // The lead is won: the contact is the answer again.
        book.upsert_deal(lead(50, "Website redesign", DealState::Closed, &[maria])).unwrap();
        assert_eq!(book.identify("+18305703077").unwrap().element, maria);
        // Renamed, then her number changes: the old number is unknown.
        book.upsert_holder(contact(10, "Maria G. Lopez", 100, &["+1 830 570 9999"])).unwrap();
        assert_eq!(book.identify("+18305703077"), None);
        assert_eq!(book.identify("+18305709999").unwrap().name, "Maria G. Lopez");
        book.remove(maria);
        assert_eq!(book.identify("+18305709999"), None);
        assert_eq!(book.len(), (0, 1));
    }

    #[test]
    fn a_contacts_company_is_named_from_its_own_record() {
        let mut book = Phonebook::new();
        let studio = company(20, "Gonzalez Design Studio", &["+1 830 570 3000"]);
        let maria = Holder { company: Some(studio.entity), ..contact(10, "Maria Gonzalez", 100, &["+18305703077"]) };
        book.upsert_holder(maria.clone()).unwrap();
        // Not in the phonebook (yet): no company to name.
        assert_eq!(book.identify("+18305703077").unwrap().company, None);
        book.upsert_holder(studio.clone()).unwrap();
        let named = |book: &Phonebook| book.identify("+18305703077").unwrap().company;
        assert_eq!(named(&book), Some((studio.entity, "Gonzalez Design Studio".to_string())));
        // Renamed: the next answer says the new name.
        book.upsert_holder(Holder { name: "Gonzalez Studio".into(), ..studio.clone() }).unwrap();
        assert_eq!(named(&book).map(|c| c.1).as_deref(), Some("Gonzalez Studio"));
        // The company itself calling has no company.
        assert_eq!(book.identify("+1 830 570 3000").unwrap().company, None);
        book.remove(studio.entity);
        assert_eq!(named(&book), None);
    }

    #[test]
    fn wrong_kinds_and_numbers_without_digits_are_refused() {
        let mut book = Phonebook::new();
        let not_a_holder = Holder { entity: EntityRef::new(EntityKind::Lead, 1), ..contact(1, "x", 1, &["1"]) };
        assert!(book.upsert_holder(not_a_holder).is_err());
        let lead_as_company =
            Holder { company: Some(EntityRef::new(EntityKind::Lead, 2)), ..contact(1, "x", 1, &["1"]) };
        assert!(book.upsert_holder(lead_as_company).is_err());
        book.upsert_holder(contact(1, "Anonymous", 1, &["anonymous", ""])).unwrap();
        assert_eq!(book.identify("anonymous"), None);
        assert_eq!(book.identify(""), None);
    }
}
