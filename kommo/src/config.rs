//! How patient the client is: timeouts, retries and backoff.

use std::time::Duration;

/// Timeouts and retry policy for one [`KommoClient`](crate::KommoClient).
///
/// The defaults suit the backend talking to the real Kommo: a caller card
/// must pop within a ring or two, so no single attempt may hang for long, and
/// a few quick retries ride out Kommo's occasional 502/503.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The longest one HTTP attempt may take, from sending to the last byte
    /// of the answer. Time spent waiting for the request budget is not
    /// counted: the budget decides *when* to start, this decides how long a
    /// started request may run.
    pub request_timeout: Duration,
    /// The longest a TCP + TLS connect may take.
    pub connect_timeout: Duration,
    /// How many times a failed attempt is retried (so at most
    /// `max_retries + 1` attempts), for failures that are safe to retry; see
    /// [`crate::retry`].
    pub max_retries: u32,
    /// The first retry waits up to this long; each further retry doubles the
    /// ceiling ("exponential backoff with full jitter").
    pub backoff_base: Duration,
    /// The ceiling of the backoff, however many retries came before.
    pub backoff_cap: Duration,
    /// A 429 with `Retry-After` longer than this is not waited out: the error
    /// goes back to the caller (a queue worker can park the job, a caller
    /// card cannot wait a minute anyway).
    pub max_retry_after: Duration,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
            user_agent: concat!("callcard-kommo-client/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}
