//! # kommo-client
//!
//! The one typed client for Kommo's REST API. The backend uses it against
//! the real Kommo (`https://{subdomain}.kommo.com`) and against the local
//! sandbox alike: nothing in here knows which one it talks to beyond the
//! base URL.
//!
//! A [`KommoClient`] serves one account. Every request it makes goes
//! through one pipeline ([`http`]): an access token from the account's
//! [`AccessTokens`], a start slot from the account's [`RequestBudget`]
//! (Kommo allows 7 requests per second), a timeout, typed errors, one forced
//! token refresh on a 401, and retries with backoff where retrying cannot
//! duplicate anything ([`retry`] has the rule).
//!
//! ## Layout, one concept per file
//!
//! The modules are private; what callers use is re-exported at the root.
//!
//! The machinery:
//!
//! - [`config`]: [`ClientConfig`], timeouts and retry policy.
//! - [`error`]: [`KommoError`], failures sorted by what the caller does about
//!   them, and Kommo's problem+json body, [`Problem`].
//! - [`budget`]: the [`RequestBudget`] trait (7 requests/second per account,
//!   shared by every worker and instance) and [`LocalBudget`], its
//!   in-process GCRA implementation.
//! - [`tokens`]: the [`AccessTokens`] trait, where a client gets its tokens.
//! - [`oauth`]: [`OAuthClient`] for `POST /oauth2/access_token`, and
//!   [`InMemoryTokens`] (refresh ahead of expiry, one refresh in flight per
//!   account) and [`StaticToken`].
//! - [`retry`]: which failures are retried, and the backoff with full jitter.
//! - [`http`]: [`KommoClient`] and the request pipeline.
//!
//! One file per API area, each adding methods to [`KommoClient`]:
//!
//! - [`caller_id`]: `POST /api/v2/events` → [`CallerMatch`].
//! - [`entities`]: contacts, companies, leads, customers: get, search, add a phone.
//! - [`listing`]: whole collections one page at a time, or what changed
//!   since a moment ([`Listing`], [`Page`]), for a resumable local copy.
//! - [`webhooks`]: subscribe a destination to Kommo's change events, and
//!   read what a delivery says changed ([`Delivery`]).
//! - [`calls`]: `POST /api/v4/calls`.
//! - [`notes`]: call notes, common notes, service messages; find a call
//!   note by `uniq`, create one idempotently, edit.
//! - [`tasks`]: create and list tasks.
//! - [`unsorted`]: incoming leads from calls: create, get, accept, decline.
//! - [`links`]: link and unlink records.
//! - [`account`]: the account and its users.
//!
//! Entity kinds and references are the shared [`callcard_calls::EntityKind`]
//! and [`callcard_calls::EntityRef`], re-exported here.

mod account;
mod budget;
mod caller_id;
mod calls;
mod config;
mod entities;
mod error;
mod http;
mod links;
mod listing;
mod notes;
mod oauth;
mod retry;
mod tasks;
mod tokens;
mod unsorted;
mod webhooks;

pub use account::{Account, Rights, User};
pub use budget::{Gcra, LocalBudget, Quota, RequestBudget, Unlimited};
pub use caller_id::CallerMatch;
pub use calls::{CallError, CallStatus, CallsAnswer, LoggedCall, NewCall};
pub use config::ClientConfig;
pub use entities::{
    Company, Contact, CustomField, Customer, Embedded, FieldValue, Lead, Party, Record, Related, With, STATUS_LOST,
};
pub use error::{FieldError, KommoError, Problem, ValidationErrors};
pub use http::{KommoClient, KommoClientBuilder};
pub use links::Link;
pub use listing::{Listing, Page};
pub use notes::{CallNoteParams, NewNote, Note, NoteBody, NoteRef, NoteType};
pub use oauth::{InMemoryTokens, OAuthApp, OAuthClient, OnRefresh, StaticToken, TokenSet};
pub use retry::Idempotency;
pub use tasks::{NewTask, Task, TaskRef, TASK_FOLLOW_UP, TASK_MEETING};
pub use tokens::AccessTokens;
pub use unsorted::{
    NewSipUnsorted, NewUnsortedContact, NewUnsortedEmbedded, NewUnsortedLead, SipMetadata, Unsorted, UnsortedEmbedded,
    UnsortedRef,
};

pub use webhooks::{ChangeAction, Delivery, DeliveryError, RecordChange, Webhook};

pub use callcard_calls::{Direction, EntityKind, EntityRef};
