//! Caller ID: who is calling, on the card that pops while the phone rings.
//!
//! Kommo documents one rule for "who is this number" and implements it
//! behind `POST /api/v2/events` ([`KommoClient::identify_caller`]): the last
//! 8 digits, the oldest contact holding them; that contact's single active
//! lead or customer if it has exactly one, else the contact; then companies
//! the same way; else nobody. The answer names the record but not its name,
//! so a known caller costs a second request (`GET` of the record) for the
//! name to show; [`NameCache`] keeps names longer than answers, because a
//! record's name changes far less often than which record a number leads to.
//!
//! The call pop is latency-critical and Kommo is slow, throttled (7 requests
//! per second per account) and sometimes down. So:
//!
//! - **The local index first.** Once an account's caller index finished its
//!   first sync (`crate::sync::phonebook`), intake awaits its answer (a
//!   database read, no Kommo request: `ringing_caller`) and creates the call
//!   with it, holder and deal included; everything below is then not used.
//!   Until then, and if the index cannot be read, the rest of this module
//!   answers as before.
//! - **Intake never waits for Kommo.** The ringing event is pushed at once.
//!   When [`CallerIdCache::peek`] has a fresh answer, the call is created
//!   with it, so the first push already names the caller (a cache read, no
//!   I/O: `cached_caller`); otherwise the first push says
//!   [`CallerId::Pending`] and a background lookup (`after_record`)
//!   records the answer on the call, which sends a second feed event.
//! - **One lookup per number at a time.** [`CallerIdCache::resolve`] merges
//!   concurrent lookups of one number of one account (single-flight): fifty
//!   agents of a ring group ringing for one caller cost one lookup. The
//!   answer is then kept for `caller_id_cache_ttl` (60 s by default), so the
//!   next call from the same number costs none.
//! - **Failures only cost the name.** A failed lookup (Kommo down, 429,
//!   timeout) leaves the call at `Pending` (the widget shows the number) and
//!   is remembered for a few seconds, so a throttled Kommo is not hammered by
//!   every ringing phone. Failures are never cached as "unknown".
//!
//! Kommo requests per ringing call, counted at the sandbox
//! (`backend/tests/caller_id.rs`): an unknown number 1; a known one 2 (the
//! lookup and the record's name), 1 once the name is cached, 3 for a deal
//! without a name (its contact's name is read); a number seen within the
//! cache lifetime 0; fifty simultaneous rings of one number 1 lookup in all.
//!
//! The cache is per process: instances behind a load balancer each keep
//! their own. With the short lifetime that costs at most one extra lookup per
//! instance per number per minute, and keeps the hot path free of any
//! database read.

use crate::kommo_access::KommoAccess;
use crate::store::{CrmChange, Recorded, Store};
use callcard_calls::feed::CallerId;
use callcard_calls::phone::{last_digits, CALLER_ID_DIGITS};
use callcard_calls::{CallEvent, CallEventKind, CallStatus, EntityKind, EntityRef};
use kommo_client::{Company, Contact, Customer, KommoClient, KommoError, Lead, With};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long a failed lookup is remembered (at most the cache lifetime): long
/// enough to shield a throttled Kommo from a burst of ringing phones, short
/// enough that the next real call tries again.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);
/// Above this many entries, expired ones are swept on insert.
const SWEEP_ABOVE: usize = 4096;

/// What one lookup ended with: the caller, or why there is none.
type Outcome = Result<CallerId, String>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    account_id: u64,
    /// The last 8 digits: exactly what Kommo compares, so `+1 830 570 3077`
    /// and `8305703077` share an entry.
    digits: String,
}

enum Slot {
    /// A settled answer, good until `until`.
    Ready { outcome: Outcome, until: Instant },
    /// A lookup in flight; latecomers wait on the same cell.
    InFlight(Arc<OnceCell<Outcome>>),
}

/// Caller-ID answers per (account, last 8 digits), with single-flight
/// lookups. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct CallerIdCache {
    ttl: Duration,
    slots: Mutex<HashMap<Key, Slot>>,
}

