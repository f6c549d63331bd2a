//! # callcard-calls
//!
//! The vocabulary every part of callcard shares, as plain Rust types and pure
//! functions with no I/O, so the backend (native) and the widget (wasm) use the
//! very same rules and the rules are unit-tested natively.
//!
//! Layout, one concept per file:
//!
//! - [`phone`]: phone numbers as PBXs and CRMs write them, and Kommo's
//!   "last N digits" matching.
//! - [`event`]: the PBX webhook contract: ringing, answered, ended,
//!   recording ready, and the batch of finished calls.
//! - [`call`]: the call itself, folded from its events in any order: the call
//!   state machine that makes retried and reordered webhooks harmless.
//! - [`entity`]: references to Kommo entities (lead, contact, company, customer).
//! - [`feed`]: what the backend pushes to a user's widget, with offsets.
//! - [`extensions`]: the widget's `users` setting mapping Kommo users to PBX
//!   extensions, parsed and validated.
//! - [`result`]: the manager's call result from the Call summary modal.
//! - [`note`]: the call note's text as sections that late data upserts in
//!   place, switchable per account, the manager's note never overwritten.
//! - [`status`]: the backend's answer to the settings page's connection check.
//! - [`signature`]: HMAC-SHA256 webhook signatures with a replay window.
//! - [`phonebook`]: an account's phonebook and Kommo's caller-ID rule over it
//!   (who is calling, with names, without asking Kommo).
//! - [`backoff`]: exponential backoff with full or equal jitter, the random
//!   draw passed in (the Kommo client, the job queue, the widget).

pub mod backoff;
pub mod call;
pub mod entity;
pub mod event;
pub mod extensions;
pub mod feed;
pub mod note;
pub mod originate;
pub mod phone;
pub mod phonebook;
pub mod result;
pub mod route;
pub mod signature;
pub mod status;

pub use call::{Call, CallStatus};
pub use entity::{EntityKind, EntityRef};
pub use event::{CallEvent, CallEventKind, Direction, Outcome};
pub use phone::PhoneNumber;
