//! Phone numbers as they arrive from PBXs and CRMs: `+1 (830) 570-30-77`,
//! `8 830 5703077`, `18305703077`. Kommo never compares whole numbers; it
//! compares the last 8 digits (caller ID, `POST /api/v2/events`) or the last
//! 10 digits (`POST /api/v4/calls`), so formatting differences do not matter.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How many trailing digits Kommo's caller-ID event API compares.
pub const CALLER_ID_DIGITS: usize = 8;
/// How many trailing digits Kommo's `POST /api/v4/calls` compares.
pub const CALL_LOG_DIGITS: usize = 10;

/// A phone number as the PBX or the CRM wrote it. The original text is kept
/// for display; comparisons use [`PhoneNumber::digits`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Only the digits, in order.
    pub fn digits(&self) -> String {
        digits(&self.0)
    }

    /// The last `n` digits (all of them when there are fewer).
    pub fn last_digits(&self, n: usize) -> String {
        last_digits(&self.0, n)
    }

    /// Whether two numbers are the same by Kommo's rule of comparing the last
    /// `n` digits. Numbers without digits never match anything.
    pub fn matches(&self, other: &PhoneNumber, n: usize) -> bool {
        let (a, b) = (self.last_digits(n), other.last_digits(n));
        !a.is_empty() && a == b
    }

    /// A number with at most 3 digits is an internal extension, not a phone
    /// line: Kommo's documented `add_call` example titles such calls
    /// "Internal number".
    pub fn looks_internal(&self) -> bool {
        let d = self.digits();
        !d.is_empty() && d.len() < 4
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for PhoneNumber {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

/// Only the ASCII digits of `s`.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The last `n` digits of `s` (all of them when there are fewer).
pub fn last_digits(s: &str, n: usize) -> String {
    let d = digits(s);
    let skip = d.len().saturating_sub(n);
    d[skip..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_does_not_matter_for_matching() {
        let pbx = PhoneNumber::new("+1 (830) 570-30-77");
        let crm = PhoneNumber::new("18305703077");
        assert!(pbx.matches(&crm, CALLER_ID_DIGITS));
        assert!(pbx.matches(&crm, CALL_LOG_DIGITS));
    }

    #[test]
    fn caller_id_compares_only_the_last_eight_digits() {
        // Documented example: +18305703077 is looked up as "05703077".
        assert_eq!(PhoneNumber::new("+18305703077").last_digits(8), "05703077");
        let a = PhoneNumber::new("+18305703077");
        let b = PhoneNumber::new("+19995703077");
        assert!(!a.matches(&b, CALL_LOG_DIGITS));
        // Different area code, same last 8 digits: Kommo's caller ID treats
        // them as one number.
        let c = PhoneNumber::new("+17705703077");
        assert!(a.matches(&c, CALLER_ID_DIGITS));
    }

    #[test]
    fn numbers_without_digits_match_nothing() {
        let empty = PhoneNumber::new("anonymous");
        assert!(!empty.matches(&PhoneNumber::new("anonymous"), 8));
    }

    #[test]
    fn short_numbers_are_internal() {
        assert!(PhoneNumber::new("117").looks_internal());
        assert!(!PhoneNumber::new("1170").looks_internal());
        assert!(!PhoneNumber::new("").looks_internal());
    }
}
