//! The account's data, in memory: one plain struct ([`Store`]) behind one mutex.
//!
//! Handlers lock, do a small amount of work (hash lookups, a walk over one
//! entity's links or notes) and unlock; nothing awaits while holding the lock.
//! The indexes ([`Store::phone_index`], links, notes/tasks/calls per entity)
//! are what keep caller ID and call matching O(matches) rather than
//! O(account), so the sandbox never becomes the bottleneck of a benchmark.
//! They are not serialized: a snapshot holds the plain records and
//! [`Store::reindex`] rebuilds the indexes after loading.

use callcard_calls::phone::{last_digits, CALLER_ID_DIGITS};
use callcard_calls::{EntityKind, EntityRef};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch: the unit of every Kommo timestamp.
pub fn now_secs() -> i64 {
    (now_millis() / 1000) as i64
}

/// Milliseconds since the epoch, for token expiry (tests use sub-second lifetimes).
pub fn now_millis() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

pub const ALL_KINDS: [EntityKind; 4] =
    [EntityKind::Contact, EntityKind::Company, EntityKind::Lead, EntityKind::Customer];

/// The default pipeline and its statuses. 142 ("won") and 143 ("lost") are
/// Kommo's fixed closed statuses in every pipeline; everything else is active.
pub const PIPELINE_ID: u64 = 7_100_001;
pub const STATUS_INCOMING: u64 = 7_100_010;
pub const STATUS_FIRST_CONTACT: u64 = 7_100_011;
pub const STATUS_NEGOTIATION: u64 = 7_100_012;
pub const STATUS_DECISION: u64 = 7_100_013;
pub const STATUS_WON: u64 = 142;
pub const STATUS_LOST: u64 = 143;
/// Customer statuses (Kommo's customer "segments"). Which customers count as
/// "active" for caller ID and call matching is unconfirmed; the sandbox
/// treats a customer in the "lost" status as closed and every other as active.
pub const CUSTOMER_STATUS_RECURRING: u64 = 9_100_001;
pub const CUSTOMER_STATUS_EXPECTED: u64 = 9_100_002;
pub const CUSTOMER_STATUS_LOST: u64 = 9_100_003;

/// The phone custom field's id (Kommo gives each account its own ids; the
/// `field_code: "PHONE"` is the stable part).
pub const PHONE_FIELD_ID: u64 = 264_911;
pub const EMAIL_FIELD_ID: u64 = 264_913;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    pub id: u64,
    pub name: String,
    pub subdomain: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub lang: String,
    /// Not a Kommo field: the PBX extension the demo suggests for this user.
    pub extension: String,
    pub is_admin: bool,
}

/// One value of a multi-value custom field (`PHONE`, `EMAIL`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FieldValue {
    pub value: String,
    /// `WORK`, `MOB`, `HOME`, `OTHER`, ...
    pub enum_code: String,
}

/// A contact, company, lead or customer. One struct for all four because
/// Kommo's records share almost everything; kind-specific fields are zero
/// where they do not apply.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    pub id: u64,
    pub name: String,
    pub first_name: String,
    pub last_name: String,
    pub phones: Vec<FieldValue>,
    pub emails: Vec<FieldValue>,
    /// Custom fields other than PHONE/EMAIL, kept as sent.
    pub other_fields: Vec<Value>,
    /// Leads: `price`; customers: `next_price`.
    pub price: i64,
    /// Leads and customers.
    pub status_id: u64,
    pub pipeline_id: u64,
    pub responsible_user_id: u64,
    pub created_by: u64,
    pub updated_by: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

impl Entity {
    pub fn new(kind: EntityKind, id: u64, name: impl Into<String>, at: i64, user: u64) -> Self {
        let (status_id, pipeline_id) = match kind {
            EntityKind::Lead => (STATUS_FIRST_CONTACT, PIPELINE_ID),
            EntityKind::Customer => (CUSTOMER_STATUS_RECURRING, 0),
            _ => (0, 0),
        };
        Self {
            kind,
            id,
            name: name.into(),
            first_name: String::new(),
            last_name: String::new(),
            phones: Vec::new(),
            emails: Vec::new(),
            other_fields: Vec::new(),
            price: 0,
            status_id,
            pipeline_id,
            responsible_user_id: user,
            created_by: user,
            updated_by: user,
            created_at: at,
            updated_at: at,
            closed_at: None,
        }
    }

    pub fn entity_ref(&self) -> EntityRef {
        EntityRef::new(self.kind, self.id)
    }

