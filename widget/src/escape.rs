//! Making CRM and PBX strings safe to hand to the host page.
//!
//! Kommo (and the local host page) may put the strings given to
//! `APP.notifications` straight into `innerHTML`, so every name or number
//! that came from a PBX webhook or a CRM record is escaped first, and a
//! recording link is only passed on when it is a plain `http(s)` URL.
//! Values put into a URL's query string are percent-encoded here too.

/// Escapes the five characters that matter in HTML text and attributes.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value (everything but RFC 3986 unreserved).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b => push_percent(&mut out, b),
        }
    }
    out
}

/// `%XX` (upper-case hex) for one byte.
pub fn push_percent(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xF)]));
}

/// A recording URL fit for an `href`: only `http:`/`https:` (no
/// `javascript:`, `data:`), with quotes, angle brackets, backticks, spaces and
/// control characters percent-encoded so it cannot leave an attribute.
pub fn safe_link(raw: &str) -> Option<String> {
    let url = raw.trim();
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '"' | '\'' | '<' | '>' | '`' | ' ' | '\\' => out.push_str(&format!("%{:02X}", c as u32)),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_markup_is_inert() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="alert('x')">&co"#),
            "&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;co"
        );
        assert_eq!(escape_html("Anna Petrova +1 (830) 570-30-77"), "Anna Petrova +1 (830) 570-30-77");
        assert_eq!(escape_html("Ünïcödé 名前"), "Ünïcödé 名前");
    }

    #[test]
    fn escaping_twice_is_visible_not_dangerous() {
        assert_eq!(escape_html(&escape_html("<")), "&amp;lt;");
    }

    #[test]
    fn only_web_links_pass() {
        assert_eq!(
            safe_link("https://pbx.example/r/1.mp3?a=1&b=2").as_deref(),
            Some("https://pbx.example/r/1.mp3?a=1&b=2")
        );
        assert_eq!(safe_link(" HTTP://pbx/r.mp3 ").as_deref(), Some("HTTP://pbx/r.mp3"));
        assert_eq!(safe_link("javascript:alert(1)"), None);
        assert_eq!(safe_link("data:text/html,<b>"), None);
        assert_eq!(safe_link("https://"), None);
        assert_eq!(safe_link("/relative/r.mp3"), None);
        assert_eq!(safe_link("https://pbx/r.mp3\"><script>").as_deref(), Some("https://pbx/r.mp3%22%3E%3Cscript%3E"));
    }

    #[test]
    fn encoding_leaves_unreserved_alone() {
        assert_eq!(encode_component("aZ0-_.~"), "aZ0-_.~");
        assert_eq!(encode_component("a+b/c=é"), "a%2Bb%2Fc%3D%C3%A9");
    }
}
