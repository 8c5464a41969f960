//! Label and field selectors as the API server parses them (`a=b`, `a!=b`, `a in (x,y)`,
//! `a notin (x)`, `a`, `!a`; fields `metadata.name` / `metadata.namespace`). Pure, no I/O.

use serde_json::Value;

/// A selector string that could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unable to parse selector requirement {0:?}")]
pub struct SelectorError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: all requirements must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

/// Splits on commas that are not inside parentheses (`a in (x,y),b=c`).
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_set(key: &str, rest: &str, raw: &str) -> Result<(String, Vec<String>), SelectorError> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| SelectorError(raw.to_owned()))?;
    Ok((
        key.trim().to_owned(),
        inner.split(',').map(|v| v.trim().to_owned()).collect(),
    ))
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for raw in split_top_level(s) {
            let part = raw.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once("==") {
                Requirement::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = part.split_once('=') {
                Requirement::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, rest)) = part.split_once(" notin ") {
                let (k, vs) = parse_set(k, rest, part)?;
                Requirement::NotIn(k, vs)
            } else if let Some((k, rest)) = part.split_once(" in ") {
                let (k, vs) = parse_set(k, rest, part)?;
                Requirement::In(k, vs)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_owned())
            } else if part.contains(char::is_whitespace) || part.contains('(') {
                return Err(SelectorError(part.to_owned()));
            } else {
                Requirement::Exists(part.to_owned())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// A parsed field selector; only the fields every resource supports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter (`metadata.name=x,metadata.namespace!=y`).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut reqs = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, eq, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(SelectorError(part.to_owned()));
            };
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(SelectorError(part.to_owned()));
            }
            reqs.push((field.to_owned(), eq, value.to_owned()));
        }
        Ok(Self(reqs))
    }

    /// Whether the object's name / namespace satisfy every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, eq, value)| {
            let actual = match field.as_str() {
                "metadata.name" => obj.pointer("/metadata/name"),
                _ => obj.pointer("/metadata/namespace"),
            }
            .and_then(Value::as_str)
            .unwrap_or("");
            (actual == value) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: &Value) -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels}})
    }

    #[test]
    fn equality_set_and_existence_requirements() -> Result<(), SelectorError> {
        let o = obj(&json!({"app": "web", "tier": "front"}));
        assert!(LabelSelector::parse("app=web,tier")?.matches(&o));
        assert!(!LabelSelector::parse("app=web,!tier")?.matches(&o));
        assert!(LabelSelector::parse("app in (db, web),tier notin (back)")?.matches(&o));
        assert!(!LabelSelector::parse("app notin (web)")?.matches(&o));
        assert!(LabelSelector::parse("app!=db")?.matches(&o));
        assert!(!LabelSelector::parse("app==db")?.matches(&o));
        assert!(LabelSelector::parse("")?.matches(&o));
        assert!(LabelSelector::parse("app in web").is_err());
        Ok(())
    }

    #[test]
    fn field_selector_on_name_and_namespace() -> Result<(), SelectorError> {
        let o = obj(&json!({}));
        assert!(FieldSelector::parse("metadata.name=a,metadata.namespace!=x")?.matches(&o));
        assert!(!FieldSelector::parse("metadata.name=b")?.matches(&o));
        assert!(FieldSelector::parse("spec.x=1").is_err());
        Ok(())
    }
}
