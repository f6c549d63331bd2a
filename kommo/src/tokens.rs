//! The contract between the API client and whoever keeps an account's
//! tokens: [`AccessTokens`]. The client asks for a token before each attempt
//! and reports a refused one; `crate::oauth` has the implementations that
//! come with the crate, the backend has its own over its store.

use crate::KommoError;
use futures::future::BoxFuture;

/// Where the API client gets its access tokens. Implementations are shared
/// by every client of an account and must be safe to call concurrently.
pub trait AccessTokens: Send + Sync + 'static {
    /// A token that is valid now, refreshing first if it is (nearly) expired.
    fn access_token(&self, account_id: u64) -> BoxFuture<'_, Result<String, KommoError>>;

    /// Kommo answered 401 to `rejected`. Make sure the next
    /// [`access_token`](Self::access_token) returns a different, fresh token:
    /// refresh, unless another caller already replaced `rejected` (then do
    /// nothing: that is what keeps one 401 storm to one refresh). Fails with
    /// [`KommoError::Unauthorized`] or [`KommoError::ReauthorizationNeeded`]
    /// when no new token can be had.
    fn refresh_after_rejection<'a>(
        &'a self,
        account_id: u64,
        rejected: &'a str,
    ) -> BoxFuture<'a, Result<(), KommoError>>;
}
