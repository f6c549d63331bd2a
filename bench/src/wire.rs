//! What the driver and the load generator (`feed-load`) agree on: signed
//! webhook bodies, call ids that carry their send time, and the JSON lines
//! `feed-load` prints on stdout.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock microseconds since the Unix epoch (both processes run on the
/// same machine, so their clocks are the same clock).
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A signed `POST /pbx/{account}/events` body: `(body, timestamp header, signature header)`.
pub fn signed_event(
    secret: &str,
    kind: &str,
    call_id: &str,
    external_number: &str,
    extension: &str,
) -> (String, String, String) {
    signed_body(secret, &event_json(serde_json::json!({"event": kind}), call_id, external_number, extension))
}

/// An inbound call event; `kind` holds `event` and its own fields
/// (`{"event":"ended","duration":30,"outcome":"answered"}`).
pub fn event_json(kind: serde_json::Value, call_id: &str, external_number: &str, extension: &str) -> serde_json::Value {
    let mut event = serde_json::json!({
        "call_id": call_id, "direction": "inbound",
        "external_number": external_number, "extension": extension, "occurred_at": now_us() / 1000,
    });
    if let (Some(e), serde_json::Value::Object(k)) = (event.as_object_mut(), kind) {
        e.extend(k);
    }
    event
}

/// Signs a body as the PBX does: `(body, timestamp header, signature header)`.
pub fn signed_body(secret: &str, body: &serde_json::Value) -> (String, String, String) {
    let body = body.to_string();
    let ts = now_us() / 1_000_000;
    let sig = callcard_calls::signature::sign(secret.as_bytes(), ts, body.as_bytes());
    (body, ts.to_string(), sig)
}

/// `POST url` with `body` signed as the PBX signs it, ready to send.
pub fn signed_request(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    body: &serde_json::Value,
) -> reqwest::RequestBuilder {
    let (body, ts, sig) = signed_body(secret, body);
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-callcard-timestamp", ts)
        .header("x-callcard-signature", sig)
        .body(body)
}

/// A call id carrying the moment its webhook was sent: `{prefix}-{seq}-{sent_us}`.
pub fn timed_call_id(prefix: &str, seq: u64, sent_us: i64) -> String {
    format!("{prefix}-{seq}-{sent_us}")
}

/// `(seq, sent_us)` of a [`timed_call_id`] with this prefix.
pub fn parse_timed_call_id(prefix: &str, call_id: &str) -> Option<(u64, i64)> {
    let rest = call_id.strip_prefix(prefix)?.strip_prefix('-')?;
    let (seq, sent) = rest.split_once('-')?;
    Some((seq.parse().ok()?, sent.parse().ok()?))
}

/// The first `"call_id":"…"` in a feed frame, without parsing the whole frame
/// (the load generator reads tens of thousands of sockets on a shared core).
pub fn frame_call_id(frame: &str) -> Option<&str> {
    let start = frame.find("\"call_id\":\"")? + "\"call_id\":\"".len();
    let len = frame[start..].find('"')?;
    Some(&frame[start..start + len])
}

/// The `"offset":N` of a feed event frame (the cursor a reconnect resumes
/// from with `since`).
pub fn frame_offset(frame: &str) -> Option<u64> {
    let start = frame.find("\"offset\":")? + "\"offset\":".len();
    let digits = frame[start..].bytes().take_while(u8::is_ascii_digit).count();
    frame[start..start + digits].parse().ok()
}

/// A unique, valid E.164 number for call `i` (`+1 830 5xx xxxx`).
pub fn caller_number(i: u64) -> String {
    format!("+18305{:06}", i % 1_000_000)
}

/// `feed-load ws` lines.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum WsReport {
    /// Every connection attempt finished.
    Connected { ok: u64, failed: u64, secs: f64, first_error: Option<String> },
    /// The end: latencies (ms) of timed events received (the first time
    /// each socket saw each call), and what closed early.
    Done {
        received: u64,
        latencies_ms: Vec<f64>,
        closed_early: u64,
        other_frames: u64,
        /// Timed events a socket saw again (a replay after a reconnect that
        /// repeated what it had, say): each is a duplicate delivery.
        #[serde(default)]
        duplicates: u64,
        /// Sockets that were closed under them and reconnected to `--fallback`.
        #[serde(default)]
        reconnected: u64,
        /// The sequence number of each event in `latencies_ms`, in the same
        /// order, so a driver can tell its phases apart.
        #[serde(default)]
        latency_seqs: Vec<u64>,
        /// The sequence numbers of the duplicates.
        #[serde(default)]
        duplicate_seqs: Vec<u64>,
    },
}

/// The `feed-load http` result line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HttpReport {
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Events the backend stored per transaction (group commit), read from
    /// its metrics by the driver; `feed-load` leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_commit: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_call_ids_round_trip() {
        let id = timed_call_id("cap", 42, 1_763_691_600_123_456);
        assert_eq!(id, "cap-42-1763691600123456");
        assert_eq!(parse_timed_call_id("cap", &id), Some((42, 1_763_691_600_123_456)));
        assert_eq!(parse_timed_call_id("pop", &id), None);
        assert_eq!(parse_timed_call_id("cap", "cap-x-1"), None);
    }

    #[test]
    fn finds_the_call_id_in_a_frame() {
        let frame = r#"{"type":"event","offset":3,"call":{"call_id":"cap-1-99","status":"ringing"}}"#;
        assert_eq!(frame_call_id(frame), Some("cap-1-99"));
        assert_eq!(frame_offset(frame), Some(3));
        assert_eq!(frame_offset(r#"{"type":"heartbeat","latest_offset":3}"#), None);
        assert_eq!(frame_call_id(r#"{"type":"heartbeat","latest_offset":3}"#), None);
    }

    #[test]
    fn signed_events_verify() {
        let (body, ts, sig) = signed_event("s3cret", "ringing", "c-1", &caller_number(7), "101");
        assert!(body.contains("\"+18305000007\""));
        let ts: i64 = ts.parse().unwrap();
        assert_eq!(sig, callcard_calls::signature::sign(b"s3cret", ts, body.as_bytes()));
    }

    #[test]
    fn reports_are_json_lines() {
        let line =
            serde_json::to_string(&WsReport::Connected { ok: 1, failed: 0, secs: 0.5, first_error: None }).unwrap();
        assert!(line.starts_with(r#"{"phase":"connected""#));
        assert_eq!(
            serde_json::from_str::<WsReport>(&line).unwrap(),
            WsReport::Connected { ok: 1, failed: 0, secs: 0.5, first_error: None }
        );
    }
}
