//! The demo account: believable data in which every branch of Kommo's
//! caller-ID rule (`POST /api/v2/events`) and call-matching rule
//! (`POST /api/v4/calls`) can be tried by hand, and which the conformance
//! tests use. [`numbers`] lists the phone numbers and what each exercises.
//!
//! Besides the branch records there are filler contacts, companies, leads
//! and customers (with unique numbers in area codes 720 and 480) so lists,
//! search and paging look like a real account.

use crate::host_page::initial_widget_settings;
use crate::store::*;
use callcard_calls::{EntityKind, EntityRef};
use serde_json::{json, Value};

/// The phone numbers of the demo account and the branch each exercises.
/// "Caller ID" is `POST /api/v2/events` (last 8 digits); "calls" is
/// `POST /api/v4/calls` (last 10 digits).
pub mod numbers {
    /// Maria Gonzalez: one active lead "Website redesign" (id 5756100, the id
    /// of Kommo's documented example) and one closed-lost lead.
    /// Caller ID → that lead, named "Website redesign"; calls → that lead.
    pub const CONTACT_ONE_ACTIVE_LEAD: &str = "+18305703077";
    /// Liam O'Brien: one active lead without a name.
    /// Caller ID → the lead, named "Liam O'Brien" (the contact); calls → the lead.
    pub const CONTACT_ONE_UNNAMED_LEAD: &str = "+14155550102";
    /// Sofia Rossi: two active leads. Caller ID → the contact; calls → the contact.
    pub const CONTACT_TWO_ACTIVE_LEADS: &str = "+12125550147";
    /// Oliver Smith (UK number): no leads. Caller ID and calls → the contact.
    pub const CONTACT_NO_LEADS: &str = "+44 20 7946 0958";
    /// Grace Lee: a won lead, a lost lead and a lost customer, nothing active.
    /// Caller ID and calls → the contact.
    pub const CONTACT_ONLY_CLOSED: &str = "+13125550191";
    /// Daniel Kim: one active customer, no leads.
    /// Caller ID → the customer, named after it; calls → the customer.
    pub const CONTACT_ONE_CUSTOMER: &str = "+13055550188";
    /// Isabella Garcia: one active lead and one active customer.
    /// Caller ID → the contact (two active records); calls → the contact.
    pub const CONTACT_LEAD_AND_CUSTOMER: &str = "+17135550142";
    /// On two contacts: Emma Johnson (older, one active lead "Fleet tracking
    /// pilot") and Noah Williams (newer, no leads). The oldest contact wins:
    /// caller ID and calls → Emma's lead.
    pub const SHARED_BY_TWO_CONTACTS: &str = "+16465550199";
    /// Ava Martin's second (mobile) number; her first is +1 702 555 0100. She
    /// has one active lead. Caller ID and calls → that lead.
    pub const CONTACT_SECOND_NUMBER: &str = "+17025550123";
    /// Same last 8 digits as Ava's mobile, other area code. Caller ID (8
    /// digits) → Ava's lead; calls (10 digits) → no match, not added.
    pub const SAME_LAST_8_OTHER_AREA: &str = "+16025550123";
    /// Northwind Traders (company only): one active lead.
    /// Caller ID → the lead, named after it; calls → the lead.
    pub const COMPANY_ONE_ACTIVE_LEAD: &str = "+15125550176";
    /// Globex Corporation (company only): no leads. Caller ID and calls → the company.
    pub const COMPANY_NO_LEADS: &str = "+16175550134";
    /// Umbrella Logistics (company only): two active leads.
    /// Caller ID and calls → the company.
    pub const COMPANY_TWO_ACTIVE_LEADS: &str = "+13035550117";
    /// Stark Supplies (company only): one active customer.
    /// Caller ID → the customer; calls → the customer.
    pub const COMPANY_ONE_CUSTOMER: &str = "+12065550163";
    /// On contact Lucas Brown (no leads) and company Initech (one active
    /// lead). Contacts come first: caller ID and calls → Lucas Brown.
    pub const CONTACT_AND_COMPANY: &str = "+13125550165";
    /// Nobody has it. Caller ID → empty list; calls → not added (per-item error).
    pub const UNKNOWN: &str = "+15035550111";
}

