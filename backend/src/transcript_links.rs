//! Signed, expiring links to a call's full transcript (the route that
//! serves them is `crate::transcripts`).
//!
//! A transcript too long for a Kommo note is written as an excerpt that
//! ends in this link (`callcard_calls::note::transcript_section`). Whoever
//! can read the note can follow it: the link is the capability, so it is
//! signed (HMAC-SHA256 with a key derived from `CALLCARD_SECRET_KEY`) over
//! the account, the call and the expiry, and expires
//! `transcript_link_ttl_seconds` after the transcript arrived. The expiry
//! counts from the arrival, not from now, so rewriting the note yields the
//! same link (and no needless PATCH). The request log leaves query strings
//! out, so signatures are not logged.

use crate::secrets::Secrets;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Arc;
use std::time::Duration;

/// Makes and checks transcript links. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TranscriptLinks {
    /// The backend's public base URL (`public_base_url`).
    base_url: Arc<str>,
    secrets: Secrets,
    ttl: Duration,
}

impl TranscriptLinks {
    pub fn new(base_url: &str, secrets: Secrets, ttl: Duration) -> Self {
        Self { base_url: base_url.trim_end_matches('/').into(), secrets, ttl }
    }

    /// The link to the transcript of `call_id`, which arrived at
    /// `received_at` (Unix ms).
    pub fn url(&self, account_id: u64, call_id: &str, received_at: i64) -> String {
        let expires = received_at.div_euclid(1000) + i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let signature = self.secrets.sign_link(&message(account_id, call_id, expires));
        let call = utf8_percent_encode(call_id, PATH_SEGMENT);
        format!("{}/transcripts/{account_id}/{call}?expires={expires}&signature={signature}", self.base_url)
    }

    /// Whether the link's parts are ours and it has not expired at `now_s`.
    pub fn admits(&self, account_id: u64, call_id: &str, expires: i64, signature: &str, now_s: i64) -> bool {
        now_s <= expires && self.secrets.verify_link(&message(account_id, call_id, expires), signature)
    }
}

fn message(account_id: u64, call_id: &str, expires: i64) -> String {
    format!("transcript\n{account_id}\n{call_id}\n{expires}")
}

/// What a call id may keep unescaped as one path segment (PBX ids may
/// hold `/`, `?`, spaces): RFC 3986's unreserved characters.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_admits_its_own_call_until_it_expires_and_nothing_else() {
        let links = TranscriptLinks::new("https://cc.test/backend/", Secrets::demo(), Duration::from_secs(100));
        let url = links.url(7, "pbx 1/a", 1_000_000);
        assert!(url.starts_with("https://cc.test/backend/transcripts/7/pbx%201%2Fa?expires=1100&signature="), "{url}");
        let signature = url.rsplit("signature=").next().unwrap();
        assert!(links.admits(7, "pbx 1/a", 1100, signature, 1100));
        assert!(!links.admits(7, "pbx 1/a", 1100, signature, 1101), "expired");
        assert!(!links.admits(7, "pbx 1/b", 1100, signature, 1000), "another call");
        assert!(!links.admits(8, "pbx 1/a", 1100, signature, 1000), "another account");
        assert!(!links.admits(7, "pbx 1/a", 9999, signature, 1000), "a later expiry");
        assert!(!links.admits(7, "pbx 1/a", 1100, "zz", 1000), "not hex");
        let other = TranscriptLinks::new("https://cc.test", Secrets::from_key([9; 32]), Duration::from_secs(100));
        assert!(!other.admits(7, "pbx 1/a", 1100, signature, 1000), "another key");
        assert_eq!(links.url(7, "pbx 1/a", 1_000_000), url, "the same link every time");
    }
}
