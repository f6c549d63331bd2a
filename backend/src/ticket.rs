//! Feed tickets: short-lived bearer credentials for the feed endpoints.
//!
//! A WebSocket cannot carry Kommo's `X-Auth-Token` header from a browser, and
//! a one-time token can be used only once, so the widget trades one token for
//! a ticket (`POST /widget/ticket`) and passes the ticket in the query string.
//! A ticket is 32 random bytes, handed out once and stored only as its
//! SHA-256; it is bound to one account and user and expires after
//! `ticket_ttl`. Until then it opens WebSockets and answers polls (an open
//! WebSocket outlives its ticket).
//!
//! Feed handlers take a [`FeedTicket`]: the owner of the ticket in the query
//! string, redeemed by the extractor.

use crate::problem::Problem;
use crate::store::credentials::TicketOwner;
use crate::store::{now_ms, Store};
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use base64::Engine;
use callcard_calls::feed::Ticket;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The longest token accepted in a query string (real ones are 43 chars).
const MAX_TICKET_LEN: usize = 128;

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Issues a ticket for the user.
pub async fn issue(store: &Store, account_id: u64, user_id: u64, ttl: Duration) -> Result<Ticket, Problem> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let expires_at = now_ms() + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
    store.insert_ticket(&hash(&token), TicketOwner { account_id, user_id, expires_at }).await?;
    Ok(Ticket { ticket: token, account_id, user_id, expires_at })
}

/// The owner of the ticket in the `ticket` query parameter, or a 401 problem.
pub async fn redeem(store: &Store, ticket: Option<&str>) -> Result<TicketOwner, Problem> {
    let refused = |detail: &str| {
        Problem::unauthorized("invalid-ticket", "The feed ticket was refused", detail).with_field("ticket")
    };
    let ticket = ticket
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| refused("the ticket query parameter is missing; get one from POST /widget/ticket"))?;
    if ticket.len() > MAX_TICKET_LEN {
        return Err(refused("the ticket is not one this backend issued"));
    }
    store
        .ticket(&hash(ticket))
        .await?
        .ok_or_else(|| refused("the ticket is unknown or expired; get a new one from POST /widget/ticket"))
}

/// The owner of a valid ticket in the `ticket` query parameter.
pub(crate) struct FeedTicket(pub TicketOwner);

impl<S> FromRequestParts<S> for FeedTicket
where
    S: Send + Sync,
    Store: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        #[derive(serde::Deserialize)]
        struct TicketQuery {
            ticket: Option<String>,
        }
        let axum::extract::Query(query) = axum::extract::Query::<TicketQuery>::try_from_uri(&parts.uri)?;
        redeem(&Store::from_ref(state), query.ticket.as_deref()).await.map(FeedTicket)
    }
}
