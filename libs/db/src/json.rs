//! A `jsonb` column read so that one unreadable value cannot fail a whole query: a list, a read
//! or a background worker that decodes a row with a value serde_json refuses (a number out of
//! its range, stored before input was checked) gets `None` for that column and a warning,
//! instead of an error for every row of the result.

use serde_json::Value;
use sqlx::{
    Decode, Postgres, Type, ValueRef,
    error::BoxDynError,
    postgres::{PgTypeInfo, PgValueFormat, PgValueRef},
};

/// A nullable `jsonb` value decoded leniently; use it on a row field with
/// `#[sqlx(try_from = "StoredJson")]` (the field's type stays `Option<Value>`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredJson(pub Option<Value>);

impl From<StoredJson> for Option<Value> {
    fn from(v: StoredJson) -> Self {
        v.0
    }
}

impl Type<Postgres> for StoredJson {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("jsonb")
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Value as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for StoredJson {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(Self(None));
        }
        let binary = value.format() == PgValueFormat::Binary;
        let mut bytes = value.as_bytes()?;
        // jsonb's binary form is a version byte (1) before the text.
        if binary && bytes.first() == Some(&1) {
            bytes = &bytes[1..];
        }
        match serde_json::from_slice(bytes) {
            Ok(v) => Ok(Self(Some(v))),
            Err(error) => {
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).into_owned();
                tracing::warn!(%error, value = %head, "unreadable jsonb value read as null");
                Ok(Self(None))
            }
        }
    }
}