/// The demo users (docs/design.md).
pub fn demo_users() -> Vec<User> {
    let u = |id, name: &str, email: &str, ext: &str, admin| User {
        id,
        name: name.into(),
        email: email.into(),
        lang: "en".into(),
        extension: ext.into(),
        is_admin: admin,
    };
    vec![
        u(8_320_148, "Anna Petrova", "anna.petrova@acme.example", "101", true),
        u(8_375_357, "Bruno Costa", "bruno.costa@acme.example", "102", false),
        u(8_390_001, "Chen Wei", "chen.wei@acme.example", "103", false),
    ]
}

/// An empty demo account: the account, its users and the widget's settings.
pub fn empty_account(account_id: u64, subdomain: &str) -> Store {
    let users = demo_users();
    let mut st = Store::empty(
        Account { id: account_id, name: "Acme Inc.".into(), subdomain: subdomain.into(), created_at: T0 - 400 * DAY },
        users,
    );
    st.widget_settings = initial_widget_settings(&st.users);
    st
}

const DAY: i64 = 86_400;
/// 2023-01-01: seed records are created after it, in a fixed order, so
/// "oldest contact" is deterministic.
const T0: i64 = 1_672_531_200;

struct Seeder<'a> {
    st: &'a mut Store,
    /// Seconds after `T0` of the last record created.
    elapsed: i64,
    /// Seconds between two records' creation.
    step: i64,
}

impl Seeder<'_> {
    fn at(&mut self) -> i64 {
        self.elapsed += self.step;
        T0 + self.elapsed
    }

    fn user(&self, i: usize) -> u64 {
        self.st.users[i % self.st.users.len()].id
    }

    fn phones(list: &[&str]) -> Vec<FieldValue> {
        list.iter()
            .enumerate()
            .map(|(i, p)| FieldValue { value: p.to_string(), enum_code: if i == 0 { "WORK" } else { "MOB" }.into() })
            .collect()
    }

    fn contact(&mut self, first: &str, last: &str, phones: &[&str], email: Option<&str>) -> EntityRef {
        let id = self.st.next_id(EntityKind::Contact);
        let at = self.at();
        let mut e = Entity::new(EntityKind::Contact, id, format!("{first} {last}"), at, self.user(id as usize));
        e.first_name = first.into();
        e.last_name = last.into();
        e.phones = Self::phones(phones);
        if let Some(m) = email {
            e.emails.push(FieldValue { value: m.into(), enum_code: "WORK".into() });
        }
        self.st.put(e);
        EntityRef::new(EntityKind::Contact, id)
    }

    fn company(&mut self, name: &str, phones: &[&str]) -> EntityRef {
        let id = self.st.next_id(EntityKind::Company);
        let at = self.at();
        let mut e = Entity::new(EntityKind::Company, id, name, at, self.user(id as usize));
        e.phones = Self::phones(phones);
        self.st.put(e);
        EntityRef::new(EntityKind::Company, id)
    }

    fn lead(&mut self, name: &str, price: i64, status_id: u64, to: &[EntityRef]) -> EntityRef {
        let id = self.st.next_id(EntityKind::Lead);
        let at = self.at();
        let mut e = Entity::new(EntityKind::Lead, id, name, at, self.user(id as usize));
        e.price = price;
        e.status_id = status_id;
        if status_id == STATUS_WON || status_id == STATUS_LOST {
            e.closed_at = Some(at + 20 * DAY);
        }
        self.st.put(e);
        let r = EntityRef::new(EntityKind::Lead, id);
        for (i, c) in to.iter().enumerate() {
            let meta = if c.kind == EntityKind::Contact { json!({"is_main": i == 0}) } else { Value::Null };
            self.st.link(r, *c, meta);
        }
        r
    }

    fn customer(&mut self, name: &str, price: i64, status_id: u64, to: &[EntityRef]) -> EntityRef {
        let id = self.st.next_id(EntityKind::Customer);
        let at = self.at();
        let mut e = Entity::new(EntityKind::Customer, id, name, at, self.user(id as usize));
        e.price = price;
        e.status_id = status_id;
        self.st.put(e);
        let r = EntityRef::new(EntityKind::Customer, id);
        for c in to {
            self.st.link(r, *c, Value::Null);
        }
        r
    }

    fn note(&mut self, on: EntityRef, text: &str) {
        let id = self.st.next_note_id();
        let at = self.at();
        let user = self.user(id as usize);
        self.st.add_note(Note {
            id,
            entity: on,
            note_type: "common".into(),
            params: json!({"text": text}),
            created_by: user,
            updated_by: user,
            responsible_user_id: user,
            created_at: at,
            updated_at: at,
        });
    }

    fn task(&mut self, on: EntityRef, text: &str, in_days: i64) {
        let id = self.st.next_task_id();
        let at = self.at();
        let user = self.user(id as usize);
        self.st.add_task(Task {
            id,
            entity: Some(on),
            text: text.into(),
            complete_till: now_secs() + in_days * DAY,
            task_type_id: 1,
            responsible_user_id: user,
            created_by: user,
            updated_by: user,
            created_at: at,
            updated_at: at,
            is_completed: false,
            result_text: None,
        });
    }
}