impl CallerIdCache {
    /// Answers are kept for `ttl` (zero: never kept, lookups still merged).
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, slots: Mutex::new(HashMap::new()) }
    }

    fn key(account_id: u64, number: &str) -> Key {
        Key { account_id, digits: last_digits(number, CALLER_ID_DIGITS) }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        // The map is consistent after every statement; a panic elsewhere
        // must not disable caller ID.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fresh answer for the number, without any I/O: what intake puts
    /// on the first ringing push. `None` when a lookup is needed (or running,
    /// or recently failed).
    pub fn peek(&self, account_id: u64, number: &str) -> Option<CallerId> {
        let key = Self::key(account_id, number);
        if key.digits.is_empty() {
            return Some(CallerId::Unknown);
        }
        match self.slots().get(&key) {
            Some(Slot::Ready { outcome: Ok(caller), until }) if *until > Instant::now() => Some(caller.clone()),
            _ => None,
        }
    }

    /// The answer for the number: from the cache, from a lookup already in
    /// flight for it, or from `lookup`, which runs at most once however many
    /// callers ask at the same time. `Err` says why there is no answer (the
    /// lookup failed now or a few seconds ago).
    ///
    /// If the task running the lookup is dropped half-way, one of the
    /// waiting callers runs its own `lookup` instead, so nobody waits forever.
    pub async fn resolve<F, Fut>(&self, account_id: u64, number: &str, lookup: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome>,
    {
        let key = Self::key(account_id, number);
        if key.digits.is_empty() {
            // Withheld numbers ("anonymous") can match nobody.
            return Ok(CallerId::Unknown);
        }
        let cell = {
            let mut slots = self.slots();
            match slots.get(&key) {
                Some(Slot::Ready { outcome, until }) if *until > Instant::now() => return outcome.clone(),
                Some(Slot::InFlight(cell)) => cell.clone(),
                _ => {
                    let cell = Arc::new(OnceCell::new());
                    if slots.len() > SWEEP_ABOVE {
                        let now = Instant::now();
                        slots.retain(|_, s| !matches!(s, Slot::Ready { until, .. } if *until <= now));
                    }
                    slots.insert(key.clone(), Slot::InFlight(cell.clone()));
                    cell
                }
            }
        };
        let outcome = cell.get_or_init(lookup).await.clone();
        let mut slots = self.slots();
        // Only the first finisher settles the slot; a newer lookup that
        // replaced it meanwhile is left alone.
        if matches!(slots.get(&key), Some(Slot::InFlight(c)) if Arc::ptr_eq(c, &cell)) {
            let keep = match &outcome {
                // A name that could not be read is not worth keeping: the
                // next call tries again.
                Ok(CallerId::Known { name, .. }) if name.is_empty() => None,
                Ok(CallerId::Pending) => None,
                Ok(_) => Some(self.ttl),
                Err(_) => Some(FAILURE_BACKOFF.min(self.ttl)),
            };
            match keep.filter(|d| !d.is_zero()) {
                Some(life) => {
                    slots.insert(key, Slot::Ready { outcome: outcome.clone(), until: Instant::now() + life });
                }
                None => {
                    slots.remove(&key);
                }
            }
        }
        outcome
    }
}

/// Record names per (account, record), kept longer than caller-ID answers.
pub struct NameCache {
    ttl: Duration,
    names: Mutex<HashMap<(u64, EntityRef), (String, Instant)>>,
}

impl NameCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, names: Mutex::new(HashMap::new()) }
    }

    /// The record's name, from the cache or from Kommo (then cached).
    /// [`KommoError::NotFound`] when the record does not exist.
    pub async fn lookup(&self, kommo: &KommoClient, entity: EntityRef) -> Result<String, KommoError> {
        let account_id = kommo.account_id();
        if let Some(name) = self.get(account_id, entity) {
            return Ok(name);
        }
        let name = name_of(kommo, entity).await?;
        self.put(account_id, entity, &name);
        Ok(name)
    }

    fn get(&self, account_id: u64, entity: EntityRef) -> Option<String> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names.get(&(account_id, entity)).filter(|(_, until)| *until > Instant::now()).map(|(n, _)| n.clone())
    }

    fn put(&self, account_id: u64, entity: EntityRef, name: &str) {
        if self.ttl.is_zero() || name.is_empty() {
            return;
        }
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.len() > SWEEP_ABOVE {
            let now = Instant::now();
            names.retain(|_, (_, until)| *until > now);
        }
        names.insert((account_id, entity), (name.to_string(), Instant::now() + self.ttl));
    }
}

