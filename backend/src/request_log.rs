//! The request log: one tracing span per HTTP request, without its query
//! string.
//!
//! Query strings carry credentials: the feed ticket (`?ticket=`, which a
//! browser's WebSocket cannot send in a header) and the OAuth authorization
//! code (`GET /kommo/install?code=`). tower-http's default span records the
//! whole URI, so at debug level every ticket would reach the logs. This span
//! records the method, the path and how many query parameters came, never
//! what they said.

use axum::http::Request;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, TraceLayer};

/// tower-http's `TraceLayer` with [`RedactedSpan`].
pub(crate) fn layer() -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RedactedSpan> {
    TraceLayer::new_for_http().make_span_with(RedactedSpan)
}

/// Makes a request's span: method, path, and the number of query parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RedactedSpan;

impl<B> MakeSpan<B> for RedactedSpan {
    fn make_span(&mut self, request: &Request<B>) -> tracing::Span {
        // How many parameters came, not what they said (not even their
        // names: a bare `?<token>` would be one).
        let query_params = request.uri().query().map_or(0, |q| q.split('&').filter(|p| !p.is_empty()).count());
        tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
            query_params,
            version = ?request.version(),
        )
    }
}
