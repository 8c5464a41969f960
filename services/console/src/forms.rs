//! Form plumbing: percent-coding for URLs and form bodies, and the API's field errors keyed
//! by field so each input can show its own message.

use std::collections::HashMap;

use crate::api::{CallError, FieldError};

/// The fields of a new account, as both the register page and the admin's "new user" form
/// send them.
#[derive(Debug, serde::Deserialize, Default)]
pub struct NewAccountForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub role: String,
}

/// `value`, or `fallback` when the form left it empty (an unset choice shows its default).
pub fn or_default<'a>(value: &'a str, fallback: &'a str) -> &'a str {
    if value.is_empty() { fallback } else { value }
}

/// An API list path (api.md §5.4): `page` (at least 1) and `limit` first, then the filters,
/// percent-coded.
pub fn api_list_path<'a>(
    path: &str,
    page: Option<u32>,
    limit: u32,
    filters: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut q = vec![
        format!("page={}", page.unwrap_or(1).max(1)),
        format!("limit={limit}"),
    ];
    q.extend(
        filters
            .into_iter()
            .map(|(k, v)| format!("{k}={}", encode_component(v))),
    );
    format!("{path}?{}", q.join("&"))
}

/// `application/x-www-form-urlencoded` value → text (`+` is a space).
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Text → a query-string or path component (unreserved characters kept).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            use std::fmt::Write;
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Field errors from a failed call, plus the one-line message for the top of the form.
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    pub summary: Option<String>,
    pub fields: HashMap<String, String>,
}

impl FormErrors {
    pub fn from_call(err: &CallError) -> Self {
        let mut fields = HashMap::new();
        for FieldError { field, message } in err.fields() {
            fields
                .entry(field)
                .and_modify(|m: &mut String| {
                    m.push_str("; ");
                    m.push_str(&message);
                })
                .or_insert(message);
        }
        Self {
            summary: Some(err.human()),
            fields,
        }
    }

    pub fn message(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.summary.is_none() && self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(decode_component("a+b%20c%2Fd%zz"), "a b c/d%zz");
        assert_eq!(decode_component("100%"), "100%");
        assert_eq!(
            encode_component("/payments?status=x y"),
            "/payments%3Fstatus%3Dx%20y"
        );
    }
}
