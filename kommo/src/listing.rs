//! Whole collections, one page at a time: what a local copy of the account
//! (the caller index) reads on installation, and what its reconciliation
//! reads by `updated_at` to heal a missed webhook.
//!
//! ```no_run
//! # async fn demo(kommo: kommo_client::KommoClient) -> Result<(), kommo_client::KommoError> {
//! use kommo_client::{Contact, Listing, With};
//! let mut listing = Listing::from_start(&[With::Leads, With::Customers]);
//! loop {
//!     let page = kommo.list_page::<Contact>(&listing).await?;
//!     // ... store page.records, and `listing` to resume after a restart ...
//!     match page.next {
//!         Some(next) => listing = next,
//!         None => break,
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Unlike the searches elsewhere in this crate, a listing is not followed to
//! the end in one call: 100,000 contacts are 400 pages, about a minute of the
//! account's 7 requests per second, and the caller persists where it got to.

use crate::entities::{with_param, Record, With};
use crate::http::{embedded, ApiRequest, KommoClient, PAGE_LIMIT};
use crate::KommoError;
use serde_json::Value;

/// Where a listing stands: the next page to read, and what it reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    /// From 1.
    pub page: u32,
    pub with: Vec<With>,
    /// Only records changed at or after this Unix second, oldest change
    /// first (`filter[updated_at][from]`, `order[updated_at]=asc`); `None`
    /// lists everything in id order.
    pub updated_since: Option<i64>,
}

impl Listing {
    /// Every record, from the first page.
    pub fn from_start(with: &[With]) -> Self {
        Self { page: 1, with: with.to_vec(), updated_since: None }
    }

    /// The records changed since `since`, from the first page.
    pub fn changed_since(since: i64, with: &[With]) -> Self {
        Self { page: 1, with: with.to_vec(), updated_since: Some(since) }
    }
}

/// One page of a listing, and the listing's next step if there is one.
#[derive(Clone, Debug)]
pub struct Page<R> {
    pub records: Vec<R>,
    pub next: Option<Listing>,
}

impl KommoClient {
    /// `GET /api/v4/{kind}?page=&limit=250&with=…`: one page of `R`s.
    /// Kommo's 204 (nothing on this page) ends the listing.
    pub async fn list_page<R: Record>(&self, listing: &Listing) -> Result<Page<R>, KommoError> {
        let mut req = ApiRequest::get(format!("/api/v4/{}", R::KIND.api_path()))
            .query("page", listing.page)
            .query("limit", PAGE_LIMIT);
        if !listing.with.is_empty() {
            req = req.query("with", with_param(&listing.with));
        }
        if let Some(since) = listing.updated_since {
            req = req.query("filter[updated_at][from]", since).query("order[updated_at]", "asc");
        }
        let Some(answer) = self.send::<Value>(&req).await? else {
            return Ok(Page { records: Vec::new(), next: None });
        };
        let records: Vec<R> = embedded(&answer, R::KIND.api_path())?;
        let more = answer.pointer("/_links/next").is_some() && !records.is_empty();
        let next = more.then(|| Listing { page: listing.page + 1, ..listing.clone() });
        Ok(Page { records, next })
    }
}