/// Fills `st` with the demo data set.
pub fn seed(st: &mut Store) {
    use numbers::*;
    let mut s = Seeder { st, elapsed: 0, step: 3 * DAY };

    // --- Branch records (see `numbers`) ---------------------------------
    let gonzalez_studio = s.company("Gonzalez Design Studio", &["+1 830 570 3000"]);
    let maria = s.contact("Maria", "Gonzalez", &[CONTACT_ONE_ACTIVE_LEAD], Some("maria@gonzalez.example"));
    s.st.link(maria, gonzalez_studio, Value::Null);
    // The id of Kommo's documented caller-ID answer (element_id 5756100).
    let website = s.lead("Website redesign", 12_000, STATUS_NEGOTIATION, &[maria, gonzalez_studio]);
    s.lead("Logo refresh", 1_500, STATUS_LOST, &[maria]);
    s.note(website, "Wants the new site live before the spring campaign.");

    let liam = s.contact("Liam", "O'Brien", &[CONTACT_ONE_UNNAMED_LEAD], None);
    s.lead("", 0, STATUS_FIRST_CONTACT, &[liam]);

    let sofia = s.contact("Sofia", "Rossi", &["(212) 555-0147"], Some("sofia.rossi@example.com"));
    s.lead("Office chairs x40", 9_800, STATUS_NEGOTIATION, &[sofia]);
    let desks = s.lead("Standing desks", 14_300, STATUS_DECISION, &[sofia]);
    s.task(desks, "Send the revised quote for the standing desks", 2);

    s.contact("Oliver", "Smith", &[CONTACT_NO_LEADS], Some("oliver.smith@example.co.uk"));

    let grace = s.contact("Grace", "Lee", &["1-312-555-0191"], None);
    s.lead("Conference room kit", 4_200, STATUS_WON, &[grace]);
    s.lead("Spare headsets", 600, STATUS_LOST, &[grace]);
    s.customer("Lee Consulting retainer", 300, CUSTOMER_STATUS_LOST, &[grace]);

    let daniel = s.contact("Daniel", "Kim", &[CONTACT_ONE_CUSTOMER], None);
    s.customer("Kim Bakery weekly order", 450, CUSTOMER_STATUS_RECURRING, &[daniel]);

    let isabella = s.contact("Isabella", "Garcia", &[CONTACT_LEAD_AND_CUSTOMER], None);
    s.lead("Garcia Dental second office", 7_700, STATUS_FIRST_CONTACT, &[isabella]);
    s.customer("Garcia Dental support plan", 250, CUSTOMER_STATUS_EXPECTED, &[isabella]);

    let emma = s.contact("Emma", "Johnson", &["+1 646 555 0199"], Some("emma.johnson@example.com"));
    s.lead("Fleet tracking pilot", 22_000, STATUS_NEGOTIATION, &[emma]);

    let ava = s.contact("Ava", "Martin", &["+1 702 555 0100", "+1 (702) 555-0123"], None);
    s.lead("Call recording add-on", 3_100, STATUS_FIRST_CONTACT, &[ava]);

    let northwind = s.company("Northwind Traders", &[COMPANY_ONE_ACTIVE_LEAD]);
    s.lead("Northwind 200 headsets", 18_000, STATUS_DECISION, &[northwind]);

    s.company("Globex Corporation", &[COMPANY_NO_LEADS]);

    let umbrella = s.company("Umbrella Logistics", &[COMPANY_TWO_ACTIVE_LEADS, "+1 303 555 0118"]);
    s.lead("Umbrella warehouse phones", 11_000, STATUS_FIRST_CONTACT, &[umbrella]);
    s.lead("Umbrella call center", 31_000, STATUS_NEGOTIATION, &[umbrella]);

    let stark = s.company("Stark Supplies", &[COMPANY_ONE_CUSTOMER]);
    s.customer("Stark Supplies annual support", 2_400, CUSTOMER_STATUS_RECURRING, &[stark]);

    let lucas = s.contact("Lucas", "Brown", &[CONTACT_AND_COMPANY], None);
    let initech = s.company("Initech", &["+1 (312) 555-0165"]);
    s.st.link(lucas, initech, Value::Null);
    s.lead("Initech TPS hotline", 5_000, STATUS_FIRST_CONTACT, &[initech]);

    // Noah is created after Emma, so Emma stays the oldest holder of the shared number.
    s.contact("Noah", "Williams", &[SHARED_BY_TWO_CONTACTS], None);

    // --- Filler: an account that looks lived in --------------------------
    let companies: Vec<EntityRef> = [
        "Blue Harbor Foods",
        "Cedar & Pine Realty",
        "Delta Dental Group",
        "Evergreen Solar",
        "Fjord Analytics",
        "Harbor Freight Partners",
    ]
    .iter()
    .enumerate()
    .map(|(i, name)| {
        let phone = format!("+1 480 555 02{:02}", i + 1);
        s.company(name, &[phone.as_str()])
    })
    .collect();
    let people = [
        ("James", "Anderson"),
        ("Mia", "Thompson"),
        ("Ethan", "Clark"),
        ("Charlotte", "Lewis"),
        ("Benjamin", "Walker"),
        ("Amelia", "Hall"),
        ("Henry", "Allen"),
        ("Harper", "Young"),
        ("Alexander", "King"),
        ("Evelyn", "Wright"),
        ("Sebastian", "Scott"),
        ("Abigail", "Green"),
        ("Jack", "Baker"),
        ("Emily", "Adams"),
        ("Owen", "Nelson"),
        ("Ella", "Carter"),
        ("Samuel", "Mitchell"),
        ("Aria", "Perez"),
        ("Matthew", "Roberts"),
        ("Chloe", "Turner"),
    ];
    let deals = [
        "Annual CRM licences",
        "Call-center headsets",
        "VoIP migration",
        "Onboarding workshop",
        "Extra phone lines",
        "IVR redesign",
        "Sales team training",
        "Hardware refresh",
    ];
    let statuses = [STATUS_FIRST_CONTACT, STATUS_NEGOTIATION, STATUS_DECISION, STATUS_WON, STATUS_LOST];
    for (i, (first, last)) in people.iter().enumerate() {
        // Phone formats vary on purpose: matching must not care.
        let phone = match i % 3 {
            0 => format!("+1 720 555 01{:02}", i + 1),
            1 => format!("(720) 555-01{:02}", i + 1),
            _ => format!("1720555 01{:02}", i + 1),
        };
        let email = format!("{}.{}@example.com", first.to_lowercase(), last.to_lowercase());
        let c = s.contact(first, last, &[phone.as_str()], Some(email.as_str()));
        let company = companies[i % companies.len()];
        s.st.link(c, company, Value::Null);
        if i % 4 != 3 {
            let name = format!("{} {}", last, deals[i % deals.len()]);
            s.lead(&name, 1_000 + 750 * i as i64, statuses[i % statuses.len()], &[c, company]);
        }
        if i % 7 == 0 {
            let name = format!("{} {}", last, "monthly service");
            s.customer(&name, 199, CUSTOMER_STATUS_RECURRING, &[c]);
        }
    }
}

