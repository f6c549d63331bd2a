//! Saving the account to a file and loading it back, so a demo survives a
//! restart. The file is the [`Store`] as JSON (indexes excluded; they are
//! rebuilt on load). Saving is explicit (`POST /sandbox/snapshot`,
//! [`crate::Sandbox::save_snapshot`], and the binary on shutdown and every
//! few seconds), never on the request path, so it costs benchmarks nothing.

use crate::store::Store;
use crate::Sandbox;
use anyhow::Context;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::path::Path;

/// Reads a snapshot written by [`save`].
pub fn load(path: &Path) -> anyhow::Result<Store> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut st: Store = serde_json::from_slice(&text).context("parsing the snapshot")?;
    st.reindex();
    Ok(st)
}

/// Writes `st` to `path` atomically (temporary file, then rename).
pub fn save(st: &Store, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_vec(st)?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

impl Sandbox {
    /// Writes the account to `config.snapshot` (no-op without one).
    pub fn save_snapshot(&self) -> anyhow::Result<()> {
        let Some(path) = self.config().snapshot.clone() else { return Ok(()) };
        // Clone under the lock, write without it.
        let st = self.store().clone();
        save(&st, &path)
    }
}

/// `POST /sandbox/snapshot` → 204, or 500 problem+json when writing failed.
pub async fn take(State(sb): State<Sandbox>) -> Response {
    match tokio::task::spawn_blocking(move || sb.save_snapshot()).await {
        Ok(Ok(())) => axum::http::StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => crate::problem::Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
            .into_response(),
        Err(e) => {
            crate::problem::Problem::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_records_and_rebuilds_indexes() {
        let mut st = crate::seed::empty_account(1, "a");
        crate::seed::seed(&mut st);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.json");
        save(&st, &p).unwrap();
        let back = load(&p).unwrap();
        assert_eq!(back.contacts.len(), st.contacts.len());
        assert_eq!(back.phone_index.len(), st.phone_index.len());
        assert_eq!(back.link_index.len(), st.link_index.len());
    }
}
