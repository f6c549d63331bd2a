//! Click-to-call: a manager clicks a phone number in Kommo; the widget asks
//! the backend (`POST /widget/calls/originate` with [`OriginateRequest`]);
//! the backend asks the account's PBX to place the call, with an
//! [`Originate`] posted to the PBX's originate URL and signed like the
//! webhooks (`crate::signature`, with the account's webhook secret). The PBX
//! rings the manager's extension, then the number, and from there reports
//! the call like any other: an outbound call with the given `call_id`.

use crate::event::{self, FieldError};
use serde::{Deserialize, Serialize};

/// The widget's request: the number the manager clicked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OriginateRequest {
    pub number: String,
}

impl OriginateRequest {
    pub fn validate(&self) -> Result<(), FieldError> {
        event::validate_phone_number("number", &self.number)
    }
}

/// What the backend posts to the PBX.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Originate {
    /// The id the PBX reports the call under (the backend chose it).
    pub call_id: String,
    pub account_id: u64,
    /// The manager's extension: rung first.
    pub extension: String,
    /// Then this number.
    pub number: String,
    /// The Kommo user who clicked.
    pub user_id: u64,
    /// Unix milliseconds.
    pub requested_at: i64,
}

/// The backend's answer to the widget (202): the call is being placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Originated {
    pub call_id: String,
    pub extension: String,
    pub number: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_names_a_bad_number() {
        assert_eq!(OriginateRequest { number: "+1 (830) 570-3077".into() }.validate(), Ok(()));
        assert_eq!(OriginateRequest { number: "call me".into() }.validate().unwrap_err().field, "number");
        assert!(serde_json::from_str::<OriginateRequest>(r#"{"number":"1","extension":"9"}"#).is_err());
    }
}