/// One caller-ID lookup in Kommo: the record by Kommo's rule, then its name
/// (cached in `names`). `users` are notified by Kommo of the call (its bell),
/// as the documented example does.
///
/// The name follows Kommo's own notification: a lead or customer is named
/// after itself, or after its contact when it has no name; a contact or
/// company after itself. If only the name cannot be read, the record is
/// still returned (with an empty name: the widget shows the number and still
/// opens the record).
pub async fn identify(
    kommo: &KommoClient,
    names: &NameCache,
    number: &str,
    users: &[u64],
) -> Result<CallerId, KommoError> {
    let Some(hit) = kommo.identify_caller(number, users).await? else { return Ok(CallerId::Unknown) };
    let entity = hit.entity;
    let name = match names.lookup(kommo, entity).await {
        Ok(name) => name,
        Err(e) => {
            tracing::warn!(error = %e, ?entity, "caller ID found the record but not its name");
            String::new()
        }
    };
    // No holder and no company: Kommo's answer names one record, and the
    // company behind a contact would cost another Kommo request per ring
    // (the contact read with its `_embedded.companies`, then the company's
    // name). The local caller index gives them at no request.
    Ok(CallerId::known(name, entity))
}

/// The name Kommo's notification would show for `entity`.
async fn name_of(kommo: &KommoClient, entity: EntityRef) -> Result<String, KommoError> {
    let (own, contact) = match entity.kind {
        EntityKind::Contact => return Ok(kommo.get::<Contact>(entity.id, &[]).await?.name.trim().to_string()),
        EntityKind::Company => return Ok(kommo.get::<Company>(entity.id, &[]).await?.name.trim().to_string()),
        // With its contacts, so an unnamed deal can borrow its contact's name.
        EntityKind::Lead => {
            let lead = kommo.get::<Lead>(entity.id, &[With::Contacts]).await?;
            (lead.name, main_contact(&lead.embedded))
        }
        EntityKind::Customer => {
            let customer = kommo.get::<Customer>(entity.id, &[With::Contacts]).await?;
            (customer.name, main_contact(&customer.embedded))
        }
    };
    if !own.trim().is_empty() {
        return Ok(own.trim().to_string());
    }
    match contact {
        Some(id) => Ok(kommo.get::<Contact>(id, &[]).await?.name.trim().to_string()),
        None => Ok(String::new()),
    }
}

fn main_contact(embedded: &kommo_client::Embedded) -> Option<u64> {
    let contacts = &embedded.contacts;
    contacts.iter().find(|c| c.is_main == Some(true)).or(contacts.first()).map(|c| c.id)
}

/// Caller ID for the whole backend: the answers and the names, shared by
/// intake (the ringing card) and the call-result endpoint (does the chosen
/// record exist?).
pub struct CallerIdService {
    answers: CallerIdCache,
    names: NameCache,
    /// Accounts whose Kommo cannot be asked at all (not installed, or the
    /// authorization was revoked), until when: no number of theirs is looked
    /// up meanwhile, so a busy PBX on such an account costs no token reads
    /// and no log line per call.
    unauthorized: Mutex<HashMap<u64, Instant>>,
    /// Where lookups go.
    access: KommoAccess,
    /// Where answers are recorded (which pushes them to the widget).
    store: Store,
    /// Accounts whose caller index is ready (for good), and those found not
    /// ready, until when that is believed (`crate::sync::phonebook`).
    index_ready: Mutex<HashMap<u64, Option<Instant>>>,
}

/// How long "the account's index is not ready yet" is believed before the
/// store is asked again.
const INDEX_READY_RECHECK: Duration = Duration::from_secs(1);

impl CallerIdService {
    /// Answers live `ttl` (`Config::caller_id_cache_ttl`), names `name_ttl`.
    pub fn new(ttl: Duration, name_ttl: Duration, access: KommoAccess, store: Store) -> Self {
        Self {
            answers: CallerIdCache::new(ttl),
            names: NameCache::new(name_ttl),
            unauthorized: Mutex::default(),
            access,
            store,
            index_ready: Mutex::default(),
        }
    }

