//! The request budget: at most 7 requests per second per Kommo account,
//! shared by every worker of every backend instance.
//!
//! Kommo allows 7 requests per second per integration and account and blocks
//! integrations that keep exceeding it. Every HTTP attempt the client makes,
//! retries included, first asks the account's [`RequestBudget`] for a start
//! slot and sleeps until that slot comes.
//!
//! # Reservations, not permits
//!
//! [`RequestBudget::reserve`] hands out the *next free start time* and
//! advances the account's schedule in one atomic step; the caller then sleeps
//! until its slot. This shape works across processes: a SQL store can do the
//! step in one statement, e.g. with a `tat` column per account
//!
//! ```sql
//! UPDATE kommo_budget SET tat = GREATEST(tat, now()) + :interval
//! WHERE account_id = :id
//! RETURNING GREATEST(tat - :interval - :tolerance, now()) - now() AS wait
//! ```
//!
//! and it is fair under many concurrent callers: slots are handed out in the
//! order the reservations arrive, so nobody is overtaken forever (unlike
//! "sleep and try again" limiters, where an unlucky caller can lose every
//! race). Returning a *wait* rather than a wall-clock time keeps instances
//! with skewed clocks honest: the store measures time with one clock.
//!
//! # GCRA, and why the default has no burst
//!
//! [`Gcra`] is the generic cell rate algorithm: a per-account "theoretical
//! arrival time" (TAT) advances by the emission interval `T` per request; a
//! request may start once `now ≥ TAT − τ`, where the tolerance `τ` permits
//! bursts of `1 + τ/T`. GCRA bounds the *average* rate; Kommo's limit is "no
//! more than 7 in a second". A burst of `b` followed by the steady rate fits
//! `b + ⌈W/T⌉ − 1` starts into a window of length `W`, so satisfying "≤ N per
//! W" forces `T = W / (N − b + 1)`: every unit of burst costs sustained rate.
//! [`Quota::kommo`] therefore uses `b = 1` (evenly spaced starts, the full
//! sustained rate) and stretches the window by a safety margin, because
//! Kommo measures arrivals, not our start times, and networks jitter.

use crate::KommoError;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hands out request start slots for Kommo accounts. Implementations must
/// be shared by everything that talks to the same account: one
/// [`LocalBudget`] per process, or a store-backed one across instances.
pub trait RequestBudget: Send + Sync + 'static {
    /// Reserves the next start slot for one request to `account_id` and
    /// returns how long to wait until it. Must be atomic: two concurrent
    /// reservations never get the same slot. A reservation that is not used
    /// (the caller gave up) simply stays spent.
    fn reserve(&self, account_id: u64) -> BoxFuture<'_, Result<Duration, KommoError>>;

    /// Reserves a slot and sleeps until it; a slot woken up to more than
    /// [`LATE_START`] late is given up and another reserved (see there).
    fn acquire(&self, account_id: u64) -> BoxFuture<'_, Result<(), KommoError>> {
        Box::pin(async move {
            for _ in 1..MAX_RESERVATIONS {
                if start_on_time(self.reserve(account_id), LATE_START).await? {
                    return Ok(());
                }
            }
            // Still late after several slots: the machine is overloaded. Go
            // anyway; if Kommo refuses, the client honours its Retry-After.
            start_on_time(self.reserve(account_id), LATE_START).await.map(drop)
        })
    }
}

/// How late a start may be and still use its slot. Evenly spaced slots keep
/// 7 starts in 1.1 s ([`Quota::kommo`]'s 100 ms margin), but a start that
/// wakes late (a busy scheduler, a slow store round trip) moves towards the
/// starts after it, and a sleeper woken 100 ms late lands an 8th start in a
/// second. Starts at most 50 ms late keep the other 50 ms for network jitter.
pub const LATE_START: Duration = Duration::from_millis(50);

/// Reservations [`RequestBudget::acquire`] makes before it starts late anyway.
const MAX_RESERVATIONS: usize = 4;

/// Awaits a reservation and sleeps until its slot; `true` if the caller may
/// start now, `false` if it woke more than `late` past the slot. Lateness is
/// measured from before the reservation was asked for, so a slow store round
/// trip counts against the slot too (it may discard a slot that was in fact
/// on time, never keep one that was late).
async fn start_on_time(
    reservation: BoxFuture<'_, Result<Duration, KommoError>>,
    late: Duration,
) -> Result<bool, KommoError> {
    let asked = tokio::time::Instant::now();
    let wait = reservation.await?;
    let slot = asked + wait;
    tokio::time::sleep_until(slot).await;
    Ok(tokio::time::Instant::now().saturating_duration_since(slot) <= late)
}