/// A large account for benchmarks: `contacts` contacts, a fifth as many
/// companies, two leads per five contacts (in every status) and one
/// customer per twenty, linked as a sales team's data is, on top of what is
/// there. Contact `i` has the number [`synthetic_number`]`(i)`, `+1 971 …`
/// (two in every ten also `+1 972 …`), company `i` has `+1 973 …`: unique in
/// their last 8 digits (caller ID's key) up to ten million records, and
/// apart from the demo's numbers and from [`synthetic_unknown_number`].
/// Deterministic: the same call builds the same account.
pub fn synthetic(st: &mut Store, contacts: usize) {
    // A minute apart, after the demo's records: the account's history
    // stays in the past, and creation order is the order made here.
    let mut s = Seeder { st, elapsed: 2 * 365 * DAY, step: 60 };
    let statuses = [STATUS_FIRST_CONTACT, STATUS_NEGOTIATION, STATUS_DECISION, STATUS_WON, STATUS_LOST];
    let mut companies = Vec::with_capacity(contacts / 5);
    for i in 0..contacts / 5 {
        companies.push(s.company(&format!("Company {i}"), &[&format!("+1 973 {i:07}")]));
    }
    for i in 0..contacts {
        let number = synthetic_number(i);
        let second = format!("+1 972 {i:07}");
        let phones: Vec<&str> = if i % 10 < 2 { vec![&number, &second] } else { vec![&number] };
        let contact = s.contact(&format!("First{i}"), &format!("Last{i}"), &phones, None);
        if let Some(company) = companies.get(i / 5) {
            s.st.link(contact, *company, Value::Null);
        }
        if i % 5 < 2 {
            let status = statuses[i % statuses.len()];
            s.lead(&format!("Deal {i}"), (i % 97) as i64 * 100, status, &[contact]);
        }
        if i % 20 == 0 {
            s.customer(&format!("Plan {i}"), 250, CUSTOMER_STATUS_RECURRING, &[contact]);
        }
    }
}

