//! The backend → PBX direction: click-to-call's originate request.
//!
//! The PBX signs what it sends the backend with the account's webhook
//! secret (`crate::intake`); the backend signs what it sends the PBX the
//! same way, so one secret and one verifier serve both directions:
//! `X-Callcard-Timestamp` (Unix seconds) and `X-Callcard-Signature:
//! v1=<hex HMAC-SHA256(webhook secret, "<timestamp>.<raw body>")>` over the
//! JSON [`Originate`].
//!
//! A PBX that answers 2xx has taken the call and reports it from then on
//! through the ordinary webhooks (an outbound call under the `call_id` the
//! backend chose). Anything else is a [`PbxRefusal`]: nothing was placed,
//! nothing is stored, and the manager is told so at once; no call can be
//! lost in between, since a call exists for callcard only once the PBX
//! reports it.

use callcard_calls::originate::Originate;
use callcard_calls::signature;
use std::fmt;
use std::time::Duration;

/// How long the PBX has to take an originate request: the manager is
/// waiting for the phone to ring.
pub const ORIGINATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends signed requests to accounts' PBXs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PbxClient {
    http: reqwest::Client,
}

/// Why the PBX did not take the call.
#[derive(Debug)]
pub enum PbxRefusal {
    /// No answer: connection refused, DNS, TLS, or the timeout.
    Unreachable(String),
    /// An answer other than 2xx, with the start of its body.
    Refused { status: u16, body: String },
}

impl fmt::Display for PbxRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable(cause) => write!(f, "the PBX could not be reached: {cause}"),
            Self::Refused { status, body } => write!(f, "the PBX answered {status}: {body}"),
        }
    }
}

impl Default for PbxClient {
    fn default() -> Self {
        Self::new()
    }
}

impl PbxClient {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .timeout(ORIGINATE_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        Self { http }
    }

    /// Posts `originate` to `url`, signed with `secret`, at `now_s`.
    pub async fn originate(
        &self,
        url: &str,
        secret: &str,
        originate: &Originate,
        now_s: i64,
    ) -> Result<(), PbxRefusal> {
        let body = serde_json::to_vec(originate).map_err(|e| PbxRefusal::Unreachable(e.to_string()))?;
        let sig = signature::sign(secret.as_bytes(), now_s, &body);
        let answer = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(signature::TIMESTAMP_HEADER, now_s.to_string())
            .header(signature::SIGNATURE_HEADER, sig)
            .body(body)
            .send()
            .await
            .map_err(|e| PbxRefusal::Unreachable(without_url(&e)))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        let body = answer.text().await.unwrap_or_default().chars().take(300).collect();
        Err(PbxRefusal::Refused { status: status.as_u16(), body })
    }
}

/// reqwest's error names the URL, which may carry a PBX token in its query:
/// keep the kind of failure only.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    kind.to_string()
}