    /// Whether a lead or customer is still in play: leads outside the closed
    /// statuses 142/143, customers outside the "lost" status. Contacts and
    /// companies are never "active" in this sense.
    pub fn is_active(&self) -> bool {
        match self.kind {
            EntityKind::Lead => self.status_id != STATUS_WON && self.status_id != STATUS_LOST,
            EntityKind::Customer => self.status_id != CUSTOMER_STATUS_LOST,
            _ => false,
        }
    }
}

/// A link between two records (contact-lead, company-contact, ...).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Link {
    pub from: EntityRef,
    pub to: EntityRef,
    pub metadata: Value,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    pub entity: EntityRef,
    /// `call_in`, `call_out`, `common` or `service_message`.
    pub note_type: String,
    pub params: Value,
    pub created_by: u64,
    pub updated_by: u64,
    pub responsible_user_id: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A call added through `POST /api/v4/calls`. Kommo keeps it as a
/// `call_in`/`call_out` note on the matched record; `id == note_id`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallRecord {
    pub id: u64,
    pub note_id: u64,
    pub entity: EntityRef,
    pub direction: String,
    pub duration: u64,
    pub source: String,
    pub phone: String,
    pub uniq: Option<String>,
    pub link: Option<String>,
    pub call_result: Option<String>,
    pub call_status: Option<u64>,
    pub responsible_user_id: u64,
    pub created_by: u64,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Task {
    pub id: u64,
    pub entity: Option<EntityRef>,
    pub text: String,
    pub complete_till: i64,
    pub task_type_id: u64,
    pub responsible_user_id: u64,
    pub created_by: u64,
    pub updated_by: u64,
    pub created_at: i64,
    pub updated_at: i64,
    pub is_completed: bool,
    pub result_text: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnsortedStatus {
    Pending,
    Accepted,
    Declined,
}

/// An incoming lead (`unsorted`, category `sip`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Unsorted {
    pub uid: String,
    pub source_uid: String,
    pub source_name: String,
    pub pipeline_id: u64,
    pub created_at: i64,
    pub metadata: Value,
    pub leads: Vec<u64>,
    pub contacts: Vec<u64>,
    pub companies: Vec<u64>,
    pub status: UnsortedStatus,
    pub processed_at: Option<i64>,
    pub processed_by: Option<u64>,
}