    /// Whether the account's caller index finished its first sync (read from
    /// the store at most once a second until it has; it never goes back).
    pub(crate) async fn index_is_ready(&self, account_id: u64) -> bool {
        {
            let known = self.index_ready.lock().unwrap_or_else(|e| e.into_inner());
            match known.get(&account_id) {
                Some(None) => return true,
                Some(Some(until)) if *until > Instant::now() => return false,
                _ => {}
            }
        }
        let ready = match self.store.phonebook_sync(account_id).await {
            Ok(state) => state.is_some_and(|s| s.ready),
            Err(e) => {
                tracing::warn!(account_id, error = %e, "could not read the caller index state");
                false
            }
        };
        let mut known = self.index_ready.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(account_id, (!ready).then(|| Instant::now() + INDEX_READY_RECHECK));
        ready
    }

    /// Whether the account's Kommo refused to be asked a moment ago.
    fn is_unauthorized(&self, account_id: u64) -> bool {
        let unauthorized = self.unauthorized.lock().unwrap_or_else(|e| e.into_inner());
        unauthorized.get(&account_id).is_some_and(|until| *until > Instant::now())
    }

    /// Remembers, for a few seconds, that the account's Kommo needs
    /// (re)authorization.
    fn mark_unauthorized(&self, account_id: u64) {
        let mut unauthorized = self.unauthorized.lock().unwrap_or_else(|e| e.into_inner());
        unauthorized.insert(account_id, Instant::now() + FAILURE_BACKOFF);
    }

    /// Forgets that the account needed authorization (it was just installed).
    pub(crate) fn authorized(&self, account_id: u64) {
        self.unauthorized.lock().unwrap_or_else(|e| e.into_inner()).remove(&account_id);
    }

    pub fn answers(&self) -> &CallerIdCache {
        &self.answers
    }

    pub fn names(&self) -> &NameCache {
        &self.names
    }
}

impl CallerIdService {
    /// The caller to start a call with, from the cache only (no I/O): what
    /// intake passes to the store with a `ringing` event, so that the first
    /// push of a warm number already names the caller.
    pub(crate) fn cached_caller(&self, account_id: u64, event: &CallEvent) -> Option<CallerId> {
        match event.kind {
            CallEventKind::Ringing | CallEventKind::Answered => {
                self.answers.peek(account_id, event.external_number.as_str())
            }
            _ => None,
        }
    }

    /// The caller to start a ringing call with, before its first push: from
    /// the account's caller index once it is ready (a database read, no
    /// Kommo request), else from the cache only ([`Self::cached_caller`]).
    /// `None` leaves the call `Pending` for the background lookup.
    pub(crate) async fn ringing_caller(&self, account_id: u64, event: &CallEvent) -> Option<CallerId> {
        if !matches!(event.kind, CallEventKind::Ringing | CallEventKind::Answered) {
            return None;
        }
        if self.index_is_ready(account_id).await {
            let number = event.external_number.as_str();
            match super::phonebook::identify(&self.store, account_id, number).await {
                Ok(caller) => return Some(caller),
                // The Kommo lookup still names the caller, a moment later.
                Err(e) => tracing::warn!(account_id, error = %e, "the caller index could not be read"),
            }
        }
        self.cached_caller(account_id, event)
    }