/// "At most `limit` request starts in any window of length `window`", plus
/// the shape of the schedule that guarantees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Starts allowed per window (Kommo: 7).
    pub limit: u32,
    /// The window (Kommo: one second).
    pub window: Duration,
    /// Extra spacing so that network jitter between our start and Kommo's
    /// receipt cannot squeeze `limit + 1` arrivals into one window.
    pub margin: Duration,
    /// How many requests may start back to back (≥ 1). Each unit above 1
    /// lowers the sustained rate; see the module docs.
    pub burst: u32,
}

impl Quota {
    /// Kommo's documented limit, 7 per second, evenly spaced with a 100 ms
    /// safety margin: one start every 157 ms.
    pub fn kommo() -> Self {
        Self { limit: 7, window: Duration::from_secs(1), margin: Duration::from_millis(100), burst: 1 }
    }

    /// The GCRA parameters that keep this quota: `T = (W + margin) / (N − b + 1)`
    /// and `τ = (b − 1)·T`. `burst` is clamped to `1..=limit`.
    pub fn gcra(&self) -> Gcra {
        let limit = self.limit.max(1);
        let burst = self.burst.clamp(1, limit);
        // Rounded up: a truncated interval would let the (N+1)-th start land a
        // few nanoseconds inside the window.
        let span = (self.window + self.margin).as_nanos();
        let slots = u128::from(limit - burst + 1);
        let interval = Duration::from_nanos(span.div_ceil(slots).min(u64::MAX as u128) as u64);
        Gcra { interval, tolerance: interval * (burst - 1) }
    }
}

/// The generic cell rate algorithm on one account's schedule, as pure
/// arithmetic over durations since an arbitrary origin (so it is testable and
/// a store can run the same formulas).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gcra {
    /// Emission interval `T`: the steady spacing between starts.
    pub interval: Duration,
    /// Burst tolerance `τ`.
    pub tolerance: Duration,
}

impl Gcra {
    /// Reserves one slot: given the account's theoretical arrival time `tat`
    /// and the current time `now`, returns `(start, new_tat)`: the request
    /// may start at `start` (≥ `now`) and the account's TAT becomes `new_tat`.
    pub fn reserve(&self, tat: Duration, now: Duration) -> (Duration, Duration) {
        let base = tat.max(now);
        let start = tat.saturating_sub(self.tolerance).max(now);
        (start, base + self.interval)
    }
}

/// The in-process [`RequestBudget`]: one GCRA schedule per account behind a
/// mutex. Correct for a single backend instance; several instances need a
/// shared store.
pub struct LocalBudget {
    gcra: Gcra,
    origin: Instant,
    // A plain mutex: the critical section is a few arithmetic operations and
    // never awaits.
    tats: Mutex<HashMap<u64, Duration>>,
}

impl LocalBudget {
    pub fn new(quota: Quota) -> Self {
        Self { gcra: quota.gcra(), origin: Instant::now(), tats: Mutex::new(HashMap::new()) }
    }

    /// Kommo's limit, [`Quota::kommo`].
    pub fn kommo() -> Self {
        Self::new(Quota::kommo())
    }
}

impl Default for LocalBudget {
    fn default() -> Self {
        Self::kommo()
    }
}

impl RequestBudget for LocalBudget {
    fn reserve(&self, account_id: u64) -> BoxFuture<'_, Result<Duration, KommoError>> {
        let now = self.origin.elapsed();
        let mut tats = self.tats.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let tat = tats.get(&account_id).copied().unwrap_or(Duration::ZERO);
        let (start, new_tat) = self.gcra.reserve(tat, now);
        tats.insert(account_id, new_tat);
        drop(tats);
        Box::pin(std::future::ready(Ok(start - now)))
    }
}

/// A budget that never waits: for tests and tools that must not be throttled
/// (never for talking to the real Kommo).
#[derive(Clone, Copy, Debug, Default)]
pub struct Unlimited;

