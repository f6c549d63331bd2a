//! The backend's answer to `GET /widget/status`, behind the settings page's
//! "check connection": `{"backend":"ok","authorized":bool,"needs_reauthorization":bool}`.

use serde::{Deserialize, Serialize};

/// Whether the backend answers and has the caller's account authorized.
/// Every member may be missing (an older backend): the widget then says it
/// cannot tell.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetStatus {
    /// `"ok"` when the backend itself is fine.
    #[serde(default)]
    pub backend: Option<String>,
    /// Whether Kommo's OAuth installation reached the backend for this account.
    #[serde(default)]
    pub authorized: Option<bool>,
    /// A refresh failed for good: an administrator must install the widget again.
    #[serde(default)]
    pub needs_reauthorization: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backends_answer_reads() {
        let status: WidgetStatus =
            serde_json::from_str(r#"{"backend":"ok","authorized":true,"needs_reauthorization":false}"#).unwrap();
        assert_eq!(
            status,
            WidgetStatus { backend: Some("ok".into()), authorized: Some(true), needs_reauthorization: false }
        );
        assert_eq!(serde_json::from_str::<WidgetStatus>("{}").unwrap(), WidgetStatus::default());
    }
}