/// A caller-ID notification created by `POST /api/v2/events`, kept so the
/// inspection view can show what the product asked and what Kommo answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallerIdEvent {
    pub uid: String,
    pub at: i64,
    pub phone_number: String,
    pub query_string: String,
    pub users: Vec<u64>,
    pub element: Option<EntityRef>,
    /// The caller's name as Kommo shows it in the notification.
    pub name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessToken {
    pub user_id: u64,
    pub expires_at_ms: u128,
    pub revoked: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefreshToken {
    pub user_id: u64,
    pub expires_at_ms: u128,
    /// Refresh tokens rotate: each can be exchanged once.
    pub used: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuthCode {
    pub user_id: u64,
    pub expires_at_ms: u128,
    pub used: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tokens {
    pub access: HashMap<String, AccessToken>,
    pub refresh: HashMap<String, RefreshToken>,
    pub codes: HashMap<String, AuthCode>,
}

/// Counters for the ids Kommo would assign. Separate ranges per record type
/// make ids in logs recognisable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ids {
    pub contact: u64,
    pub company: u64,
    pub lead: u64,
    pub customer: u64,
    pub note: u64,
    pub task: u64,
}

impl Default for Ids {
    fn default() -> Self {
        Self {
            contact: 20_100_001,
            company: 30_100_001,
            lead: 5_756_100,
            customer: 1_200_001,
            note: 90_000_001,
            task: 40_000_001,
        }
    }
}

/// The whole account.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Store {
    pub account: Account,
    pub users: Vec<User>,
    pub ids: Ids,
    pub contacts: BTreeMap<u64, Entity>,
    pub companies: BTreeMap<u64, Entity>,
    pub leads: BTreeMap<u64, Entity>,
    pub customers: BTreeMap<u64, Entity>,
    pub links: Vec<Link>,
    pub notes: BTreeMap<u64, Note>,
    pub calls: Vec<CallRecord>,
    pub tasks: BTreeMap<u64, Task>,
    pub unsorted: BTreeMap<String, Unsorted>,
    pub caller_id_events: Vec<CallerIdEvent>,
    pub widget_settings: Value,
    pub tokens: Tokens,
    /// `POST /api/v4/webhooks` subscriptions ([`crate::webhooks`]).
    #[serde(default)]
    pub webhooks: Vec<Subscription>,
    /// Records deleted in "Kommo's interface", with their links, until restored.
    #[serde(default)]
    pub trash: Vec<(Entity, Vec<Link>)>,
    /// Changes made since the last delivery, while anyone is subscribed.
    #[serde(skip)]
    pub webhook_outbox: Vec<Change>,

    /// Last 8 digits of every PHONE value → the records holding it.
    #[serde(skip)]
    pub phone_index: HashMap<String, Vec<EntityRef>>,
    /// Both directions of every link: record → (other record, index in `links`).
    #[serde(skip)]
    pub link_index: HashMap<EntityRef, Vec<EntityRef>>,
    #[serde(skip)]
    pub notes_by_entity: HashMap<EntityRef, Vec<u64>>,
    #[serde(skip)]
    pub tasks_by_entity: HashMap<EntityRef, Vec<u64>>,
    #[serde(skip)]
    pub calls_by_entity: HashMap<EntityRef, Vec<usize>>,
}

impl Store {
    /// An account with users and nothing else.
    pub fn empty(account: Account, users: Vec<User>) -> Self {
        Self {
            account,
            users,
            ids: Ids::default(),
            contacts: BTreeMap::new(),
            companies: BTreeMap::new(),
            leads: BTreeMap::new(),
            customers: BTreeMap::new(),
            links: Vec::new(),
            notes: BTreeMap::new(),
            calls: Vec::new(),
            tasks: BTreeMap::new(),
            unsorted: BTreeMap::new(),
            caller_id_events: Vec::new(),
            widget_settings: Value::Object(Default::default()),
            tokens: Tokens::default(),
            webhooks: Vec::new(),
            trash: Vec::new(),
            webhook_outbox: Vec::new(),
            phone_index: HashMap::new(),
            link_index: HashMap::new(),
            notes_by_entity: HashMap::new(),
            tasks_by_entity: HashMap::new(),
            calls_by_entity: HashMap::new(),
        }
    }

    pub fn map(&self, kind: EntityKind) -> &BTreeMap<u64, Entity> {
        match kind {
            EntityKind::Contact => &self.contacts,
            EntityKind::Company => &self.companies,
            EntityKind::Lead => &self.leads,
            EntityKind::Customer => &self.customers,
        }
    }

    fn map_mut(&mut self, kind: EntityKind) -> &mut BTreeMap<u64, Entity> {
        match kind {
            EntityKind::Contact => &mut self.contacts,
            EntityKind::Company => &mut self.companies,
            EntityKind::Lead => &mut self.leads,
            EntityKind::Customer => &mut self.customers,
        }
    }

    pub fn get(&self, r: EntityRef) -> Option<&Entity> {
        self.map(r.kind).get(&r.id)
    }

    pub fn exists(&self, r: EntityRef) -> bool {
        self.get(r).is_some()
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn next_id(&mut self, kind: EntityKind) -> u64 {
        let c = match kind {
            EntityKind::Contact => &mut self.ids.contact,
            EntityKind::Company => &mut self.ids.company,
            EntityKind::Lead => &mut self.ids.lead,
            EntityKind::Customer => &mut self.ids.customer,
        };
        let id = *c;
        *c += 1;
        id
    }

    pub fn next_note_id(&mut self) -> u64 {
        let id = self.ids.note;
        self.ids.note += 1;
        id
    }

    pub fn next_task_id(&mut self) -> u64 {
        let id = self.ids.task;
        self.ids.task += 1;
        id
    }

    /// Adds or replaces a record, keeping the phone index right.
    pub fn put(&mut self, e: Entity) {
        let r = e.entity_ref();
        if !self.webhooks.is_empty() {
            let changes = changes_of(self.get(r), &e);
            self.webhook_outbox.extend(changes);
        }
        self.unindex_phones(r);
        for p in &e.phones {
            let key = last_digits(&p.value, CALLER_ID_DIGITS);
            if !key.is_empty() {
                let v = self.phone_index.entry(key).or_default();
                if !v.contains(&r) {
                    v.push(r);
                }
            }
        }
        self.map_mut(r.kind).insert(r.id, e);
    }

    fn unindex_phones(&mut self, r: EntityRef) {
        let Some(old) = self.get(r) else { return };
        let keys: Vec<String> = old.phones.iter().map(|p| last_digits(&p.value, CALLER_ID_DIGITS)).collect();
        for k in keys {
            if let Some(v) = self.phone_index.get_mut(&k) {
                v.retain(|x| *x != r);
                if v.is_empty() {
                    self.phone_index.remove(&k);
                }
            }
        }
    }

    /// Deletes a record with its links (declined incoming leads).
    pub fn remove(&mut self, r: EntityRef) {
        if let (false, Some(gone)) = (self.webhooks.is_empty(), self.get(r)) {
            let change = Change { action: Action::Delete, entity: gone.clone(), old_status_id: None };
            self.webhook_outbox.push(change);
        }
        self.unindex_phones(r);
        self.map_mut(r.kind).remove(&r.id);
        let linked = self.link_index.remove(&r).unwrap_or_default();
        for other in linked {
            if let Some(v) = self.link_index.get_mut(&other) {
                v.retain(|x| *x != r);
            }
        }
        self.links.retain(|l| l.from != r && l.to != r);
    }

    /// Deletes a record as a person does in Kommo's interface: it can be
    /// restored, links and all. False when there is no such record.
    pub fn trash_record(&mut self, r: EntityRef) -> bool {
        let Some(e) = self.get(r).cloned() else { return false };
        let links = self.links.iter().filter(|l| l.from == r || l.to == r).cloned().collect();
        self.remove(r);
        self.trash.push((e, links));
        true
    }

    /// Brings a deleted record back with the links whose other end still
    /// exists. False when it is not in the trash.
    pub fn restore_record(&mut self, r: EntityRef) -> bool {
        let Some(i) = self.trash.iter().position(|(e, _)| e.entity_ref() == r) else { return false };
        let (e, links) = self.trash.remove(i);
        if !self.webhooks.is_empty() {
            let change = Change { action: Action::Restore, entity: e.clone(), old_status_id: None };
            self.webhook_outbox.push(change);
        }
        // Restoring is not an "add": put without recording a change.
        let outbox = std::mem::take(&mut self.webhook_outbox);
        self.put(e);
        self.webhook_outbox = outbox;
        for l in links {
            let other = if l.from == r { l.to } else { l.from };
            if self.exists(other) {
                self.link(l.from, l.to, l.metadata);
            }
        }
        true
    }

    /// Records whose PHONE ends with the same last 8 digits as `phone`: the
    /// candidates of both caller ID (8 digits) and call matching (which
    /// narrows them to 10 digits).
    pub fn phone_candidates(&self, phone: &str) -> &[EntityRef] {
        let key = last_digits(phone, CALLER_ID_DIGITS);
        if key.is_empty() {
            return &[];
        }
        self.phone_index.get(&key).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn linked(&self, r: EntityRef) -> &[EntityRef] {
        self.link_index.get(&r).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_linked(&self, a: EntityRef, b: EntityRef) -> bool {
        self.linked(a).contains(&b)
    }

    /// Links two records (idempotent). Returns false when they already were.
    pub fn link(&mut self, from: EntityRef, to: EntityRef, metadata: Value) -> bool {
        if self.is_linked(from, to) {
            return false;
        }
        self.links.push(Link { from, to, metadata });
        self.link_index.entry(from).or_default().push(to);
        self.link_index.entry(to).or_default().push(from);
        true
    }

    /// Unlinks two records. Returns false when they were not linked.
    pub fn unlink(&mut self, a: EntityRef, b: EntityRef) -> bool {
        if !self.is_linked(a, b) {
            return false;
        }
        self.links.retain(|l| !((l.from == a && l.to == b) || (l.from == b && l.to == a)));
        if let Some(v) = self.link_index.get_mut(&a) {
            v.retain(|x| *x != b);
        }
        if let Some(v) = self.link_index.get_mut(&b) {
            v.retain(|x| *x != a);
        }
        true
    }

    pub fn link_metadata(&self, a: EntityRef, b: EntityRef) -> Option<&Value> {
        self.links.iter().find(|l| (l.from == a && l.to == b) || (l.from == b && l.to == a)).map(|l| &l.metadata)
    }

    /// Linked records of one kind, oldest first.
    pub fn linked_of(&self, r: EntityRef, kind: EntityKind) -> Vec<&Entity> {
        let mut v: Vec<&Entity> =
            self.linked(r).iter().filter(|x| x.kind == kind).filter_map(|x| self.get(*x)).collect();
        v.sort_by_key(|e| (e.created_at, e.id));
        v
    }

    pub fn add_note(&mut self, note: Note) {
        self.notes_by_entity.entry(note.entity).or_default().push(note.id);
        self.notes.insert(note.id, note);
    }

    pub fn notes_of(&self, r: EntityRef) -> Vec<&Note> {
        self.notes_by_entity
            .get(&r)
            .map(|ids| ids.iter().filter_map(|id| self.notes.get(id)).collect())
            .unwrap_or_default()
    }

    pub fn add_task(&mut self, task: Task) {
        if let Some(r) = task.entity {
            self.tasks_by_entity.entry(r).or_default().push(task.id);
        }
        self.tasks.insert(task.id, task);
    }

    pub fn tasks_of(&self, r: EntityRef) -> Vec<&Task> {
        self.tasks_by_entity
            .get(&r)
            .map(|ids| ids.iter().filter_map(|id| self.tasks.get(id)).collect())
            .unwrap_or_default()
    }

    pub fn add_call(&mut self, call: CallRecord) {
        self.calls_by_entity.entry(call.entity).or_default().push(self.calls.len());
        self.calls.push(call);
    }

    pub fn calls_of(&self, r: EntityRef) -> Vec<&CallRecord> {
        self.calls_by_entity
            .get(&r)
            .map(|ix| ix.iter().filter_map(|i| self.calls.get(*i)).collect())
            .unwrap_or_default()
    }

    /// Rebuilds every index from the records (after loading a snapshot).
    pub fn reindex(&mut self) {
        self.phone_index.clear();
        self.link_index.clear();
        self.notes_by_entity.clear();
        self.tasks_by_entity.clear();
        self.calls_by_entity.clear();
        for kind in ALL_KINDS {
            let all: Vec<Entity> = self.map(kind).values().cloned().collect();
            for e in all {
                self.put(e);
            }
        }
        for l in &self.links {
            self.link_index.entry(l.from).or_default().push(l.to);
            self.link_index.entry(l.to).or_default().push(l.from);
        }
        for n in self.notes.values() {
            self.notes_by_entity.entry(n.entity).or_default().push(n.id);
        }
        for t in self.tasks.values() {
            if let Some(r) = t.entity {
                self.tasks_by_entity.entry(r).or_default().push(t.id);
            }
        }
        for (i, c) in self.calls.iter().enumerate() {
            self.calls_by_entity.entry(c.entity).or_default().push(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::empty(Account { id: 1, name: "a".into(), subdomain: "a".into(), created_at: 0 }, vec![])
    }

    #[test]
    fn phone_index_follows_updates_and_removal() {
        let mut s = store();
        let mut c = Entity::new(EntityKind::Contact, 1, "A", 0, 0);
        c.phones.push(FieldValue { value: "+1 830 570-30-77".into(), enum_code: "WORK".into() });
        s.put(c.clone());
        assert_eq!(s.phone_candidates("18305703077").len(), 1);
        c.phones[0].value = "+1 212 555 0147".into();
        s.put(c);
        assert!(s.phone_candidates("18305703077").is_empty());
        assert_eq!(s.phone_candidates("2125550147").len(), 1);
        s.remove(EntityRef::new(EntityKind::Contact, 1));
        assert!(s.phone_candidates("2125550147").is_empty());
    }

    #[test]
    fn links_are_symmetric_and_idempotent() {
        let mut s = store();
        let a = EntityRef::new(EntityKind::Contact, 1);
        let b = EntityRef::new(EntityKind::Lead, 2);
        assert!(s.link(a, b, Value::Null));
        assert!(!s.link(b, a, Value::Null));
        assert!(s.is_linked(b, a));
        assert!(s.unlink(b, a));
        assert!(!s.is_linked(a, b));
        assert!(s.links.is_empty());
    }
}

// Kommo's webhooks (`crate::webhooks` delivers them): the subscriptions
// and the changes waiting to be delivered, recorded here as records change.

/// One destination and the events it wants.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Subscription {
    pub id: u64,
    pub destination: String,
    pub settings: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: u64,
}

/// What happened to a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Update,
    Delete,
    Restore,
    /// A lead moved to another status (sent besides its `Update`).
    Status,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Restore => "restore",
            Self::Status => "status",
        }
    }
}

/// A change waiting to be delivered: the record as it is after the change.
#[derive(Clone, Debug)]
pub struct Change {
    pub action: Action,
    pub entity: Entity,
    pub old_status_id: Option<u64>,
}

impl Change {
    /// The subscription setting that asks for this change: `update_contact`.
    pub fn event_name(&self) -> String {
        format!("{}_{}", self.action.as_str(), self.entity.kind.as_str())
    }
}

/// The changes `put` makes to a record: `old` is the record before, if any.
pub fn changes_of(old: Option<&Entity>, new: &Entity) -> Vec<Change> {
    let Some(old) = old else {
        return vec![Change { action: Action::Add, entity: new.clone(), old_status_id: None }];
    };
    let mut changes = vec![Change { action: Action::Update, entity: new.clone(), old_status_id: None }];
    if new.kind == EntityKind::Lead && old.status_id != new.status_id {
        changes.push(Change { action: Action::Status, entity: new.clone(), old_status_id: Some(old.status_id) });
    }
    changes
}