impl RequestBudget for Unlimited {
    fn reserve(&self, _account_id: u64) -> BoxFuture<'_, Result<Duration, KommoError>> {
        Box::pin(std::future::ready(Ok(Duration::ZERO)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The most starts in any half-open window `[t, t + w)`.
    fn max_in_window(starts: &[Duration], w: Duration) -> usize {
        let mut sorted = starts.to_vec();
        sorted.sort();
        (0..sorted.len()).map(|i| sorted[i..].iter().take_while(|s| **s < sorted[i] + w).count()).max().unwrap_or(0)
    }

    #[test]
    fn kommo_quota_spaces_starts_evenly() {
        let g = Quota::kommo().gcra();
        assert_eq!(g.interval, Duration::from_nanos(1_100_000_000u64.div_ceil(7)));
        assert_eq!(g.tolerance, Duration::ZERO);
    }

    #[test]
    fn gcra_arithmetic() {
        let g = Gcra { interval: ms(100), tolerance: ms(200) };
        // Idle account: the first three start at once (burst 1 + τ/T = 3).
        let (s1, tat) = g.reserve(Duration::ZERO, ms(1000));
        assert_eq!((s1, tat), (ms(1000), ms(1100)));
        let (s2, tat) = g.reserve(tat, ms(1000));
        assert_eq!((s2, tat), (ms(1000), ms(1200)));
        let (s3, tat) = g.reserve(tat, ms(1000));
        assert_eq!((s3, tat), (ms(1000), ms(1300)));
        // The fourth waits one interval.
        let (s4, tat) = g.reserve(tat, ms(1000));
        assert_eq!((s4, tat), (ms(1100), ms(1400)));
        // After a quiet spell the schedule restarts from now.
        let (s5, tat) = g.reserve(tat, ms(5000));
        assert_eq!((s5, tat), (ms(5000), ms(5100)));
    }

    #[test]
    fn every_burst_setting_keeps_seven_per_second() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for burst in 1..=7 {
            let quota = Quota { burst, margin: Duration::ZERO, ..Quota::kommo() };
            let g = quota.gcra();
            let mut tat = Duration::ZERO;
            let mut now = Duration::ZERO;
            let mut starts = Vec::new();
            for _ in 0..500 {
                // Arrivals: mostly storms, sometimes pauses long enough to refill the burst.
                now += if rng.gen_bool(0.1) { ms(rng.gen_range(0..3000)) } else { ms(rng.gen_range(0..20)) };
                let (start, new_tat) = g.reserve(tat, now);
                assert!(start >= now);
                tat = new_tat;
                starts.push(start);
            }
            assert!(max_in_window(&starts, quota.window) <= 7, "burst {burst}");
        }
    }

    #[test]
    fn slots_are_first_come_first_served() {
        let g = Quota::kommo().gcra();
        let mut tat = Duration::ZERO;
        let mut last = Duration::ZERO;
        for _ in 0..50 {
            let (start, new_tat) = g.reserve(tat, ms(10));
            assert!(start >= last);
            last = start;
            tat = new_tat;
        }
        // 50 callers arriving together are served over 49 intervals, in order.
        assert_eq!(last, ms(10) + g.interval * 49);
    }

    /// A budget whose reservations take `delays[i]` to answer (a slow store
    /// round trip, or a scheduler that wakes the caller late) and grant an
    /// immediate slot; counts the reservations made.
    struct SlowStore {
        delays: Vec<Duration>,
        made: std::sync::atomic::AtomicUsize,
    }

    impl RequestBudget for SlowStore {
        fn reserve(&self, _account_id: u64) -> BoxFuture<'_, Result<Duration, KommoError>> {
            let i = self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let delay = self.delays.get(i).copied().unwrap_or(Duration::ZERO);
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(Duration::ZERO)
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_woken_late_is_given_up_for_the_next() {
        let budget = SlowStore { delays: vec![ms(120), ms(10)], made: Default::default() };
        budget.acquire(1).await.unwrap();
        assert_eq!(budget.made.into_inner(), 2, "the 120 ms late slot must not be used");
        let on_time = SlowStore { delays: vec![LATE_START], made: Default::default() };
        on_time.acquire(1).await.unwrap();
        assert_eq!(on_time.made.into_inner(), 1, "a start within LATE_START uses its slot");
    }

    #[tokio::test(start_paused = true)]
    async fn an_overloaded_caller_still_starts_after_a_few_slots() {
        let budget = SlowStore { delays: vec![ms(500); 10], made: Default::default() };
        budget.acquire(1).await.unwrap();
        assert_eq!(budget.made.into_inner(), MAX_RESERVATIONS);
    }

    #[tokio::test]
    async fn local_budget_keeps_accounts_apart() {
        let budget = LocalBudget::kommo();
        let mut waits = Vec::new();
        for _ in 0..3 {
            waits.push(budget.reserve(1).await.unwrap());
        }
        assert_eq!(waits[0], Duration::ZERO);
        assert!(waits[2] > waits[1] && waits[1] > Duration::from_millis(100));
        // Another account is not slowed down by account 1.
        assert_eq!(budget.reserve(2).await.unwrap(), Duration::ZERO);
    }
}