/// Contact `i`'s first number in a [`synthetic`] account.
pub fn synthetic_number(i: usize) -> String {
    format!("+1 971 {i:07}")
}

/// A number nobody in a [`synthetic`] account has (nor in the demo's).
pub fn synthetic_unknown_number(i: usize) -> String {
    format!("+1 979 {i:07}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_is_sizeable_and_numbers_do_not_collide() {
        let mut st = empty_account(31_415_926, "acme");
        seed(&mut st);
        assert!(st.contacts.len() >= 30, "{}", st.contacts.len());
        assert!(st.companies.len() >= 10);
        assert!(st.leads.len() >= 25);
        assert!(st.customers.len() >= 5);
        // Only the deliberately shared numbers have more than one holder.
        for (key, holders) in &st.phone_index {
            let expected = match key.as_str() {
                "65550199" | "25550165" => 2,
                _ => 1,
            };
            assert_eq!(holders.len(), expected, "last 8 digits {key}: {holders:?}");
        }
        assert!(st.leads.contains_key(&5_756_100));
        assert_eq!(st.leads[&5_756_100].name, "Website redesign");
    }

    #[test]
    fn a_synthetic_account_has_one_holder_per_caller_id_key() {
        let mut st = empty_account(31_415_926, "acme");
        seed(&mut st);
        let shared_before = st.phone_index.values().filter(|h| h.len() > 1).count();
        synthetic(&mut st, 1_000);
        assert_eq!(st.contacts.values().filter(|c| c.name.starts_with("First")).count(), 1_000);
        assert_eq!(st.companies.values().filter(|c| c.name.starts_with("Company ")).count(), 200);
        // No synthetic number shares its caller-ID key with another holder's.
        assert_eq!(st.phone_index.values().filter(|h| h.len() > 1).count(), shared_before);
        let key = |n: String| n.chars().filter(char::is_ascii_digit).collect::<String>()[3..].to_string();
        assert_eq!(st.phone_index.get(&key(synthetic_number(17))).map(Vec::len), Some(1));
        assert!(!st.phone_index.contains_key(&key(synthetic_unknown_number(17))));
    }
}