    /// After intake stored an event and pushed it: if the call is live, has a
    /// user to show it to, and its caller is still `Pending`, looks the caller
    /// up in the background and records the answer on the call (which pushes a
    /// second feed event). Returns at once; never fails (see the module docs).
    pub(crate) fn after_record(self: &Arc<Self>, account_id: u64, recorded: &Recorded) {
        let stored = &recorded.call;
        let Some(user_id) = stored.kommo_user_id else { return };
        if !recorded.changed || stored.caller != CallerId::Pending || stored.call.status() == CallStatus::Ended {
            return;
        }
        if self.is_unauthorized(account_id) {
            return;
        }
        let service = self.clone();
        let call_id = stored.call.call_id.clone();
        let number = stored.call.external_number.as_str().to_string();
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = service
                .answers
                .resolve(account_id, &number, || async {
                    let looked_up = async {
                        let kommo = service.access.kommo_client(account_id).await?;
                        identify(&kommo, &service.names, &number, &[user_id]).await
                    };
                    looked_up.await.map_err(|e| {
                        if e.needs_reauthorization() {
                            service.mark_unauthorized(account_id);
                        }
                        e.to_string()
                    })
                })
                .await;
            match answer {
                Ok(caller) => {
                    tracing::debug!(account_id, call_id, ?caller, elapsed = ?started.elapsed(), "caller identified");
                    let change = CrmChange { caller: Some(caller), ..CrmChange::default() };
                    if let Err(e) = service.store.update_call_crm(account_id, &call_id, change).await {
                        tracing::warn!(account_id, call_id, error = %e, "could not record the caller");
                    }
                }
                // The card keeps showing the number.
                Err(reason) => tracing::warn!(account_id, call_id, reason, "caller ID unavailable"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn known(name: &str) -> CallerId {
        CallerId::known(name, EntityRef::new(EntityKind::Lead, 5_756_100))
    }

    #[tokio::test]
    async fn fifty_concurrent_lookups_of_one_number_run_one() {
        let cache = Arc::new(CallerIdCache::new(Duration::from_secs(60)));
        let runs = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let (cache, runs) = (cache.clone(), runs.clone());
                // Formatting differs; the last 8 digits do not.
                let number = if i % 2 == 0 { "+1 830 570 3077" } else { "18305703077" };
                tokio::spawn(async move {
                    cache
                        .resolve(7, number, || async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(known("Website redesign"))
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(known("Website redesign")));
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.peek(7, "830-570-3077"), Some(known("Website redesign")));
        // Another account's cache entry is its own.
        assert_eq!(cache.peek(8, "830-570-3077"), None);
    }

    #[tokio::test]
    async fn answers_expire_and_failures_are_retried_soon_but_not_at_once() {
        let cache = CallerIdCache::new(Duration::from_millis(30));
        assert_eq!(cache.resolve(1, "+15035550111", || async { Ok(CallerId::Unknown) }).await, Ok(CallerId::Unknown));
        assert_eq!(cache.peek(1, "+15035550111"), Some(CallerId::Unknown));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.peek(1, "+15035550111"), None);

        let failed = cache.resolve(1, "+12125550147", || async { Err("429".to_string()) }).await;
        assert_eq!(failed, Err("429".into()));
        // Within the back-off the failure is repeated without a lookup...
        let again = cache.resolve(1, "+12125550147", || async { panic!("no lookup during the back-off") }).await;
        assert_eq!(again, Err("429".into()));
        assert_eq!(cache.peek(1, "+12125550147"), None, "a failure is never a cached answer");
        // ...and after it a new lookup runs.
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(cache.resolve(1, "+12125550147", || async { Ok(known("Sofia")) }).await, Ok(known("Sofia")));
    }

    #[tokio::test]
    async fn a_nameless_answer_is_not_kept_and_withheld_numbers_are_unknown() {
        let cache = CallerIdCache::new(Duration::from_secs(60));
        assert_eq!(cache.resolve(1, "+1", || async { Ok(known("")) }).await, Ok(known("")));
        assert_eq!(cache.peek(1, "+1"), None);
        assert_eq!(
            cache.resolve(1, "anonymous", || async { panic!("nothing to look up") }).await,
            Ok(CallerId::Unknown)
        );
        assert_eq!(cache.peek(1, "anonymous"), Some(CallerId::Unknown));
    }

    #[tokio::test]
    async fn a_dropped_lookup_hands_over_to_a_waiter() {
        let cache = Arc::new(CallerIdCache::new(Duration::from_secs(60)));
        let leader = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.resolve(1, "+13055550188", std::future::pending::<Outcome>).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let answer = tokio::time::timeout(
            Duration::from_secs(1),
            cache.resolve(1, "+13055550188", || async { Ok(known("Kim Bakery")) }),
        )
        .await
        .expect("the waiter is not stuck behind a dead lookup");
        assert_eq!(answer, Ok(known("Kim Bakery")));
    }
}
